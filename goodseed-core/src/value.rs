//! Config values and their on-disk text encoding, tag for tag as goodseed 0.4.0 writes
//! them in the `configs` table (`type_tag`, `value`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// A config value: what one row of the `configs` table holds.
///
/// Encoding and decoding follow goodseed 0.4.0 exactly. A tag this version does not know,
/// or a value that does not parse under its tag, is kept as [`ConfigValue::Raw`] so files
/// from newer or buggy writers still open and round-trip unchanged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigValue {
    /// Tag `bool`, text `true` or `false`.
    Bool(bool),
    /// Tag `int`, decimal text.
    Int(i64),
    /// Tag `float`, text as Python's `repr(float)` writes it (`0.1`, `1e-05`, `nan`).
    Float(f64),
    /// Tag `str`, the text itself.
    Str(String),
    /// Tag `datetime`, ISO 8601 text as written (`2025-01-31T12:00:00+00:00`).
    DateTime(String),
    /// Tag `null`, empty text.
    Null,
    /// Tag `string_set`, a JSON array of the sorted strings (0.4.0's tags).
    StringSet(BTreeSet<String>),
    /// Anything else, kept exactly as stored.
    Raw {
        /// The stored type tag.
        type_tag: String,
        /// The stored text, if any.
        value: Option<String>,
    },
}

/// The type tags 0.4.0 writes.
pub mod tag {
    /// `bool`
    pub const BOOL: &str = "bool";
    /// `int`
    pub const INT: &str = "int";
    /// `float`
    pub const FLOAT: &str = "float";
    /// `str`
    pub const STR: &str = "str";
    /// `datetime`
    pub const DATETIME: &str = "datetime";
    /// `null`
    pub const NULL: &str = "null";
    /// `string_set`
    pub const STRING_SET: &str = "string_set";
}

impl ConfigValue {
    /// The type tag stored beside the value.
    pub fn type_tag(&self) -> &str {
        match self {
            ConfigValue::Bool(_) => tag::BOOL,
            ConfigValue::Int(_) => tag::INT,
            ConfigValue::Float(_) => tag::FLOAT,
            ConfigValue::Str(_) => tag::STR,
            ConfigValue::DateTime(_) => tag::DATETIME,
            ConfigValue::Null => tag::NULL,
            ConfigValue::StringSet(_) => tag::STRING_SET,
            ConfigValue::Raw { type_tag, .. } => type_tag,
        }
    }

    /// The text stored in the `value` column, exactly as 0.4.0's `serialize_value` writes it.
    pub fn encode(&self) -> Option<String> {
        Some(match self {
            ConfigValue::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
            ConfigValue::Int(i) => i.to_string(),
            ConfigValue::Float(x) => python_float_repr(*x),
            ConfigValue::Str(s) | ConfigValue::DateTime(s) => s.clone(),
            ConfigValue::Null => String::new(),
            ConfigValue::StringSet(set) => encode_string_set(set),
            ConfigValue::Raw { value, .. } => return value.clone(),
        })
    }

    /// Reads a stored `(type_tag, value)` pair as 0.4.0's `deserialize_value` does.
    /// Never fails: what it cannot read under its tag is kept as [`ConfigValue::Raw`].
    pub fn decode(type_tag: &str, value: Option<&str>) -> ConfigValue {
        let raw =
            || ConfigValue::Raw { type_tag: type_tag.to_owned(), value: value.map(str::to_owned) };
        // 0.4.0 reads a NULL value as None whatever the tag.
        let Some(text) = value else {
            return ConfigValue::Null;
        };
        match type_tag {
            tag::NULL => ConfigValue::Null,
            tag::BOOL => ConfigValue::Bool(text.to_lowercase() == "true"),
            tag::INT => parse_python_int(text).map_or_else(raw, ConfigValue::Int),
            tag::FLOAT => parse_python_float(text).map_or_else(raw, ConfigValue::Float),
            tag::STR => ConfigValue::Str(text.to_owned()),
            tag::DATETIME if looks_like_iso_datetime(text) => {
                ConfigValue::DateTime(text.to_owned())
            }
            tag::STRING_SET => serde_json::from_str::<Vec<String>>(text)
                .map_or_else(|_| raw(), |v| ConfigValue::StringSet(v.into_iter().collect())),
            _ => raw(),
        }
    }
}

