//! `POST /api/v1/runs/{id}/ingest`: points of metric and text series, in JSON
//! (`{"points": [{"path", "step", "timestampMs", "number" | "text"}]}`, goodseed 0.4.0's
//! default) or protobuf (`application/protobuf`: a repeated [`proto::DataPoint`] in
//! field 1, 0.4.0's other format), either one gzip-compressed or not.
//!
//! Decoding borrows from the body: a path or a text is copied only when JSON escapes
//! it. Protobuf is read and written by hand over this one small message (prost decodes
//! only into owned values), and tested against prost's own encoding of
//! [`proto::IngestRequest`] both ways.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use goodseed_core::MAX_EXACT_STEP;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::limits::MAX_POINTS_PER_INGEST;
use crate::{WireError, strict_json};

/// One point of a metric or text series.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestPoint<'a> {
    /// The series' path, as sent (the server validates it).
    pub path: Cow<'a, str>,
    /// The step: a whole number up to 2^53 in magnitude, or any finite number.
    pub step: f64,
    /// When the point was logged, in Unix milliseconds.
    pub timestamp_ms: i64,
    /// A number (metric) or a text.
    pub value: PointValue<'a>,
}

/// A point's value.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue<'a> {
    /// A metric value; NaN and ±infinity included.
    Number(f64),
    /// A text value.
    Text(Cow<'a, str>),
}

/// The schema of the protobuf body, as prost declares it: what the hand-written
/// [`decode_protobuf`] and [`ProtobufWriter`] read and write.
pub mod proto {
    /// The whole body.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IngestRequest {
        /// The points.
        #[prost(message, repeated, tag = "1")]
        pub points: Vec<DataPoint>,
    }

    /// One point.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DataPoint {
        /// The series' path.
        #[prost(string, tag = "1")]
        pub path: String,
        /// The step, a whole number (0.4.0's client sends only these).
        #[prost(uint64, tag = "2")]
        pub step: u64,
        /// Unix milliseconds.
        #[prost(uint64, tag = "3")]
        pub timestamp_ms: u64,
        /// The value of a metric point.
        #[prost(double, optional, tag = "4")]
        pub number: Option<f64>,
        /// The value of a text point.
        #[prost(string, optional, tag = "5")]
        pub text: Option<String>,
        /// Ours: the step when it is not a whole number from 0 to 2^53 (fractional or
        /// negative); it wins over field 2, which then holds the step cut to a whole
        /// number for servers that read only that.
        #[prost(double, optional, tag = "6")]
        pub step_exact: Option<f64>,
    }
}

// ---------------------------------------------------------------------------------
// JSON

/// Decodes a JSON ingest body. `scratch` holds the body's strict-JSON copy when it has
/// Python's bare `NaN`/`Infinity` tokens (see [`strict_json`]), so points can borrow
/// from it.
pub fn decode_json<'a>(
    body: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<Vec<IngestPoint<'a>>, WireError> {
    let text: &'a [u8] = match strict_json(body) {
        Cow::Borrowed(b) => b,
        Cow::Owned(o) => {
            *scratch = o;
            scratch
        }
    };
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = BodySeed { too_many: &too_many }.deserialize(&mut de).and_then(|points| {
        de.end()?;
        Ok(points)
    });
    match parsed {
        Ok(points) => Ok(points),
        Err(_) if too_many.get() => Err(too_many_points()),
        Err(e) => Err(WireError::malformed(format!("the body is not a valid ingest request: {e}"))),
    }
}

fn too_many_points() -> WireError {
    WireError::TooLarge {
        what: "the ingest request",
        limit: format!("{MAX_POINTS_PER_INGEST} points"),
    }
}

/// A serde error's message without the " at line L column C" serde_json puts after it,
/// so that it can be placed inside a message of ours (which gets its own position).
fn bare_message(e: impl fmt::Display) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at)
            if text[at + 9..].split_once(" column ").is_some_and(|(l, c)| {
                !l.is_empty()
                    && l.bytes().all(|b| b.is_ascii_digit())
                    && !c.is_empty()
                    && c.bytes().all(|b| b.is_ascii_digit())
            }) =>
        {
            text[..at].to_owned()
        }
        _ => text,
    }
}

