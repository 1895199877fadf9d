//! GVariant serialization, the encoding of every OSTree metadata object.
//!
//! A small dynamic implementation: values carry their type, so the same code
//! reads fixed object layouts (`(uuua(ayay))`) and open-ended commit
//! metadata (`a{sv}`) whose values may be of any type. Only *normal form* is
//! produced, and [`Value::from_bytes`] accepts only input that re-encodes to
//! the very same bytes, so a checksum over the bytes is a checksum over the
//! meaning (GVariant spec 1.0, "Normal Form").
//!
//! The two modules split the verbs: `write` serializes, `read` parses.
//! Integers are stored little-endian by GVariant itself; OSTree stores
//! big-endian numbers *inside* them, which callers handle (see `objects`).

mod read;
mod text;
mod types;
mod write;

pub use read::ParseError;
pub use types::{Type, TypeError};

/// A GVariant value together with enough type information to serialize it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `b`.
    Bool(bool),
    /// `y`.
    Byte(u8),
    /// `n`.
    Int16(i16),
    /// `q`.
    Uint16(u16),
    /// `i`.
    Int32(i32),
    /// `u`.
    Uint32(u32),
    /// `x`.
    Int64(i64),
    /// `t`.
    Uint64(u64),
    /// `h`: an index into a list of file descriptors sent beside the message.
    Handle(i32),
    /// `d`.
    Double(f64),
    /// `s`, `o` and `g`: all are NUL-terminated strings on the wire.
    Str(StrKind, String),
    /// A boxed value of any type (`v`).
    Variant(Box<Value>),
    /// `m<T>`: the element type is kept so `Nothing` can be serialized.
    Maybe(Type, Option<Box<Value>>),
    /// `ay`, kept as bytes because OSTree uses it for checksums and names.
    Bytes(Vec<u8>),
    /// `a<T>` for every element type but `y`.
    Array(Type, Vec<Value>),
    /// `(…)`: the members in order.
    Tuple(Vec<Value>),
    /// `{KV}`: a key and its value, as the elements of an `a{KV}` dictionary.
    DictEntry(Box<Value>, Box<Value>),
}

/// Which of the three string types a [`Value::Str`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// `s`: a UTF-8 string.
    String,
    /// `o`: a D-Bus object path.
    ObjectPath,
    /// `g`: a D-Bus type signature.
    Signature,
}

impl Value {
    /// A `s` value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(StrKind::String, s.into())
    }

    /// The type of this value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::Byte(_) => Type::Byte,
            Value::Int16(_) => Type::Int16,
            Value::Uint16(_) => Type::Uint16,
            Value::Int32(_) => Type::Int32,
            Value::Uint32(_) => Type::Uint32,
            Value::Int64(_) => Type::Int64,
            Value::Uint64(_) => Type::Uint64,
            Value::Handle(_) => Type::Handle,
            Value::Double(_) => Type::Double,
            Value::Str(StrKind::String, _) => Type::String,
            Value::Str(StrKind::ObjectPath, _) => Type::ObjectPath,
            Value::Str(StrKind::Signature, _) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Tuple(items) => Type::Tuple(items.iter().map(Value::type_of).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.type_of()), Box::new(v.type_of())),
        }
    }

    /// The serialized bytes of this value, in normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write::write_value(self, &mut out);
        out
    }

    /// Parses `data` as a value of type `ty`, refusing anything that is not
    /// in normal form.
    pub fn from_bytes(ty: &Type, data: &[u8]) -> Result<Value, ParseError> {
        read::parse_normal(ty, data)
    }

    /// The GVariant text form (as `ostree show` prints), e.g. `['a', 'b']`.
    pub fn to_text(&self) -> String {
        text::to_text(self)
    }

    /// Returns the items of a tuple, or `None` for any other value.
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// Returns the contents of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(_, s) => Some(s),
            _ => None,
        }
    }

    /// Returns the bytes of an `ay` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Returns the elements of an array value (not `ay`).
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(_, items) => Some(items),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
