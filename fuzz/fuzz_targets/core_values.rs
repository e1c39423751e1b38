//! What goodseed-core reads from files other programs wrote: config values under any
//! type tag, ISO 8601 times, Python integers and floats. Decoding never fails, and what
//! it decodes encodes back to text that decodes to the same value.

#![no_main]

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, parse_python_int, python_float_repr};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    tag: Tag<'a>,
    value: Option<&'a str>,
    float: f64,
}

#[derive(Arbitrary, Debug)]
enum Tag<'a> {
    Bool,
    Int,
    Float,
    Str,
    DateTime,
    Null,
    StringSet,
    Other(&'a str),
}

impl Tag<'_> {
    fn text(&self) -> &str {
        match self {
            Tag::Bool => "bool",
            Tag::Int => "int",
            Tag::Float => "float",
            Tag::Str => "str",
            Tag::DateTime => "datetime",
            Tag::Null => "null",
            Tag::StringSet => "string_set",
            Tag::Other(t) => t,
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let tag = input.tag.text();
    let value = ConfigValue::decode(tag, input.value);
    let text = value.encode();
    let again = ConfigValue::decode(value.type_tag(), text.as_deref());
    match (&value, &again) {
        (ConfigValue::Float(a), ConfigValue::Float(b)) => {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{a} {b}");
        }
        _ => assert_eq!(value, again, "{tag:?} {:?} → {text:?}", input.value),
    }
    if let Some(text) = input.value {
        if let Some(i) = parse_python_int(text) {
            assert_eq!(parse_python_int(&i.to_string()), Some(i));
        }
        if let Some(t) = UtcMicros::parse_iso8601(text) {
            assert_eq!(UtcMicros::parse_iso8601(&t.to_iso8601()), Some(t), "{text:?}");
        }
    }
    let repr = python_float_repr(input.float);
    match ConfigValue::decode("float", Some(&repr)) {
        ConfigValue::Float(back) => {
            assert!(
                back.to_bits() == input.float.to_bits() || (back.is_nan() && input.float.is_nan())
            );
        }
        other => panic!("{repr:?} read back as {other:?}"),
    }
});
