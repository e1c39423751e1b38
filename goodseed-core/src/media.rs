//! What kind of file an artifact is: its media type, told from its first bytes (never
//! from its name alone where the bytes say more), and an image's dimensions.
//!
//! Only the types goodseed shows or plays are told apart; everything else is
//! `application/octet-stream`. No type that a browser would run (HTML, SVG, XML, script)
//! is ever given, whatever the file is called.

/// The first bytes [`sniff`] needs: enough for a JPEG's frame header after its EXIF.
pub const SNIFF_BYTES: usize = 256 * 1024;

/// What [`sniff`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    /// The media type (`image/png`, `audio/wav`, `application/octet-stream`, …).
    pub media_type: &'static str,
    /// An image's width in pixels, when the header says.
    pub width: Option<u32>,
    /// An image's height in pixels, when the header says.
    pub height: Option<u32>,
}

/// The fallback for anything not told apart.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A checkpoint that is a directory: the record names a manifest of its files (each a
/// blob of its own), served as a tar archive.
pub const TREE: &str = "application/vnd.goodseed.tree+json";

/// The media type of a file from its first bytes (`head`, up to [`SNIFF_BYTES`]) and its
/// name, with an image's dimensions.
///
/// ```
/// use goodseed_core::media::sniff;
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x20\0\0\0\x10\x08\x06\0\0\0";
/// let m = sniff(png, "plot.bin");
/// assert_eq!((m.media_type, m.width, m.height), ("image/png", Some(32), Some(16)));
/// assert_eq!(sniff(b"<html>", "page.html").media_type, "application/octet-stream");
/// ```
pub fn sniff(head: &[u8], name: &str) -> Media {
    let image = |media_type| {
        let (width, height) = match imagesize::blob_size(head) {
            Ok(size) => (u32::try_from(size.width).ok(), u32::try_from(size.height).ok()),
            Err(_) => (None, None),
        };
        Media { media_type, width, height }
    };
    let plain = |media_type| Media { media_type, width: None, height: None };
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return image("image/png");
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return image("image/jpeg");
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return image("image/gif");
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return image("image/webp");
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return plain("audio/wav");
    }
    if head.starts_with(b"fLaC") {
        return plain("audio/flac");
    }
    if head.starts_with(b"OggS") {
        return plain("audio/ogg");
    }
    if head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        return plain("audio/mpeg");
    }
    // Text types by name, only for what is text: a file called `.json` holding binary
    // bytes stays an octet stream.
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let text = match extension.as_deref() {
        Some("json") => Some("application/json"),
        Some("csv") => Some("text/csv"),
        Some("txt" | "log" | "md" | "yaml" | "yml" | "toml") => Some("text/plain"),
        _ => None,
    };
    match text {
        Some(t) if looks_like_text(head) => plain(t),
        _ => plain(OCTET_STREAM),
    }
}

/// UTF-8 without NUL bytes (a head cut inside a character still counts).
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        Err(_) => return false,
    };
    !valid.contains(&0)
}

/// Whether a browser may show a file of this media type in the page (an image or a
/// sound): everything else is only ever downloaded.
pub fn is_inline(media_type: &str) -> bool {
    matches!(
        media_type,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "audio/wav"
            | "audio/flac"
            | "audio/ogg"
            | "audio/mpeg"
    )
}

/// The media types [`sniff`] gives, for checking a type read back from a store: a run
/// file may hold anything.
pub fn is_known(media_type: &str) -> bool {
    is_inline(media_type)
        || matches!(
            media_type,
            "application/json" | "text/csv" | "text/plain" | OCTET_STREAM | TREE
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", "x.png", "image/jpeg"),
            (b"GIF89a\x01\0\x01\0", "a", "image/gif"),
            (b"RIFF\0\0\0\0WAVEfmt ", "a.mp3", "audio/wav"),
            (b"RIFF\0\0\0\0WEBPVP8 ", "a", "image/webp"),
            (b"fLaC", "a", "audio/flac"),
            (b"OggS", "a", "audio/ogg"),
            (b"ID3\x04", "a", "audio/mpeg"),
            (b"{\"a\": 1}", "preds.JSON", "application/json"),
            (b"step,loss\n0,1\n", "m.csv", "text/csv"),
            (b"\0\x01binary", "m.csv", OCTET_STREAM),
            (b"<svg onload=alert(1)>", "plot.svg", OCTET_STREAM),
            (b"<!doctype html><script>", "index.html", OCTET_STREAM),
            (b"PK\x03\x04", "model.safetensors", OCTET_STREAM),
            (b"", "empty.txt", "text/plain"),
            ("caf\u{e9}".as_bytes().split_at(4).0, "t.txt", "text/plain"),
        ];
        for (head, name, want) in cases {
            assert_eq!(sniff(head, name).media_type, *want, "{name}");
            assert!(is_known(sniff(head, name).media_type));
        }
    }

    #[test]
    fn a_broken_image_header_has_no_dimensions() {
        let m = sniff(b"\x89PNG\r\n\x1a\n\0\0", "a.png");
        assert_eq!((m.media_type, m.width, m.height), ("image/png", None, None));
    }

    #[test]
    fn only_images_and_sounds_are_inline() {
        assert!(is_inline("image/png"));
        assert!(!is_inline("text/html"));
        assert!(!is_inline("image/svg+xml"));
        assert!(!is_inline("application/json"));
        assert!(!is_known("text/html"));
    }
}
