//! JSON text exactly as Python's `json.dumps` writes it with its defaults, which is what
//! goodseed 0.4.0's server sends: `", "` and `": "` separators, every character outside
//! printable ASCII escaped as `\uXXXX`, floats as Python's `repr`, and (0.4.0's own rule)
//! NaN and infinities as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
//!
//! The writer appends to a byte buffer; handlers stream large answers by taking the
//! buffer's contents whenever it grows past a chunk size.

use std::fmt::Write as _;

use goodseed_core::{push_json_ascii_string, push_python_float_repr};

/// Appends JSON values to a buffer, managing commas.
#[derive(Debug, Default)]
pub struct Json {
    out: String,
    /// Per open container: whether the next item needs a comma before it.
    comma: Vec<bool>,
    /// A key was just written: the next value belongs to it.
    after_key: bool,
}

impl Json {
    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Json {
        Json { out: String::with_capacity(n), ..Json::default() }
    }

    /// Before any value or key: the comma that separates it from the previous item.
    fn item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(c) = self.comma.last_mut() {
            if *c {
                self.out.push_str(", ");
            }
            *c = true;
        }
    }

    /// `{`
    pub fn begin_object(&mut self) -> &mut Json {
        self.item();
        self.out.push('{');
        self.comma.push(false);
        self
    }

    /// `}`
    pub fn end_object(&mut self) -> &mut Json {
        self.comma.pop();
        self.out.push('}');
        self
    }

    /// `[`
    pub fn begin_array(&mut self) -> &mut Json {
        self.item();
        self.out.push('[');
        self.comma.push(false);
        self
    }

    /// `]`
    pub fn end_array(&mut self) -> &mut Json {
        self.comma.pop();
        self.out.push(']');
        self
    }

    /// An object key; the value follows.
    pub fn key(&mut self, key: &str) -> &mut Json {
        self.item();
        push_json_ascii_string(&mut self.out, key);
        self.out.push_str(": ");
        self.after_key = true;
        self
    }

    /// A string.
    pub fn str(&mut self, s: &str) -> &mut Json {
        self.item();
        push_json_ascii_string(&mut self.out, s);
        self
    }

    /// A float as Python writes it; NaN and infinities as 0.4.0's strings.
    pub fn f64(&mut self, x: f64) -> &mut Json {
        self.item();
        if x.is_nan() {
            self.out.push_str("\"NaN\"");
        } else if x.is_infinite() {
            self.out.push_str(if x > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
        } else {
            push_python_float_repr(&mut self.out, x);
        }
        self
    }

    /// An integer.
    pub fn i64(&mut self, i: i64) -> &mut Json {
        self.item();
        let _ = write!(self.out, "{i}");
        self
    }

    /// A number whose text is already valid JSON (an integer beyond 64 bits).
    pub fn raw_number(&mut self, digits: &str) -> &mut Json {
        self.item();
        self.out.push_str(digits);
        self
    }

    /// `true` / `false`.
    pub fn bool(&mut self, b: bool) -> &mut Json {
        self.item();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Json {
        self.item();
        self.out.push_str("null");
        self
    }

    /// A string, or `null` when absent.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Json {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// Bytes written and not yet taken.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing was written since the last [`Json::take_chunk`].
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes what was written so far (for streaming), keeping the nesting state.
    pub fn take_chunk(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_python_json_dumps_writes() {
        let mut j = Json::default();
        j.begin_object();
        j.key("a").i64(1);
        j.key("b").begin_array().f64(1.0).f64(0.1).f64(f64::NAN).f64(f64::NEG_INFINITY).end_array();
        j.key("c").str("é\"\n☃🌱");
        j.key("d").null();
        j.key("e").begin_object().end_object();
        j.key("f").begin_array().end_array();
        j.key("g").bool(true);
        j.end_object();
        // python3 -c 'import json; print(json.dumps({"a": 1, "b": [1.0, 0.1, "NaN", "-Infinity"],
        //   "c": "é\"\n☃🌱", "d": None, "e": {}, "f": [], "g": True}))'
        assert_eq!(
            j.finish(),
            r#"{"a": 1, "b": [1.0, 0.1, "NaN", "-Infinity"], "c": "\u00e9\"\n\u2603\ud83c\udf31", "d": null, "e": {}, "f": [], "g": true}"#
        );
    }

    #[test]
    fn nested_arrays_of_objects() {
        let mut j = Json::default();
        j.begin_array();
        for i in 0..2 {
            j.begin_object().key("i").i64(i).key("s").str("x").end_object();
        }
        j.end_array();
        assert_eq!(j.finish(), r#"[{"i": 0, "s": "x"}, {"i": 1, "s": "x"}]"#);
    }
}