impl From<bool> for ConfigValue {
    fn from(v: bool) -> Self {
        ConfigValue::Bool(v)
    }
}
impl From<i64> for ConfigValue {
    fn from(v: i64) -> Self {
        ConfigValue::Int(v)
    }
}
impl From<i32> for ConfigValue {
    fn from(v: i32) -> Self {
        ConfigValue::Int(v.into())
    }
}
impl From<f64> for ConfigValue {
    fn from(v: f64) -> Self {
        ConfigValue::Float(v)
    }
}
impl From<&str> for ConfigValue {
    fn from(v: &str) -> Self {
        ConfigValue::Str(v.to_owned())
    }
}
impl From<String> for ConfigValue {
    fn from(v: String) -> Self {
        ConfigValue::Str(v)
    }
}

/// Python's `int(text)` for the forms that fit in an `i64`: surrounding whitespace,
/// an optional sign and `_` between digits. (0.4.0 reads both stored ints and query
/// parameters this way.)
///
/// ```
/// use goodseed_core::parse_python_int;
/// assert_eq!(parse_python_int(" -1_000 "), Some(-1000));
/// assert_eq!(parse_python_int("1.5"), None);
/// ```
pub fn parse_python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// Python's `float(text)`: surrounding whitespace, `inf`, `infinity`, `nan` in any case.
fn parse_python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.contains('_') {
        // Python allows `_` between digits; keep it simple and strict about placement.
        if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
            return None;
        }
        return t.replace('_', "").parse().ok();
    }
    t.parse().ok()
}

/// A light check that text starts like an ISO 8601 date (`YYYY-MM-DD`). We keep the text
/// as written, so the check only guards against misfiled values.
fn looks_like_iso_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Text of a float exactly as Python's `repr(float)` (and so `str(float)` and
/// `json.dumps`) writes it: the shortest digits that round-trip, fixed notation for
/// decimal exponents from -4 to 15, scientific (`1e-05`, `1.5e+16`) outside, `.0` on
/// whole numbers, and `nan`, `inf`, `-inf`.
///
/// ```
/// use goodseed_core::python_float_repr;
/// assert_eq!(python_float_repr(0.1), "0.1");
/// assert_eq!(python_float_repr(3.0), "3.0");
/// assert_eq!(python_float_repr(1e-5), "1e-05");
/// assert_eq!(python_float_repr(1e16), "1e+16");
/// ```
pub fn python_float_repr(x: f64) -> String {
    let mut out = String::with_capacity(24);
    push_python_float_repr(&mut out, x);
    out
}

