//! `Content-Encoding: gzip` bodies, read with a bound on what they inflate to (a small
//! body must not become gigabytes in memory).

use std::io::{Read as _, Write as _};

use crate::WireError;

/// The body a gzip stream inflates to, refused with [`WireError::TooLarge`] as soon as
/// it passes `limit` bytes, and with [`WireError::Malformed`] when it is not gzip.
pub fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let decoder = flate2::read::MultiGzDecoder::new(body);
    // One byte more than the limit tells "at the limit" from "beyond it".
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| WireError::malformed(format!("the body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(WireError::TooLarge {
            what: "the request body, decompressed,",
            limit: crate::error::bytes_text(limit),
        });
    }
    Ok(out)
}

/// A gzip stream of `body` at `level` (0–9; 1 is fast, 6 is 0.4.0's).
pub fn compress(body: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::new(level.min(9)),
    );
    encoder.write_all(body).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let body = b"{\"points\": []}".repeat(1000);
        let packed = compress(&body, 6);
        assert!(packed.len() < body.len() / 10);
        assert_eq!(decompress(&packed, body.len()).as_deref(), Ok(&body[..]));
        assert!(matches!(decompress(&packed, body.len() - 1), Err(WireError::TooLarge { .. })));
        // A bomb: 1 GiB of zeros in about a megabyte is refused after the limit, not read.
        let bomb = compress(&vec![0u8; 64 << 20], 9);
        assert!(matches!(decompress(&bomb, 1 << 20), Err(WireError::TooLarge { .. })));
        for bad in [&b"not gzip"[..], &packed[..packed.len() / 2], b""] {
            match decompress(bad, 1 << 20) {
                Err(WireError::Malformed(m)) => assert!(m.contains("gzip"), "{m}"),
                Ok(v) if bad.is_empty() => assert!(v.is_empty()),
                other => panic!("{other:?}"),
            }
        }
    }
}
