//! The server's JSON writer (`goodseed_server::json::Json`): whatever it is given, and
//! however it is streamed in chunks, its output is ASCII, parses as JSON, holds every
//! string exactly, every float bit for bit (NaN and infinities as 0.4.0's strings
//! `"NaN"`, `"Infinity"`, `"-Infinity"`) and every integer.

#![no_main]

use goodseed_server::json::Json;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::Value as Parsed;

/// Deeper values are written as `null`: serde_json stops at 128 levels.
const MAX_DEPTH: usize = 64;

#[derive(Arbitrary, Debug)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    value: Value,
    /// Take a chunk whenever the output grows past this many bytes (streaming).
    chunk: u16,
}

fn write(j: &mut Json, v: &Value, depth: usize, chunk: usize, out: &mut String) {
    if depth > MAX_DEPTH {
        j.null();
        return;
    }
    match v {
        Value::Null => {
            j.null();
        }
        Value::Bool(b) => {
            j.bool(*b);
        }
        Value::Int(i) => {
            j.i64(*i);
        }
        Value::Float(x) => {
            j.f64(*x);
        }
        Value::Str(s) => {
            j.str(s);
        }
        Value::Array(items) => {
            j.begin_array();
            for item in items {
                write(j, item, depth + 1, chunk, out);
            }
            j.end_array();
        }
        Value::Object(entries) => {
            j.begin_object();
            for (k, item) in entries {
                j.key(k);
                write(j, item, depth + 1, chunk, out);
            }
            j.end_object();
        }
    }
    if chunk > 0 && j.len() > chunk {
        out.push_str(&j.take_chunk());
    }
}

fn check(want: &Value, got: &Parsed, depth: usize) {
    if depth > MAX_DEPTH {
        assert!(got.is_null(), "{got}");
        return;
    }
    match (want, got) {
        (Value::Null, Parsed::Null) => {}
        (Value::Bool(a), Parsed::Bool(b)) => assert_eq!(a, b),
        (Value::Int(a), Parsed::Number(b)) => assert_eq!(Some(*a), b.as_i64(), "{b}"),
        (Value::Float(a), Parsed::String(s)) if !a.is_finite() => {
            let want = if a.is_nan() {
                "NaN"
            } else if *a > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            assert_eq!(s, want);
        }
        (Value::Float(a), Parsed::Number(b)) if a.is_finite() => {
            assert!(b.is_f64(), "{a} written as {b}: no longer a float");
            assert_eq!(b.as_f64().map(f64::to_bits), Some(a.to_bits()), "{a} written as {b}");
        }
        (Value::Str(a), Parsed::String(b)) => assert_eq!(a, b),
        (Value::Array(a), Parsed::Array(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                check(x, y, depth + 1);
            }
        }
        (Value::Object(a), Parsed::Object(b)) => {
            let mut keys: Vec<&String> = a.iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), b.len());
            for key in keys {
                // The last value written for a key is the one a parser keeps.
                let last = a.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                let parsed = b.get(key.as_str()).expect("every key is there");
                check(last.expect("a key written"), parsed, depth + 1);
            }
        }
        (want, got) => panic!("{want:?} written as {got}"),
    }
}

fuzz_target!(|input: Input| {
    let mut j = Json::default();
    let mut out = String::new();
    write(&mut j, &input.value, 0, usize::from(input.chunk), &mut out);
    out.push_str(&j.finish());
    assert!(out.is_ascii(), "{out:?}");
    let parsed: Parsed = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    check(&input.value, &parsed, 0);
});
