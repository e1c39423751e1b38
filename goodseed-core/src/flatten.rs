//! Flattening of nested configs into `path → value` rows, as 0.4.0's `Run.log_configs`
//! does with `flatten_dict(..., cast_unsupported=True)`.
//!
//! Any [`serde::Serialize`] value can be flattened: structs and maps recurse with their
//! keys joined by `/`, sequences recurse with index segments `0`, `1`, …, and every
//! scalar becomes one [`ConfigValue`]. The flattener is a real [`serde::Serializer`], so
//! floats keep their exact value (NaN and infinities included) and integers beyond
//! `i64` keep every digit.
//!
//! Where this module deliberately differs from 0.4.0:
//!
//! - A sequence nested directly in a sequence (`[[1, 2], [3]]`) recurses by index
//!   (`0/0`, `0/1`, `1/0`); 0.4.0 stores the inner list as its Python repr string.
//! - A sequence directly under a top-level key (`{"layers": [64, 32]}`) is indexed
//!   (`layers/0`, `layers/1`); 0.4.0's `log_configs` only flattens dict values, so it
//!   stores such a list as the string `[64, 32]`.
//! - Sets serialize as sequences in serde, so they are indexed too; 0.4.0 stores a
//!   nested set as its repr string.
//! - Bool map keys are written `true`/`false` (as `serde_json` writes them), where
//!   Python writes `True`/`False`.
//! - Serde has no date-time type; date-times arrive as strings and are tagged `str`.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::{ConfigValue, FieldPath, IdentError, tag};

/// A config could not be flattened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlattenError {
    /// [`flatten`] was given something other than a map or struct at the top level, so
    /// there is no key to store it under.
    #[error("a config must be a map or struct at the top level, got {kind}")]
    TopLevelNotMap {
        /// What was given instead (`integer`, `sequence`, `unit variant Mode::Fast`, …).
        kind: String,
    },
    /// A map key that cannot become a path segment (a float, tuple, struct, …).
    #[error(
        "map key {} must be a string, integer, bool, char or unit variant, got {kind}",
        Where(path)
    )]
    BadKey {
        /// The path of the map holding the key (empty at the top level).
        path: String,
        /// What the key was.
        kind: String,
    },
    /// A value's path is empty or not a valid [`FieldPath`] once normalised (a key with a
    /// control character, a scalar under an empty key, a path over the length limit).
    #[error("config path {path:?} cannot be stored")]
    BadPath {
        /// The path as built from the keys, before normalisation.
        path: String,
        /// Why [`FieldPath::parse`] refused it.
        #[source]
        source: IdentError,
    },
    /// A `Serialize` implementation reported an error of its own.
    #[error("{message} ({})", Where(path))]
    Custom {
        /// The path of the value whose `Serialize` implementation failed (empty at the
        /// top level).
        path: String,
        /// The message it gave.
        message: String,
    },
}

impl ser::Error for FlattenError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        // The path is filled in by the serializer the error passes through.
        FlattenError::Custom { path: String::new(), message: msg.to_string() }
    }
}

/// Shows a raw path in an error message, or says that it is the top level.
struct Where<'a>(&'a str);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("at the top level")
        } else {
            write!(f, "at {:?}", self.0)
        }
    }
}

/// Flattens a config into `(path, value)` rows.
///
/// The value must be a map or struct at the top level (or an enum variant holding data,
/// which serde writes as a one-key map). Later keys overwrite earlier ones on equal
/// paths, as a Python dict update does; otherwise rows come in the order the value
/// serializes them. Sequences, nested ones included, are indexed `0`, `1`, …; empty maps
/// and sequences produce no rows. The [module docs](self) list where this deliberately
/// differs from 0.4.0 (which stores a list inside a list as its repr string).
///
/// ```
/// use goodseed_core::{ConfigValue, flatten::flatten};
///
/// #[derive(serde::Serialize)]
/// struct Optimizer { name: &'static str, lr: f64, betas: (f64, f64) }
/// #[derive(serde::Serialize)]
/// struct Config { optimizer: Optimizer, seed: Option<u32> }
///
/// let config = Config {
///     optimizer: Optimizer { name: "adam", lr: 3e-4, betas: (0.9, 0.999) },
///     seed: None,
/// };
/// let rows: Vec<(String, ConfigValue)> =
///     flatten(&config)?.into_iter().map(|(path, value)| (path.into(), value)).collect();
/// assert_eq!(rows, [
///     ("optimizer/name".to_owned(), ConfigValue::Str("adam".into())),
///     ("optimizer/lr".to_owned(), ConfigValue::Float(3e-4)),
///     ("optimizer/betas/0".to_owned(), ConfigValue::Float(0.9)),
///     ("optimizer/betas/1".to_owned(), ConfigValue::Float(0.999)),
///     ("seed".to_owned(), ConfigValue::Null),
/// ]);
/// # Ok::<(), goodseed_core::flatten::FlattenError>(())
/// ```
pub fn flatten<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<(FieldPath, ConfigValue)>, FlattenError> {
    let mut out = Rows::default();
    value.serialize(Node { rows: &mut out, path: None })?;
    Ok(out.entries)
}