struct BodySeed<'c> {
    too_many: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Vec<IngestPoint<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Vec<IngestPoint<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object {"points": [...]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut points = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "points" {
                if points.is_some() {
                    return Err(de::Error::custom("`points` is given twice"));
                }
                points = Some(map.next_value_seed(PointsSeed { too_many: self.too_many })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        points.ok_or_else(|| de::Error::custom("the body has no `points` array"))
    }
}

struct PointsSeed<'c> {
    too_many: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for PointsSeed<'_> {
    type Value = Vec<IngestPoint<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PointsSeed<'_> {
    type Value = Vec<IngestPoint<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`points` as an array of points")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(point) = seq.next_element_seed(PointSeed { index: out.len() })? {
            if out.len() == MAX_POINTS_PER_INGEST {
                self.too_many.set(true);
                return Err(de::Error::custom("too many points"));
            }
            out.push(point);
        }
        Ok(out)
    }
}

struct PointSeed {
    index: usize,
}

impl<'de> DeserializeSeed<'de> for PointSeed {
    type Value = IngestPoint<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PointSeed {
    type Value = IngestPoint<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "points[{}] as an object", self.index)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let i = self.index;
        let field = |name: &str, e: A::Error| -> A::Error {
            de::Error::custom(format!("points[{i}].{name}: {}", bare_message(e)))
        };
        let mut path: Option<Cow<'de, str>> = None;
        let mut step = None;
        let mut ts = None;
        let mut number = None;
        let mut text: Option<Cow<'de, str>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "path" => {
                    path = Some(map.next_value::<Text<'de>>().map_err(|e| field("path", e))?.0)
                }
                "step" => {
                    step = Some(map.next_value::<StepValue>().map_err(|e| field("step", e))?.0)
                }
                "timestampMs" => {
                    ts = Some(map.next_value::<Millis>().map_err(|e| field("timestampMs", e))?.0)
                }
                "number" => {
                    number = Some(map.next_value::<Number>().map_err(|e| field("number", e))?.0)
                }
                "text" => {
                    text = Some(map.next_value::<Text<'de>>().map_err(|e| field("text", e))?.0)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |name: &str| de::Error::custom(format!("points[{i}] has no `{name}`"));
        let value = match (number, text) {
            (Some(n), None) => PointValue::Number(n),
            (None, Some(t)) => PointValue::Text(t),
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(format!(
                    "points[{i}] has both `number` and `text`: a point is one or the other"
                )));
            }
            (None, None) => {
                return Err(de::Error::custom(format!(
                    "points[{i}] has neither `number` nor `text`"
                )));
            }
        };
        Ok(IngestPoint {
            path: path.ok_or_else(|| missing("path"))?,
            step: step.ok_or_else(|| missing("step"))?,
            timestamp_ms: ts.ok_or_else(|| missing("timestampMs"))?,
            value,
        })
    }
}

/// A string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A whole number as f64, refused beyond 2^53 where f64 would round it.
fn exact_int<E: de::Error>(v: i128) -> Result<f64, E> {
    if v.unsigned_abs() > u128::from(MAX_EXACT_STEP) {
        Err(E::custom(format!("{v} is beyond 2^53, the largest whole number a step holds exactly")))
    } else {
        Ok(v as f64)
    }
}

/// A step: a whole number up to 2^53 in magnitude, or a finite float.
struct StepValue(f64);

