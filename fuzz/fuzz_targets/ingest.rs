//! The team server's ingest bodies (`goodseed_protocol`): any bytes as JSON (with
//! Python's bare `NaN`), as protobuf, and inflated as gzip. Decoding never panics; a
//! body is taken or refused whole; what is taken re-encodes to protobuf that decodes to
//! the same points (floats and steps bit for bit), and every point that the core's rules
//! accept becomes a batch.

#![no_main]

use goodseed_protocol::ingest::{self, IngestPoint, PointValue};
use goodseed_protocol::limits::MAX_POINTS_PER_INGEST;
use goodseed_protocol::{WireError, gzip, strict_json};
use libfuzzer_sys::fuzz_target;

fn same(a: &[IngestPoint<'_>], b: &[IngestPoint<'_>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.path == y.path
                && x.step.to_bits() == y.step.to_bits()
                && x.timestamp_ms.max(0) == y.timestamp_ms
                && match (&x.value, &y.value) {
                    (PointValue::Number(p), PointValue::Number(q)) => p.to_bits() == q.to_bits(),
                    (PointValue::Text(p), PointValue::Text(q)) => p == q,
                    _ => false,
                }
        })
}

fn check(points: &[IngestPoint<'_>]) {
    assert!(points.len() <= MAX_POINTS_PER_INGEST);
    let mut body = Vec::new();
    ingest::encode_protobuf(points, &mut body);
    let again = ingest::decode_protobuf(&body).expect("what we write we read");
    // Negative times are written as 0 (protobuf's field is unsigned); -0.0 steps as 0.
    let normal: Vec<IngestPoint<'_>> = points
        .iter()
        .map(|p| IngestPoint { step: p.step + 0.0, ..p.clone() })
        .collect();
    let again: Vec<IngestPoint<'_>> =
        again.into_iter().map(|p| IngestPoint { step: p.step + 0.0, ..p }).collect();
    assert!(same(&normal, &again), "protobuf round trip");
}

fuzz_target!(|data: &[u8]| {
    // The pre-pass only ever turns bare tokens into strings: valid UTF-8 stays so.
    let strict = strict_json(data);
    if std::str::from_utf8(data).is_ok() {
        assert!(std::str::from_utf8(&strict).is_ok());
    }
    let mut scratch = Vec::new();
    if let Ok(points) = ingest::decode_json(data, &mut scratch) {
        check(&points);
    }
    if let Ok(points) = ingest::decode_protobuf(data) {
        check(&points);
    }
    match gzip::decompress(data, 1 << 20) {
        Ok(inflated) => assert!(inflated.len() <= 1 << 20),
        Err(WireError::TooLarge { .. } | WireError::Malformed(_)) => {}
        Err(_) => {}
    }
});