/// Flattens a value under `prefix`: a map or struct lands at `prefix/key…`, a sequence
/// at `prefix/0…`, and a scalar at `prefix` itself, as 0.4.0's `run["prefix"] = value`
/// does for dicts and scalars.
pub fn flatten_under<T: Serialize + ?Sized>(
    prefix: &FieldPath,
    value: &T,
) -> Result<Vec<(FieldPath, ConfigValue)>, FlattenError> {
    let mut out = Rows::default();
    value.serialize(Node { rows: &mut out, path: Some(prefix.as_str().to_owned()) })?;
    Ok(out.entries)
}

/// The rows found so far, in first-seen order, with an index to overwrite equal paths.
#[derive(Default)]
struct Rows {
    entries: Vec<(FieldPath, ConfigValue)>,
    index: HashMap<FieldPath, usize>,
}

impl Rows {
    fn insert(&mut self, raw_path: &str, value: ConfigValue) -> Result<(), FlattenError> {
        let path = FieldPath::parse(raw_path)
            .map_err(|source| FlattenError::BadPath { path: raw_path.to_owned(), source })?;
        match self.index.get(&path) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(path.clone(), self.entries.len());
                self.entries.push((path, value));
            }
        }
        Ok(())
    }
}

/// Joins a parent path and a segment; at the top level the segment is the path.
fn child_path(parent: Option<&str>, segment: &str) -> String {
    match parent {
        Some(parent) => format!("{parent}/{segment}"),
        None => segment.to_owned(),
    }
}

/// Serializes `value` at `path`, putting the path into any custom error it raises.
fn serialize_at<T: Serialize + ?Sized>(
    rows: &mut Rows,
    path: String,
    value: &T,
) -> Result<(), FlattenError> {
    let shown = path.clone();
    value.serialize(Node { rows, path: Some(path) }).map_err(|err| match err {
        FlattenError::Custom { path, message } if path.is_empty() => {
            FlattenError::Custom { path: shown, message }
        }
        other => other,
    })
}

/// The serializer for one value: a leaf becomes a row at `path`, a container recurses.
/// `path` is `None` for the value given to [`flatten`] itself, which must be a map.
struct Node<'a> {
    rows: &'a mut Rows,
    path: Option<String>,
}

impl<'a> Node<'a> {
    fn leaf(self, kind: impl FnOnce() -> String, value: ConfigValue) -> Result<(), FlattenError> {
        match self.path {
            Some(path) => self.rows.insert(&path, value),
            None => Err(FlattenError::TopLevelNotMap { kind: kind() }),
        }
    }

    /// Starts a sequence; at the top level there is no key to index under.
    fn seq(self, kind: impl FnOnce() -> String) -> Result<Seq<'a>, FlattenError> {
        match self.path {
            Some(path) => Ok(Seq { rows: self.rows, path, next: 0 }),
            None => Err(FlattenError::TopLevelNotMap { kind: kind() }),
        }
    }

    fn map(self) -> Map<'a> {
        Map { rows: self.rows, path: self.path, key: None }
    }

    /// The node for the data of enum variant `variant`, nested under its name.
    fn variant(self, variant: &str) -> Node<'a> {
        let path = child_path(self.path.as_deref(), variant);
        Node { rows: self.rows, path: Some(path) }
    }

    /// An integer that may not fit `i64`: kept exactly as `int` text if it does not.
    fn big_int(self, value: impl fmt::Display + TryInto<i64>) -> Result<(), FlattenError> {
        let text = value.to_string();
        let row = match value.try_into() {
            Ok(small) => ConfigValue::Int(small),
            // 0.4.0 reads `int` text of any size back as a Python int.
            Err(_) => ConfigValue::Raw { type_tag: tag::INT.to_owned(), value: Some(text) },
        };
        self.leaf(|| "integer".to_owned(), row)
    }
}