impl<'de> de::Deserialize<'de> for StepValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StepValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a finite number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StepValue, E> {
                exact_int(i128::from(v)).map(StepValue)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StepValue, E> {
                exact_int(i128::from(v)).map(StepValue)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StepValue, E> {
                Ok(StepValue(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StepValue, E> {
                Err(E::custom(format!("a step must be a finite number, not {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Unix milliseconds: a whole number (a float is cut to one).
struct Millis(i64);

impl<'de> de::Deserialize<'de> for Millis {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix milliseconds as a whole number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                i64::try_from(v).map(Millis).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                // Within ±2^62 ms the cast is exact in range: refuse anything else.
                if v.is_finite() && v.abs() < 4.6e18 {
                    Ok(Millis(v.floor() as i64))
                } else {
                    Err(E::custom(format!("{v} is not a time in milliseconds")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A metric value: any number, or `NaN`, `Infinity`, `-Infinity` (bare, as Python
/// writes them, which [`strict_json`] turned into strings, or as strings).
struct Number(f64);

impl<'de> de::Deserialize<'de> for Number {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, NaN, Infinity or -Infinity")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                match v {
                    "NaN" => Ok(Number(f64::NAN)),
                    "Infinity" => Ok(Number(f64::INFINITY)),
                    "-Infinity" => Ok(Number(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------
// Protobuf

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Decodes a protobuf ingest body ([`proto::IngestRequest`]), borrowing paths and texts.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<IngestPoint<'_>>, WireError> {
    let mut r = Reader { buf: body, at: 0 };
    let mut out = Vec::new();
    while !r.done() {
        let (tag, wire) = r.key()?;
        if tag == 1 && wire == WIRE_LEN {
            if out.len() == MAX_POINTS_PER_INGEST {
                return Err(too_many_points());
            }
            let index = out.len();
            let bytes = r.len_delimited()?;
            out.push(decode_point(bytes, index)?);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(out)
}

fn decode_point(bytes: &[u8], index: usize) -> Result<IngestPoint<'_>, WireError> {
    let bad = |what: String| WireError::malformed(format!("points[{index}]: {what}"));
    let mut r = Reader { buf: bytes, at: 0 };
    let (mut path, mut step, mut step_exact, mut ts) = (None, 0u64, None, 0u64);
    let (mut number, mut text) = (None, None);
    while !r.done() {
        let (tag, wire) = r.key().map_err(|e| bad(e.to_string()))?;
        let expect = |want: u8, name: &str| {
            if wire == want {
                Ok(())
            } else {
                Err(bad(format!("field {tag} ({name}) has wire type {wire}, not {want}")))
            }
        };
        match tag {
            1 => {
                expect(WIRE_LEN, "path")?;
                path = Some(r.utf8().map_err(|e| bad(format!("path: {e}")))?);
            }
            2 => {
                expect(WIRE_VARINT, "step")?;
                step = r.varint().map_err(|e| bad(e.to_string()))?;
            }
            3 => {
                expect(WIRE_VARINT, "timestamp_ms")?;
                ts = r.varint().map_err(|e| bad(e.to_string()))?;
            }
            4 => {
                expect(WIRE_FIXED64, "number")?;
                number = Some(f64::from_bits(r.fixed64().map_err(|e| bad(e.to_string()))?));
            }
            5 => {
                expect(WIRE_LEN, "text")?;
                text = Some(r.utf8().map_err(|e| bad(format!("text: {e}")))?);
            }
            6 => {
                expect(WIRE_FIXED64, "step_exact")?;
                step_exact = Some(f64::from_bits(r.fixed64().map_err(|e| bad(e.to_string()))?));
            }
            _ => r.skip(wire).map_err(|e| bad(e.to_string()))?,
        }
    }
    let step = match step_exact {
        Some(s) if s.is_finite() => s,
        Some(s) => return Err(bad(format!("step_exact {s} is not a finite number"))),
        None if step > MAX_EXACT_STEP => {
            return Err(bad(format!(
                "step {step} is beyond 2^53, the largest whole number a step holds exactly"
            )));
        }
        None => step as f64,
    };
    let timestamp_ms =
        i64::try_from(ts).map_err(|_| bad(format!("timestamp_ms {ts} is out of range")))?;
    let path = path.ok_or_else(|| bad("has no path".into()))?;
    let value = match (number, text) {
        (Some(n), None) => PointValue::Number(n),
        (None, Some(t)) => PointValue::Text(Cow::Borrowed(t)),
        (Some(_), Some(_)) => return Err(bad("has both a number and a text".into())),
        (None, None) => return Err(bad("has neither a number nor a text".into())),
    };
    Ok(IngestPoint { path: Cow::Borrowed(path), step, timestamp_ms, value })
}

/// A cursor over protobuf bytes.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn truncated() -> WireError {
        WireError::malformed("the protobuf body ends in the middle of a field")
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at).ok_or_else(Self::truncated)?;
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::malformed("a protobuf varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u64, u8), WireError> {
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError::malformed("a protobuf field numbered 0"));
        }
        Ok((tag, (key & 7) as u8))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| Self::truncated())?;
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(Self::truncated)?;
        let bytes = &self.buf[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        self.take(n)
    }

    fn utf8(&mut self) -> Result<&'a str, WireError> {
        let bytes = self.len_delimited()?;
        std::str::from_utf8(bytes).map_err(|e| WireError::malformed(format!("not UTF-8 ({e})")))
    }

    fn fixed64(&mut self) -> Result<u64, WireError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
    }

    fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.len_delimited().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            other => Err(WireError::malformed(format!(
                "a protobuf field of wire type {other}, which ingest bodies do not use"
            ))),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Writes protobuf ingest bodies point by point, without building messages.
#[derive(Debug, Default)]
pub struct ProtobufWriter {
    buf: Vec<u8>,
    points: usize,
}

impl ProtobufWriter {
    /// An empty body.
    pub fn new() -> ProtobufWriter {
        ProtobufWriter::default()
    }

    /// Adds a metric point.
    pub fn metric(&mut self, path: &str, step: f64, timestamp_ms: i64, value: f64) {
        self.point(
            path,
            step,
            timestamp_ms,
            |out| {
                out.push((4 << 3) | WIRE_FIXED64);
                out.extend_from_slice(&value.to_bits().to_le_bytes());
            },
            9,
        );
    }

    /// Adds a text point.
    pub fn text(&mut self, path: &str, step: f64, timestamp_ms: i64, value: &str) {
        let n = value.len() as u64;
        self.point(
            path,
            step,
            timestamp_ms,
            |out| {
                out.push((5 << 3) | WIRE_LEN);
                put_varint(out, n);
                out.extend_from_slice(value.as_bytes());
            },
            1 + varint_len(n) + value.len(),
        );
    }

    fn point(
        &mut self,
        path: &str,
        step: f64,
        timestamp_ms: i64,
        value: impl FnOnce(&mut Vec<u8>),
        value_len: usize,
    ) {
        let whole = step >= 0.0 && step.fract() == 0.0 && step <= MAX_EXACT_STEP as f64;
        // A step field 2 cannot hold goes in field 6 too; field 2 gets it cut.
        let step_int = if step.is_finite() && step > 0.0 { step.trunc() as u64 } else { 0 };
        let ts = u64::try_from(timestamp_ms).unwrap_or(0);
        let path_len = path.len() as u64;
        let len = 1
            + varint_len(path_len)
            + path.len()
            + 1
            + varint_len(step_int)
            + 1
            + varint_len(ts)
            + value_len
            + if whole { 0 } else { 9 };
        let out = &mut self.buf;
        out.push((1 << 3) | WIRE_LEN);
        put_varint(out, len as u64);
        let start = out.len();
        out.push((1 << 3) | WIRE_LEN);
        put_varint(out, path_len);
        out.extend_from_slice(path.as_bytes());
        out.push((2 << 3) | WIRE_VARINT);
        put_varint(out, step_int);
        out.push((3 << 3) | WIRE_VARINT);
        put_varint(out, ts);
        value(out);
        if !whole {
            out.push((6 << 3) | WIRE_FIXED64);
            out.extend_from_slice(&step.to_bits().to_le_bytes());
        }
        debug_assert_eq!(out.len() - start, len, "the length written first is the length");
        self.points += 1;
    }

    /// How many points the body holds.
    pub fn len(&self) -> usize {
        self.points
    }

    /// Whether the body holds no point.
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// The body's size so far, in bytes.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The body, leaving the writer empty (its allocation goes with the body).
    pub fn take(&mut self) -> Vec<u8> {
        self.points = 0;
        std::mem::take(&mut self.buf)
    }

    /// Empties the writer, keeping its allocation.
    pub fn clear(&mut self) {
        self.points = 0;
        self.buf.clear();
    }

    /// The body so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Encodes points as a protobuf body, appended to `out`.
pub fn encode_protobuf(points: &[IngestPoint<'_>], out: &mut Vec<u8>) {
    let mut w = ProtobufWriter { buf: std::mem::take(out), points: 0 };
    for p in points {
        match &p.value {
            PointValue::Number(n) => w.metric(&p.path, p.step, p.timestamp_ms, *n),
            PointValue::Text(t) => w.text(&p.path, p.step, p.timestamp_ms, t),
        }
    }
    *out = w.buf;
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn metric(path: &str, step: f64, ts: i64, v: f64) -> IngestPoint<'static> {
        IngestPoint {
            path: Cow::Owned(path.to_owned()),
            step,
            timestamp_ms: ts,
            value: PointValue::Number(v),
        }
    }

    fn text(path: &str, step: f64, ts: i64, v: &str) -> IngestPoint<'static> {
        IngestPoint {
            path: Cow::Owned(path.to_owned()),
            step,
            timestamp_ms: ts,
            value: PointValue::Text(Cow::Owned(v.to_owned())),
        }
    }

    fn json(body: &str) -> Result<Vec<IngestPoint<'static>>, WireError> {
        let mut scratch = Vec::new();
        decode_json(body.as_bytes(), &mut scratch).map(|ps| {
            ps.into_iter()
                .map(|p| IngestPoint {
                    path: Cow::Owned(p.path.into_owned()),
                    value: match p.value {
                        PointValue::Number(n) => PointValue::Number(n),
                        PointValue::Text(t) => PointValue::Text(Cow::Owned(t.into_owned())),
                    },
                    ..p
                })
                .collect()
        })
    }

    fn bad_json(body: &str, expect: &str) {
        match json(body) {
            Err(WireError::Malformed(m)) => assert!(m.contains(expect), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn json_as_goodseed_0_4_0_writes_it() {
        let body = r#"{"points": [{"path": "train/loss", "step": 0, "timestampMs": 1700000000000, "number": 0.5}, {"path": "sys/stdout", "step": 1, "timestampMs": 1700000001000, "text": "epoch 1 \u00e9"}, {"path": "x", "step": 2, "timestampMs": 5, "number": NaN}, {"path": "x", "step": 3, "timestampMs": 5, "number": -Infinity}, {"path": "x", "step": 4, "timestampMs": 5, "number": 7}]}"#;
        let points = json(body).expect("decodes");
        assert_eq!(points.len(), 5);
        assert_eq!(points[0], metric("train/loss", 0.0, 1_700_000_000_000, 0.5));
        assert_eq!(points[1], text("sys/stdout", 1.0, 1_700_000_001_000, "epoch 1 é"));
        assert!(matches!(points[2].value, PointValue::Number(v) if v.is_nan()));
        assert_eq!(points[3].value, PointValue::Number(f64::NEG_INFINITY));
        assert_eq!(points[4].value, PointValue::Number(7.0));
        // Ours: fractional steps, the strings our answers use for non-finite values,
        // unknown fields ignored, an empty body of points.
        let ours = r#"{"v": 2, "points": [{"path": "a", "step": 0.5, "timestampMs": 1, "number": "Infinity", "extra": [1]}]}"#;
        assert_eq!(json(ours).expect("decodes"), [metric("a", 0.5, 1, f64::INFINITY)]);
        assert_eq!(json(r#"{"points": []}"#).expect("decodes"), []);
    }

    #[test]
    fn json_errors_name_the_point_and_the_field() {
        for (body, expect) in [
            ("", "not a valid ingest request"),
            ("[]", "an object"),
            ("{}", "no `points` array"),
            (r#"{"points": {}}"#, "array of points"),
            (r#"{"points": [], "points": []}"#, "given twice"),
            (r#"{"points": [1]}"#, "points[0] as an object"),
            (
                r#"{"points": [{"step": 1, "timestampMs": 1, "number": 1}]}"#,
                "points[0] has no `path`",
            ),
            (r#"{"points": [{"path": "a", "timestampMs": 1, "number": 1}]}"#, "has no `step`"),
            (r#"{"points": [{"path": "a", "step": 1, "number": 1}]}"#, "has no `timestampMs`"),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1}]}"#,
                "neither `number` nor `text`",
            ),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1, "number": 1, "text": "t"}]}"#,
                "both `number` and `text`",
            ),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1, "number": 1}, {"path": 5, "step": 1, "timestampMs": 1, "number": 1}]}"#,
                "points[1].path: invalid type: integer `5`, expected a string at line 1",
            ),
            (
                r#"{"points": [{"path": "a", "step": "1", "timestampMs": 1, "number": 1}]}"#,
                "points[0].step",
            ),
            (
                r#"{"points": [{"path": "a", "step": 9007199254740993, "timestampMs": 1, "number": 1}]}"#,
                "beyond 2^53",
            ),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1, "number": "lots"}]}"#,
                "points[0].number",
            ),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1, "number": null}]}"#,
                "points[0].number",
            ),
            (
                r#"{"points": [{"path": "a", "step": 1, "timestampMs": 1e300, "number": 1}]}"#,
                "timestampMs",
            ),
            (r#"{"points": []} x"#, "trailing characters"),
            (r#"{"points": [NaNa]}"#, "not a valid ingest request"),
        ] {
            bad_json(body, expect);
        }
    }

    #[test]
    fn json_refuses_more_points_than_the_limit_as_too_large() {
        let one = r#"{"path":"a","step":1,"timestampMs":1,"number":1}"#;
        let mut body = String::from(r#"{"points":["#);
        for i in 0..=MAX_POINTS_PER_INGEST {
            if i > 0 {
                body.push(',');
            }
            body.push_str(one);
        }
        body.push_str("]}");
        assert!(matches!(json(&body), Err(WireError::TooLarge { .. })));
        // One fewer is fine.
        let cut = body.len() - one.len() - 3;
        let fits = format!("{}]}}", &body[..cut]);
        assert_eq!(json(&fits).expect("fits").len(), MAX_POINTS_PER_INGEST);
    }

    #[test]
    fn json_borrows_what_it_can() {
        let body = br#"{"points": [{"path": "a", "step": 1, "timestampMs": 1, "text": "plain"}, {"path": "b\u00e9", "step": 1, "timestampMs": 1, "number": NaN}]}"#;
        let mut scratch = Vec::new();
        let points = decode_json(body, &mut scratch).expect("decodes");
        assert!(matches!(points[0].path, Cow::Borrowed("a")));
        assert!(matches!(&points[0].value, PointValue::Text(Cow::Borrowed("plain"))));
        assert!(matches!(points[1].path, Cow::Owned(_)));
    }

    fn prost_body(points: &[proto::DataPoint]) -> Vec<u8> {
        proto::IngestRequest { points: points.to_vec() }.encode_to_vec()
    }

    fn dp(path: &str, step: u64, ts: u64) -> proto::DataPoint {
        proto::DataPoint { path: path.into(), step, timestamp_ms: ts, ..Default::default() }
    }

    #[test]
    fn protobuf_reads_what_prost_and_0_4_0_write() {
        let body = prost_body(&[
            proto::DataPoint { number: Some(0.25), ..dp("loss", 3, 1_700_000_000_000) },
            proto::DataPoint { text: Some("héllo".into()), ..dp("out", 0, 0) },
            proto::DataPoint { number: Some(f64::NAN), ..dp("nan", 1 << 53, 1) },
            proto::DataPoint { number: Some(0.0), step_exact: Some(-1.5), ..dp("neg", 0, 1) },
        ]);
        let points = decode_protobuf(&body).expect("decodes");
        assert_eq!(points[0], metric("loss", 3.0, 1_700_000_000_000, 0.25));
        assert_eq!(points[1], text("out", 0.0, 0, "héllo"));
        assert!(matches!(points[2].value, PointValue::Number(v) if v.is_nan()));
        assert_eq!(points[2].step, (1u64 << 53) as f64);
        assert_eq!(points[3], metric("neg", -1.5, 1, 0.0));
        // goodseed 0.4.0's hand encoding of one point (sync.py `_encode_data_point`,
        // wrapped by `_encode_field_bytes(1, …)`), byte for byte.
        let mut py = vec![0x0a, 0x00];
        let inner = [
            &[0x0a, 0x04][..],
            b"loss",
            &[0x10, 0x07, 0x18, 0xe8, 0x07, 0x21],
            &0.5f64.to_le_bytes(),
        ]
        .concat();
        py[1] = inner.len() as u8;
        py.extend_from_slice(&inner);
        assert_eq!(decode_protobuf(&py).expect("decodes"), [metric("loss", 7.0, 1000, 0.5)]);
    }

    #[test]
    fn protobuf_written_by_hand_is_what_prost_reads() {
        let points = [
            metric("loss", 3.0, 1_700_000_000_000, 0.25),
            metric("frac", 2.5, 7, f64::NEG_INFINITY),
            metric("neg", -3.0, 7, -0.0),
            text("out", 0.0, 0, ""),
            text("long", (1u64 << 53) as f64, 1, &"x".repeat(300)),
        ];
        let mut body = Vec::new();
        encode_protobuf(&points, &mut body);
        let decoded = proto::IngestRequest::decode(body.as_slice()).expect("prost reads it");
        assert_eq!(decoded.points.len(), 5);
        assert_eq!(
            decoded.points[0],
            proto::DataPoint { number: Some(0.25), ..dp("loss", 3, 1_700_000_000_000) }
        );
        assert_eq!(decoded.points[1].step, 2);
        assert_eq!(decoded.points[1].step_exact, Some(2.5));
        assert_eq!(decoded.points[2].step_exact, Some(-3.0));
        assert_eq!(decoded.points[3].text.as_deref(), Some(""));
        assert_eq!(decoded.points[4].step_exact, None);
        // And back through our reader, exactly (the sign of -0.0 included).
        let again = decode_protobuf(&body).expect("decodes");
        assert_eq!(again.len(), 5);
        assert_eq!(again[2].step, -3.0);
        assert!(
            matches!(again[2].value, PointValue::Number(v) if v.to_bits() == (-0.0f64).to_bits())
        );
        assert_eq!(again, points);
    }

    #[test]
    fn protobuf_errors() {
        let good = prost_body(&[proto::DataPoint { number: Some(1.0), ..dp("a", 1, 1) }]);
        for (body, expect) in [
            (good[..good.len() - 1].to_vec(), "ends in the middle"),
            (vec![0x0a, 0x02, 0x10, 0x01], "has no path"),
            (prost_body(&[dp("a", 1, 1)]), "neither a number nor a text"),
            (
                prost_body(&[proto::DataPoint {
                    number: Some(1.0),
                    text: Some("t".into()),
                    ..dp("a", 1, 1)
                }]),
                "both",
            ),
            (
                prost_body(&[proto::DataPoint { number: Some(1.0), ..dp("a", (1 << 53) + 1, 1) }]),
                "beyond 2^53",
            ),
            (
                prost_body(&[proto::DataPoint { number: Some(1.0), ..dp("a", 1, u64::MAX) }]),
                "out of range",
            ),
            (
                prost_body(&[proto::DataPoint {
                    number: Some(1.0),
                    step_exact: Some(f64::NAN),
                    ..dp("a", 1, 1)
                }]),
                "not a finite number",
            ),
            (vec![0x0a, 0x03, 0x0a, 0x01, 0xff], "not UTF-8"),
            (vec![0x0a, 0x02, 0x08, 0x01], "wire type"),
            (vec![0x00], "numbered 0"),
            (vec![0xff; 11], "longer than 10 bytes"),
            (vec![0x0b], "wire type 3"),
        ] {
            match decode_protobuf(&body) {
                Err(WireError::Malformed(m)) => assert!(m.contains(expect), "{body:?}: {m}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // Unknown fields are skipped, at both levels.
        let mut with_unknown = vec![0x78, 0x05]; // field 15, varint
        with_unknown.extend_from_slice(&good);
        assert_eq!(decode_protobuf(&with_unknown).expect("decodes").len(), 1);
        assert_eq!(decode_protobuf(&[]).expect("empty"), []);
    }

    #[test]
    fn varint_lengths() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(Reader { buf: &out, at: 0 }.varint(), Ok(v));
        }
    }
}