/// [`python_float_repr`] appended to a buffer, without allocating: the form for hot
/// loops (a server writing a million points).
pub fn push_python_float_repr(out: &mut String, x: f64) {
    if x.is_nan() {
        return out.push_str("nan");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    }
    // Whole numbers below 10^16 print as Python prints them: digits and ".0".
    if x.fract() == 0.0 && x.abs() < 1e16 {
        if x == 0.0 && x.is_sign_negative() {
            return out.push_str("-0.0");
        }
        let _ = write!(out, "{}.0", x as i64);
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let mut sci = StackText::default();
    let _ = write!(sci, "{x:e}");
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always writes an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let mut digits = StackText::default();
    for c in mantissa.chars().filter(|c| *c != '.') {
        digits.push(c);
    }
    let digits = digits.as_str();
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// A short ASCII text on the stack (a float's `{:e}` form is at most 24 bytes).
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn push(&mut self, c: char) {
        if c.is_ascii() && self.len < self.buf.len() {
            self.buf[self.len] = c as u8;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for c in s.chars() {
            self.push(c);
        }
        Ok(())
    }
}

/// `json.dumps(sorted(set))` as Python writes it: `", "` between items and every
/// character outside printable ASCII escaped as `\uXXXX`.
fn encode_string_set(set: &BTreeSet<String>) -> String {
    let mut out = String::from("[");
    for (i, item) in set.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_json_ascii_string(&mut out, item);
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string exactly as Python's `json.dumps` writes it
/// (`ensure_ascii=True`: every character outside printable ASCII as `\uXXXX`, UTF-16
/// surrogate pairs beyond the BMP). 0.4.0 stores string sets this way and its server
/// sends every string this way.
pub fn push_json_ascii_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234567e17, "1.2345678901234566e+17"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float_repr(*x), *want, "repr of {x:e}");
        }
    }

    proptest! {
        #[test]
        fn float_repr_round_trips(x in any::<f64>()) {
            let text = python_float_repr(x);
            let back = parse_python_float(&text).expect("parses");
            prop_assert!(back == x || (back.is_nan() && x.is_nan()));
            if x.is_finite() {
                prop_assert_eq!(back.to_bits(), x.to_bits());
            }
        }
    }

    fn check(tag: &str, value: Option<&str>, expect: ConfigValue) {
        assert_eq!(ConfigValue::decode(tag, value), expect, "decode {tag} {value:?}");
    }

    #[test]
    fn decodes_like_0_4_0() {
        check("bool", Some("true"), ConfigValue::Bool(true));
        check("bool", Some("True"), ConfigValue::Bool(true));
        check("bool", Some("false"), ConfigValue::Bool(false));
        check("bool", Some("yes"), ConfigValue::Bool(false));
        check("int", Some("42"), ConfigValue::Int(42));
        check("int", Some(" -7 "), ConfigValue::Int(-7));
        check("int", Some("1_000"), ConfigValue::Int(1000));
        let huge = "123456789012345678901234567890";
        check(
            "int",
            Some(huge),
            ConfigValue::Raw { type_tag: "int".into(), value: Some(huge.into()) },
        );
        check(
            "int",
            Some("1.5"),
            ConfigValue::Raw { type_tag: "int".into(), value: Some("1.5".into()) },
        );
        check("float", Some("0.001"), ConfigValue::Float(0.001));
        check("float", Some("1e-05"), ConfigValue::Float(1e-5));
        check("float", Some("inf"), ConfigValue::Float(f64::INFINITY));
        check("float", Some("-Infinity"), ConfigValue::Float(f64::NEG_INFINITY));
        assert!(
            matches!(ConfigValue::decode("float", Some("nan")), ConfigValue::Float(x) if x.is_nan())
        );
        check("str", Some(""), ConfigValue::Str(String::new()));
        check(
            "datetime",
            Some("2025-03-01T10:00:00.123456+00:00"),
            ConfigValue::DateTime("2025-03-01T10:00:00.123456+00:00".into()),
        );
        check(
            "datetime",
            Some("yesterday"),
            ConfigValue::Raw { type_tag: "datetime".into(), value: Some("yesterday".into()) },
        );
        check("null", Some(""), ConfigValue::Null);
        check("str", None, ConfigValue::Null);
        check(
            "string_set",
            Some(r#"["a", "b"]"#),
            ConfigValue::StringSet(["a".to_owned(), "b".to_owned()].into()),
        );
        check(
            "string_set",
            Some("[1, 2]"),
            ConfigValue::Raw { type_tag: "string_set".into(), value: Some("[1, 2]".into()) },
        );
        check(
            "tensor",
            Some("[[1]]"),
            ConfigValue::Raw { type_tag: "tensor".into(), value: Some("[[1]]".into()) },
        );
    }

    #[test]
    fn encodes_like_0_4_0() {
        let cases: Vec<(ConfigValue, &str, &str)> = vec![
            (ConfigValue::Bool(true), "bool", "true"),
            (ConfigValue::Int(-3), "int", "-3"),
            (ConfigValue::Float(0.5), "float", "0.5"),
            (ConfigValue::Float(2.0), "float", "2.0"),
            (ConfigValue::Str("x y".into()), "str", "x y"),
            (
                ConfigValue::DateTime("2025-01-01T00:00:00".into()),
                "datetime",
                "2025-01-01T00:00:00",
            ),
            (ConfigValue::Null, "null", ""),
            (
                ConfigValue::StringSet(["b".into(), "a".into(), "é\"\\\n☃🌱".into()].into()),
                "string_set",
                r#"["a", "b", "\u00e9\"\\\n\u2603\ud83c\udf31"]"#,
            ),
            (ConfigValue::StringSet(BTreeSet::new()), "string_set", "[]"),
            (ConfigValue::Raw { type_tag: "x".into(), value: Some("y".into()) }, "x", "y"),
        ];
        for (value, want_tag, want_text) in cases {
            assert_eq!(value.type_tag(), want_tag);
            assert_eq!(value.encode().as_deref(), Some(want_text), "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn string_sets_round_trip(items in proptest::collection::btree_set(".*", 0..6)) {
            let value = ConfigValue::StringSet(items);
            let text = value.encode().expect("text");
            prop_assert!(text.is_ascii());
            prop_assert_eq!(ConfigValue::decode("string_set", Some(&text)), value);
        }

        #[test]
        fn ints_round_trip(i in any::<i64>()) {
            let value = ConfigValue::Int(i);
            prop_assert_eq!(ConfigValue::decode("int", value.encode().as_deref()), value);
        }
    }
}