impl<'a> ser::Serializer for Node<'a> {
    type Ok = ();
    type Error = FlattenError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), FlattenError> {
        self.leaf(|| "bool".to_owned(), ConfigValue::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), FlattenError> {
        self.leaf(|| "integer".to_owned(), ConfigValue::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<(), FlattenError> {
        self.big_int(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), FlattenError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), FlattenError> {
        self.big_int(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), FlattenError> {
        self.big_int(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), FlattenError> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), FlattenError> {
        self.leaf(|| "float".to_owned(), ConfigValue::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<(), FlattenError> {
        self.leaf(|| "char".to_owned(), ConfigValue::Str(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<(), FlattenError> {
        self.leaf(|| "string".to_owned(), ConfigValue::Str(v.to_owned()))
    }

    /// Bytes are indexed like a `Vec<u8>`, one `int` row per byte, so a byte buffer
    /// flattens the same whether or not it goes through `serde_bytes`.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), FlattenError> {
        let mut seq = self.seq(|| "bytes".to_owned())?;
        for byte in v {
            ser::SerializeSeq::serialize_element(&mut seq, byte)?;
        }
        ser::SerializeSeq::end(seq)
    }

    fn serialize_none(self) -> Result<(), FlattenError> {
        self.leaf(|| "none".to_owned(), ConfigValue::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), FlattenError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), FlattenError> {
        self.leaf(|| "unit".to_owned(), ConfigValue::Null)
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), FlattenError> {
        self.leaf(|| format!("unit struct {name}"), ConfigValue::Null)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), FlattenError> {
        self.leaf(
            || format!("unit variant {name}::{variant}"),
            ConfigValue::Str(variant.to_owned()),
        )
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        let path = child_path(self.path.as_deref(), variant);
        serialize_at(self.rows, path, value)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, FlattenError> {
        self.seq(|| "sequence".to_owned())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, FlattenError> {
        self.seq(|| "tuple".to_owned())
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, FlattenError> {
        self.seq(|| format!("tuple struct {name}"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, FlattenError> {
        self.variant(variant).seq(|| "tuple variant".to_owned())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'a>, FlattenError> {
        Ok(self.map())
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Map<'a>, FlattenError> {
        Ok(self.map())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map<'a>, FlattenError> {
        Ok(self.variant(variant).map())
    }
}

/// A sequence, tuple or tuple struct: elements land at `path/0`, `path/1`, ….
struct Seq<'a> {
    rows: &'a mut Rows,
    path: String,
    next: usize,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        let path = child_path(Some(&self.path), &self.next.to_string());
        self.next += 1;
        serialize_at(self.rows, path, value)
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        self.element(value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        self.element(value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        self.element(value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        self.element(value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

/// A map, struct or struct variant: values land at `path/key`.
struct Map<'a> {
    rows: &'a mut Rows,
    /// `None` at the top level of [`flatten`].
    path: Option<String>,
    /// The key given to `serialize_key`, waiting for its value.
    key: Option<String>,
}

impl Map<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), FlattenError> {
        let path = child_path(self.path.as_deref(), key);
        serialize_at(self.rows, path, value)
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), FlattenError> {
        let path = self.path.as_deref().unwrap_or_default();
        self.key = Some(key.serialize(KeyText { path })?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
        match self.key.take() {
            Some(key) => self.field(&key, value),
            None => Err(FlattenError::Custom {
                path: self.path.clone().unwrap_or_default(),
                message: "a map value was serialized before its key".to_owned(),
            }),
        }
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = FlattenError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), FlattenError> {
        Ok(())
    }
}

/// Renders a map key as one path segment. `path` is the map's own path, for errors.
struct KeyText<'p> {
    path: &'p str,
}

impl KeyText<'_> {
    fn refuse(&self, kind: impl Into<String>) -> FlattenError {
        FlattenError::BadKey { path: self.path.to_owned(), kind: kind.into() }
    }
}

impl ser::Serializer for KeyText<'_> {
    type Ok = String;
    type Error = FlattenError;
    type SerializeSeq = Impossible<String, FlattenError>;
    type SerializeTuple = Impossible<String, FlattenError>;
    type SerializeTupleStruct = Impossible<String, FlattenError>;
    type SerializeTupleVariant = Impossible<String, FlattenError>;
    type SerializeMap = Impossible<String, FlattenError>;
    type SerializeStruct = Impossible<String, FlattenError>;
    type SerializeStructVariant = Impossible<String, FlattenError>;

    fn serialize_bool(self, v: bool) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_i8(self, v: i8) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_i16(self, v: i16) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_i32(self, v: i32) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_i64(self, v: i64) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_i128(self, v: i128) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_u8(self, v: u8) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_u16(self, v: u16) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_u32(self, v: u32) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_u64(self, v: u64) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_u128(self, v: u128) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_f32(self, _v: f32) -> Result<String, FlattenError> {
        Err(self.refuse("float"))
    }

    fn serialize_f64(self, _v: f64) -> Result<String, FlattenError> {
        Err(self.refuse("float"))
    }

    fn serialize_char(self, v: char) -> Result<String, FlattenError> {
        Ok(v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<String, FlattenError> {
        Ok(v.to_owned())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, FlattenError> {
        Err(self.refuse("bytes"))
    }

    fn serialize_none(self) -> Result<String, FlattenError> {
        Err(self.refuse("none"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, FlattenError> {
        Err(self.refuse("option"))
    }

    fn serialize_unit(self) -> Result<String, FlattenError> {
        Err(self.refuse("unit"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<String, FlattenError> {
        Err(self.refuse(format!("unit struct {name}")))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, FlattenError> {
        Ok(variant.to_owned())
    }

    /// A newtype key (`struct Layer(String)`) is its inner value, as in `serde_json`.
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, FlattenError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<String, FlattenError> {
        Err(self.refuse(format!("newtype variant {name}::{variant}")))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, FlattenError> {
        Err(self.refuse("sequence"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, FlattenError> {
        Err(self.refuse("tuple"))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, FlattenError> {
        Err(self.refuse(format!("tuple struct {name}")))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, FlattenError> {
        Err(self.refuse(format!("tuple variant {name}::{variant}")))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, FlattenError> {
        Err(self.refuse("map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, FlattenError> {
        Err(self.refuse(format!("struct {name}")))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, FlattenError> {
        Err(self.refuse(format!("struct variant {name}::{variant}")))
    }
}

/// A flattened config could not be made nested again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnflattenError {
    /// A path holds a value and is also the parent of other paths (`a` and `a/b`).
    #[error("config path {path:?} holds a value and also has paths under it")]
    Clash {
        /// The path.
        path: String,
    },
}

/// The JSON value of one config: numbers, text, booleans, null, a string set as an array
/// of strings; a NaN or infinite float (which JSON cannot hold) is `null`, a value of a
/// type this version does not know its stored text.
pub fn config_json(value: &ConfigValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        ConfigValue::Bool(b) => Value::Bool(*b),
        ConfigValue::Int(i) => Value::from(*i),
        ConfigValue::Float(x) => {
            serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
        }
        ConfigValue::Str(t) | ConfigValue::DateTime(t) => Value::String(t.clone()),
        ConfigValue::Null => Value::Null,
        ConfigValue::StringSet(set) => {
            Value::Array(set.iter().cloned().map(Value::String).collect())
        }
        ConfigValue::Raw { value, .. } => value.clone().map_or(Value::Null, Value::String),
    }
}

/// Flattened config rows made nested again, what [`flatten`] took apart: paths split on
/// `/` into nested objects, and an object whose keys are exactly `0`, `1`, … `n-1` (a
/// sequence [`flatten`] indexed) an array. For reading a run's config back into a typed
/// struct with `serde_json::from_value`.
pub fn unflatten<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a ConfigValue)>,
) -> Result<serde_json::Value, UnflattenError> {
    use serde_json::{Map, Value};
    let mut root = Map::new();
    for (path, value) in entries {
        let segments: Vec<&str> = path.split('/').collect();
        let (last, parents) = segments.split_last().expect("split yields at least one part");
        let mut node = &mut root;
        for (depth, segment) in parents.iter().enumerate() {
            let entry =
                node.entry((*segment).to_owned()).or_insert_with(|| Value::Object(Map::new()));
            node = match entry {
                Value::Object(map) => map,
                _ => {
                    return Err(UnflattenError::Clash { path: segments[..=depth].join("/") });
                }
            };
        }
        if matches!(node.get(*last), Some(Value::Object(_))) {
            return Err(UnflattenError::Clash { path: path.to_owned() });
        }
        node.insert((*last).to_owned(), config_json(value));
    }
    Ok(arrays(Value::Object(root)))
}

/// Turns every object keyed `0`..`n-1` into an array, depth first.
fn arrays(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let indexed =
                !map.is_empty() && (0..map.len()).all(|i| map.contains_key(i.to_string().as_str()));
            if indexed {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(usize::MAX), arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::ser::SerializeMap as _;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::error::Error as _;

    /// Renders rows as `path = tag:text` lines, or the error followed by its causes.
    fn render(result: Result<Vec<(FieldPath, ConfigValue)>, FlattenError>) -> String {
        let mut out = String::new();
        match result {
            Ok(rows) => {
                for (path, value) in rows {
                    let text = value.encode().unwrap_or_else(|| "<none>".to_owned());
                    out.push_str(&format!("{path} = {}:{text}\n", value.type_tag()));
                }
            }
            Err(err) => {
                out.push_str(&format!("error: {err}\n"));
                let mut source = err.source();
                while let Some(cause) = source {
                    out.push_str(&format!("  caused by: {cause}\n"));
                    source = cause.source();
                }
            }
        }
        out
    }

    fn check<T: Serialize + ?Sized>(input: &T, expect: &str) {
        assert_eq!(render(flatten(input)), expect);
    }

    /// For inputs whose key order is not ours to fix (`HashMap`, `serde_json::Map`).
    fn check_unordered<T: Serialize + ?Sized>(input: &T, expect: &str) {
        let sorted = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&render(flatten(input))), sorted(expect));
    }

    fn check_under<T: Serialize + ?Sized>(prefix: &str, input: &T, expect: &str) {
        let prefix = FieldPath::parse(prefix).expect("test prefix is valid");
        assert_eq!(render(flatten_under(&prefix, input)), expect);
    }

    /// A map that serializes its entries in the order given, with any key type.
    struct Entries<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Entries<K, V> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    fn entries<K, V>(items: impl IntoIterator<Item = (K, V)>) -> Entries<K, V> {
        Entries(items.into_iter().collect())
    }

    #[derive(Serialize)]
    struct Optimizer {
        name: &'static str,
        lr: f64,
        momentum: Option<f64>,
    }

    #[derive(Serialize)]
    struct Layer {
        width: u32,
        act: &'static str,
    }

    #[derive(Serialize)]
    struct Model {
        optimizer: Optimizer,
        layers: Vec<Layer>,
        seed: u64,
        tags: (&'static str, char),
        dropout: Option<f32>,
    }

    #[derive(Serialize)]
    struct Meters(f64);

    #[derive(Serialize)]
    struct Pair(i32, i32);

    #[derive(Serialize)]
    struct Marker;

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Split {
        Train,
        Valid,
    }

    #[derive(Serialize)]
    enum Schedule {
        Constant,
        Step(u32),
        Cosine(f64, f64),
        Warmup { steps: u32, from: f64 },
    }

    #[derive(Serialize)]
    struct Scalars {
        bool: bool,
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        f32: f32,
        f64: f64,
        char: char,
        str: &'static str,
        string: String,
        unit: (),
        unit_struct: Marker,
        none: Option<u8>,
        some: Option<Option<u8>>,
        newtype: Meters,
        tuple_struct: Pair,
        unit_variant: Split,
    }

    #[test]
    fn scalars() {
        check(
            &Scalars {
                bool: true,
                i8: -8,
                i16: -16,
                i32: -32,
                i64: -64,
                u8: 255,
                u16: 16,
                u32: u32::MAX,
                u64: 64,
                f32: 0.5,
                f64: 0.1,
                char: 'é',
                str: "",
                string: "a b".to_owned(),
                unit: (),
                unit_struct: Marker,
                none: None,
                some: Some(Some(3)),
                newtype: Meters(2.0),
                tuple_struct: Pair(1, -1),
                unit_variant: Split::Valid,
            },
            "\
bool = bool:true
i8 = int:-8
i16 = int:-16
i32 = int:-32
i64 = int:-64
u8 = int:255
u16 = int:16
u32 = int:4294967295
u64 = int:64
f32 = float:0.5
f64 = float:0.1
char = str:é
str = str:
string = str:a b
unit = null:
unit_struct = null:
none = null:
some = int:3
newtype = float:2.0
tuple_struct/0 = int:1
tuple_struct/1 = int:-1
unit_variant = str:Valid
",
        );
    }

    #[test]
    fn nested_structs_and_sequences() {
        check(
            &Model {
                optimizer: Optimizer { name: "sgd", lr: 0.1, momentum: Some(0.9) },
                layers: vec![Layer { width: 64, act: "relu" }, Layer { width: 10, act: "id" }],
                seed: 7,
                tags: ("a", 'b'),
                dropout: None,
            },
            "\
optimizer/name = str:sgd
optimizer/lr = float:0.1
optimizer/momentum = float:0.9
layers/0/width = int:64
layers/0/act = str:relu
layers/1/width = int:10
layers/1/act = str:id
seed = int:7
tags/0 = str:a
tags/1 = str:b
dropout = null:
",
        );
    }

    #[test]
    fn big_and_special_numbers() {
        check(
            &entries([("i64_min", i128::from(i64::MIN)), ("i64_max", i64::MAX.into())]),
            "i64_min = int:-9223372036854775808\ni64_max = int:9223372036854775807\n",
        );
        check(
            &entries([("u64_max", u64::MAX), ("i64_max_plus_1", 1 << 63), ("fits", 5)]),
            "\
u64_max = int:18446744073709551615
i64_max_plus_1 = int:9223372036854775808
fits = int:5
",
        );
        assert_eq!(
            flatten(&entries([("x", u64::MAX)])).ok(),
            Some(vec![(
                FieldPath::parse("x").expect("valid"),
                ConfigValue::Raw {
                    type_tag: "int".into(),
                    value: Some("18446744073709551615".into())
                },
            )]),
            "an int too big for i64 is kept as exact int text"
        );
        check(
            &entries([("a", i128::MIN), ("b", -5), ("c", i128::from(u64::MAX) * 4)]),
            "\
a = int:-170141183460469231731687303715884105728
b = int:-5
c = int:73786976294838206460
",
        );
        check(&entries([("u", u128::MAX)]), "u = int:340282366920938463463374607431768211455\n");
        check(
            &entries([
                ("nan", f64::NAN),
                ("inf", f64::INFINITY),
                ("ninf", f64::NEG_INFINITY),
                ("tiny", 1e-5),
                ("neg_zero", -0.0),
            ]),
            "\
nan = float:nan
inf = float:inf
ninf = float:-inf
tiny = float:1e-05
neg_zero = float:-0.0
",
        );
        check(
            &entries([("nan32", f32::NAN), ("inf32", f32::INFINITY)]),
            "nan32 = float:nan\ninf32 = float:inf\n",
        );
        // serde_json keeps u64 values beyond i64 exactly too.
        check(&json!({"big": u64::MAX}), "big = int:18446744073709551615\n");
    }

    #[test]
    fn enums_of_every_shape() {
        check(
            &entries([
                ("a", Schedule::Constant),
                ("b", Schedule::Step(30)),
                ("c", Schedule::Cosine(0.1, 1e-6)),
                ("d", Schedule::Warmup { steps: 100, from: 0.0 }),
            ]),
            "\
a = str:Constant
b/Step = int:30
c/Cosine/0 = float:0.1
c/Cosine/1 = float:1e-06
d/Warmup/steps = int:100
d/Warmup/from = float:0.0
",
        );
        // A variant holding data is a one-key map, so it may stand at the top level.
        check(&Schedule::Step(3), "Step = int:3\n");
        check(&Schedule::Cosine(1.0, 2.0), "Cosine/0 = float:1.0\nCosine/1 = float:2.0\n");
        check(
            &Schedule::Warmup { steps: 1, from: 0.5 },
            "Warmup/steps = int:1\nWarmup/from = float:0.5\n",
        );
    }

    #[test]
    fn options_and_empty_containers() {
        check(&json!({"a": {}, "b": [], "c": {"d": {}, "e": [[], {}]}}), "");
        check(&json!({}), "");
        check(&Some(entries([("k", 1)])), "k = int:1\n");
        check(&entries([("none", None), ("some", Some(Some(3)))]), "none = null:\nsome = int:3\n");
    }

    #[test]
    fn json_values() {
        check_unordered(
            &json!({"t": true, "n": null, "s": "x", "f": 1.5, "i": -3, "o": {"l": [1, "a"]}}),
            "\
t = bool:true
n = null:
s = str:x
f = float:1.5
i = int:-3
o/l/0 = int:1
o/l/1 = str:a
",
        );
    }

    #[test]
    fn map_keys() {
        check(&entries([(3, "c"), (-1, "a"), (20, "b")]), "3 = str:c\n-1 = str:a\n20 = str:b\n");
        check(&entries([(true, 1), (false, 0)]), "true = int:1\nfalse = int:0\n");
        check(&entries([('x', 1)]), "x = int:1\n");
        check(&entries([(u128::MAX, 1)]), "340282366920938463463374607431768211455 = int:1\n");
        check(&entries([(i8::MIN, 1)]), "-128 = int:1\n");
        check(
            &BTreeMap::from([(Split::Valid, 0.5), (Split::Train, 0.25)]),
            "Train = float:0.25\nValid = float:0.5\n",
        );
        #[derive(Serialize)]
        struct Name(&'static str);
        check(&entries([(Name("n"), 1)]), "n = int:1\n");
        check_unordered(
            &HashMap::from([(1u16, "one"), (2, "two"), (3, "three")]),
            "1 = str:one\n2 = str:two\n3 = str:three\n",
        );
    }

    #[test]
    fn bad_keys() {
        let err = |at: &str, kind: &str| {
            format!(
                "error: map key {at} must be a string, integer, bool, char or unit variant, \
                 got {kind}\n"
            )
        };
        check(&entries([((1, 2), "x")]), &err("at the top level", "tuple"));
        check(
            &entries([("outer", entries([("inner", entries([((1, 2), "x")]))]))]),
            &err("at \"outer/inner\"", "tuple"),
        );
        check(&entries([("m", entries([(Some(1), 1)]))]), &err("at \"m\"", "option"));
        check(&entries([("m", entries([(None::<u8>, 1)]))]), &err("at \"m\"", "none"));
        check(&entries([(1.5, 1)]), &err("at the top level", "float"));
        check(&entries([((), 1)]), &err("at the top level", "unit"));
        check(&entries([(Marker, 1)]), &err("at the top level", "unit struct Marker"));
        check(&entries([(Pair(1, 2), 1)]), &err("at the top level", "tuple struct Pair"));
        check(&entries([(vec![1], 1)]), &err("at the top level", "sequence"));
        check(&entries([(entries([(1, 1)]), 1)]), &err("at the top level", "map"));
        check(
            &entries([(Schedule::Step(1), 1)]),
            &err("at the top level", "newtype variant Schedule::Step"),
        );
        check(
            &entries([(Schedule::Cosine(1.0, 2.0), 1)]),
            &err("at the top level", "tuple variant Schedule::Cosine"),
        );
        check(
            &entries([(Schedule::Warmup { steps: 1, from: 0.0 }, 1)]),
            &err("at the top level", "struct variant Schedule::Warmup"),
        );
        check(
            &entries([(Optimizer { name: "", lr: 0.0, momentum: None }, 1)]),
            &err("at the top level", "struct Optimizer"),
        );
    }

    #[test]
    fn bad_paths() {
        check(
            &json!({"a": {"b\tc": 1}}),
            "\
error: config path \"a/b\\tc\" cannot be stored
  caused by: invalid field path \"a/b\\tc\": character '\\t' at position 3 is not allowed
",
        );
        check(
            &json!({"": 1}),
            "\
error: config path \"\" cannot be stored
  caused by: invalid field path \"\": it is empty
",
        );
        check(
            &json!({"/": {"": 1}}),
            "\
error: config path \"//\" cannot be stored
  caused by: invalid field path \"//\": it is empty
",
        );
        let long = "k".repeat(crate::MAX_FIELD_PATH_LEN);
        assert!(matches!(
            flatten(&entries([(long.as_str(), entries([("x", 1)]))])),
            Err(FlattenError::BadPath { path, .. }) if path == format!("{long}/x")
        ));
        // A path that is long only while empty containers hold it is never built.
        check(&entries([(long.as_str(), entries([("x", json!({}))]))]), "");
    }

    #[test]
    fn empty_keys_vanish_into_the_path_as_in_0_4_0() {
        check(
            &entries([
                ("", json!({"a": 1})),
                ("b", json!({"": 2})),
                ("c", json!({"": {"d": 3}})),
                ("/x/", json!(4)),
            ]),
            "a = int:1\nb = int:2\nc//d = int:3\nx = int:4\n",
        );
    }

    #[test]
    fn top_level_must_be_a_map() {
        let err = |kind: &str| {
            format!("error: a config must be a map or struct at the top level, got {kind}\n")
        };
        check(&3, &err("integer"));
        check(&u64::MAX, &err("integer"));
        check(&i128::MAX, &err("integer"));
        check(&1.5, &err("float"));
        check("text", &err("string"));
        check(&'c', &err("char"));
        check(&true, &err("bool"));
        check(&(), &err("unit"));
        check(&None::<u8>, &err("none"));
        check(&Some(5), &err("integer"));
        check(&Marker, &err("unit struct Marker"));
        check(&Meters(1.0), &err("float"));
        check(&Schedule::Constant, &err("unit variant Schedule::Constant"));
        check(&vec![1, 2], &err("sequence"));
        check(&Vec::<u8>::new(), &err("sequence"));
        check(&(1, 2), &err("tuple"));
        check(&Pair(1, 2), &err("tuple struct Pair"));
        check(&json!([1]), &err("sequence"));
        check(&json!(null), &err("unit"));
    }

    #[test]
    fn under_a_prefix() {
        check_under("params", &3, "params = int:3\n");
        check_under("p", &None::<u8>, "p = null:\n");
        check_under("/params/", &json!({"lr": 0.1}), "params/lr = float:0.1\n");
        check_under("p", &vec![1, 2], "p/0 = int:1\np/1 = int:2\n");
        check_under("p", &Schedule::Constant, "p = str:Constant\n");
        check_under("p", &Schedule::Step(4), "p/Step = int:4\n");
        check_under("p", &Vec::<u8>::new(), "");
        check_under("p", &entries([("", 1)]), "p = int:1\n");
        check_under(
            "p",
            &json!({"a\nb": 1}),
            "\
error: config path \"p/a\\nb\" cannot be stored
  caused by: invalid field path \"p/a\\nb\": character '\\n' at position 3 is not allowed
",
        );
    }

    #[test]
    fn nested_sequences_recurse() {
        // 0.4.0 stores `a/0` as the string "[1, 2]"; we index all the way down.
        check_unordered(
            &json!({"a": [[1, 2], [[3]], []], "b": [{"c": [true]}]}),
            "a/0/0 = int:1\na/0/1 = int:2\na/1/0/0 = int:3\nb/0/c/0 = bool:true\n",
        );
        check(&entries([("t", ((1, 2), [3]))]), "t/0/0 = int:1\nt/0/1 = int:2\nt/1/0 = int:3\n");
    }

    #[test]
    fn bytes_are_indexed_like_a_vec() {
        struct Bytes(&'static [u8]);
        impl Serialize for Bytes {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let expect = "b/0 = int:0\nb/1 = int:255\n";
        check(&entries([("b", Bytes(&[0, 255]))]), expect);
        check(&entries([("b", vec![0u8, 255])]), expect);
        check(&entries([("b", Bytes(&[]))]), "");
        check(
            &Bytes(b"x"),
            "error: a config must be a map or struct at the top level, got bytes\n",
        );
    }

    #[test]
    fn later_keys_overwrite_in_place() {
        // Like a Python dict update: the value changes, the first position stays.
        check(
            &entries([
                ("a", json!({"b": 1})),
                ("a", json!({"c": 2})),
                ("z", json!(0)),
                ("a/b", json!("over")),
                ("/z/", json!(null)),
            ]),
            "a/b = str:over\na/c = int:2\nz = null:\n",
        );
    }

    #[test]
    fn custom_errors_name_the_path() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no thanks"))
            }
        }
        check(&entries([("a", vec![Refuses])]), "error: no thanks (at \"a/0\")\n");
        check(&entries([("a", entries([(Refuses, 1)]))]), "error: no thanks (at \"a\")\n");
        check(&Refuses, "error: no thanks (at the top level)\n");
    }

    /// Printed by /tmp/gs_flatten_diff.py: goodseed 0.4.0's
    /// `flatten_dict({key: value}, cast_unsupported=True)` for each top-level key, as
    /// `Run.log_configs` does, then `serialize_value` on every leaf.
    const PYTHON_0_4_0: &str = "\
optimizer/name = str:adamw
optimizer/lr = float:0.0003
optimizer/betas/0 = float:0.9
optimizer/betas/1 = float:0.999
optimizer/eps = float:1e-08
optimizer/weight_decay = float:0.0
optimizer/amsgrad = bool:false
model/layers/0/width = int:512
model/layers/0/act = str:gelu
model/layers/1/width = int:10
model/layers/1/act = null:
model/dropout = float:0.1
model/big = int:12345678901234567890
model/neg = int:-42
model/huge_float = float:1e+16
model/name = str:ünï/cødé ☃
model/ratio = float:0.3333333333333333
model/tiny = float:5e-324
data/splits/0 = str:train
data/splits/1 = str:val
data/empty = str:
data/path = str:/data/x
data/mixed/0 = int:1
data/mixed/1 = str:two
data/mixed/2 = float:3.0
data/mixed/3 = null:
data/mixed/4 = bool:true
seed = int:1234
flag = bool:true
";

    #[test]
    fn matches_python_0_4_0() {
        let config = json!({
            "optimizer": {"name": "adamw", "lr": 3e-4, "betas": [0.9, 0.999], "eps": 1e-8,
                          "weight_decay": 0.0, "amsgrad": false},
            "model": {"layers": [{"width": 512, "act": "gelu"}, {"width": 10, "act": null}],
                      "dropout": 0.1, "big": 12345678901234567890_u64, "neg": -42,
                      "huge_float": 1e16, "name": "ünï/cødé ☃", "ratio": 1.0 / 3.0,
                      "tiny": 5e-324},
            "data": {"splits": ["train", "val"], "empty": "", "path": "/data/x", "none": {},
                     "mixed": [1, "two", 3.0, null, true]},
            "seed": 1234,
            "flag": true,
        });
        // serde_json orders keys its own way; Python keeps insertion order.
        check_unordered(&config, PYTHON_0_4_0);
    }

    #[test]
    fn unflatten_gives_back_what_flatten_took_apart() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Model {
            layers: Vec<u32>,
            act: String,
        }
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Config {
            lr: f64,
            epochs: i64,
            model: Model,
            note: Option<String>,
            grid: Vec<Vec<u8>>,
        }
        let config = Config {
            lr: 0.001,
            epochs: 3,
            model: Model { layers: vec![64, 32], act: "gelu".into() },
            note: None,
            grid: vec![vec![1, 2], vec![3]],
        };
        let rows = flatten(&config).expect("flatten");
        let json = unflatten(rows.iter().map(|(p, v)| (p.as_str(), v))).expect("unflatten");
        let back: Config = serde_json::from_value(json).expect("typed");
        assert_eq!(back, config);
        // Other paths beside the struct's (sys/*) are ignored by it.
        let mut more = rows.clone();
        more.push((FieldPath::parse("sys/name").expect("p"), ConfigValue::Str("x".into())));
        let json = unflatten(more.iter().map(|(p, v)| (p.as_str(), v))).expect("unflatten");
        assert_eq!(serde_json::from_value::<Config>(json).expect("typed"), config);
        // A path that is a value and a parent is named.
        let clash = [("a", ConfigValue::Int(1)), ("a/b", ConfigValue::Int(2))];
        let err = unflatten(clash.iter().map(|(p, v)| (*p, v))).expect_err("clash");
        assert!(err.to_string().contains("\"a\""), "{err}");
        let clash = [("a/b", ConfigValue::Int(2)), ("a", ConfigValue::Int(1))];
        assert!(unflatten(clash.iter().map(|(p, v)| (*p, v))).is_err());
        // Keys 0..n-1 only make an array when they are all there.
        let gaps = [("m/0", ConfigValue::Int(1)), ("m/2", ConfigValue::Int(3))];
        let json = unflatten(gaps.iter().map(|(p, v)| (*p, v))).expect("unflatten");
        assert_eq!(json, serde_json::json!({"m": {"0": 1, "2": 3}}));
        assert_eq!(config_json(&ConfigValue::Float(f64::NAN)), serde_json::Value::Null);
    }
}
