//! Decoding the request target the way 0.4.0 does: the path with `urllib.parse.unquote`
//! (once: a double-encoded `%252e` stays `%2e`), the query with `parse_qs` (first value
//! of each key, blank values dropped, `+` as a space).

use actix_web::http::StatusCode;

use crate::error::ApiError;

/// `%XX` escapes decoded once; invalid UTF-8 replaced, as Python's `unquote` does.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |c: u8| (c as char).to_digit(16);
        if b == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request path, decoded once. A path that decodes to a NUL or a backslash is
/// refused outright: no valid route contains one.
pub(crate) fn decode_path(raw: &str) -> Result<String, ApiError> {
    let path = percent_decode(raw, false);
    if path.contains('\0') || path.contains('\\') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid characters in the request path",
        ));
    }
    Ok(path)
}

/// The query parameters: the first non-blank value of each name.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: &str) -> Query {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.split('&') {
            let Some((k, v)) = part.split_once('=') else { continue };
            let (k, v) = (percent_decode(k, true), percent_decode(v, true));
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        Query(pairs)
    }

    /// The first value of a parameter (what 0.4.0 reads).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_python() {
        let cases = [
            ("/api/runs/ws%2Fp/r/configs", "/api/runs/ws/p/r/configs"),
            ("/a%2e%2e/b", "/a../b"),
            ("/double%252e", "/double%2e"),
            ("/bad%zz%", "/bad%zz%"),
            ("/%C3%A9", "/é"),
            ("/%FF", "/\u{FFFD}"),
            ("/a+b", "/a+b"),
        ];
        for (raw, want) in cases {
            assert_eq!(percent_decode(raw, false), want, "{raw}");
        }
        assert!(decode_path("/x%00y").is_err());
        assert!(decode_path("/x%5c..").is_err());
    }

    #[test]
    fn queries_like_parse_qs() {
        let q = Query::parse("path=train%2Floss&path=other&empty=&pointCount=10&a+b=c+d&flag");
        assert_eq!(q.get("path"), Some("train/loss"));
        assert_eq!(q.get("empty"), None);
        assert_eq!(q.get("pointCount"), Some("10"));
        assert_eq!(q.get("a b"), Some("c d"));
        assert_eq!(q.get("flag"), None);
        assert_eq!(q.all("path").collect::<Vec<_>>(), ["train/loss", "other"]);
    }
}
