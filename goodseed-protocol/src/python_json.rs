//! JSON as Python's `json.dumps` writes it: strict JSON but for the bare tokens `NaN`,
//! `Infinity` and `-Infinity` it writes for non-finite floats.

use std::borrow::Cow;

/// The body with Python's bare `NaN`, `Infinity` and `-Infinity` (outside strings)
/// turned into the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, so that a strict
/// JSON parser takes it; the fields that hold numbers accept those strings (as this
/// server's own answers write non-finite numbers). Borrowed when there is none, which
/// is the common case: one pass over the bytes, no copy.
///
/// ```
/// use goodseed_protocol::strict_json;
/// let strict = strict_json(br#"[NaN, -Infinity, "NaN", 1]"#);
/// assert_eq!(&*strict, br#"[ "NaN" ,  "-Infinity" , "NaN", 1]"#);
/// ```
pub fn strict_json(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let token: Option<&[u8]> = match b {
            b'"' => {
                in_string = true;
                None
            }
            b'N' => Some(b"NaN"),
            b'I' => Some(b"Infinity"),
            b'-' if body.get(i + 1) == Some(&b'I') => Some(b"-Infinity"),
            _ => None,
        };
        match token {
            Some(t) if body[i..].starts_with(t) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 64));
                o.extend_from_slice(&body[copied..i]);
                // Spaces keep the parser's column numbers close to the client's.
                o.extend_from_slice(b" \"");
                o.extend_from_slice(t);
                o.extend_from_slice(b"\" ");
                i += t.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut o) => {
            o.extend_from_slice(&body[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let got = strict_json(input.as_bytes());
        assert_eq!(String::from_utf8_lossy(&got), expect, "{input}");
    }

    #[test]
    fn bare_tokens_become_strings_and_nothing_else_changes() {
        check(r#"{"a": 1}"#, r#"{"a": 1}"#);
        check("NaN", r#" "NaN" "#);
        check("[Infinity,-Infinity]", r#"[ "Infinity" , "-Infinity" ]"#);
        // Inside strings, escaped quotes included, nothing is touched.
        check(r#"["NaN", "a\"NaN", "\\", NaN]"#, r#"["NaN", "a\"NaN", "\\",  "NaN" ]"#);
        // Not a token: left for the parser to refuse.
        check("Nope", "Nope");
        check("-1", "-1");
        check("-Inf", "-Inf");
        check("", "");
        // Borrowed when nothing changes.
        assert!(matches!(strict_json(b"[1, 2]"), Cow::Borrowed(_)));
    }
}
