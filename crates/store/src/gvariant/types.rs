//! GVariant type strings, alignment and fixed sizes.

use std::fmt;

/// A complete GVariant type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `b`.
    Bool,
    /// `y`.
    Byte,
    /// `n`.
    Int16,
    /// `q`.
    Uint16,
    /// `i`.
    Int32,
    /// `u`.
    Uint32,
    /// `x`.
    Int64,
    /// `t`.
    Uint64,
    /// `h`.
    Handle,
    /// `d`.
    Double,
    /// `s`.
    String,
    /// `o`.
    ObjectPath,
    /// `g`.
    Signature,
    /// `v`.
    Variant,
    /// `m<T>`: a `T` or nothing.
    Maybe(Box<Type>),
    /// `a<T>`: any number of `T`.
    Array(Box<Type>),
    /// `(…)`: the member types in order; `()` is the unit type.
    Tuple(Vec<Type>),
    /// `{KV}`: a basic-type key and a value.
    DictEntry(Box<Type>, Box<Type>),
}

/// A type string that does not describe exactly one complete type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GVariant type string {0:?}")]
pub struct TypeError(pub String);

impl Type {
    /// Parses a type string that holds exactly one complete type.
    pub fn parse(s: &str) -> Result<Type, TypeError> {
        let (ty, rest) = parse_one(s.as_bytes(), 0).ok_or_else(|| TypeError(s.to_owned()))?;
        if rest.is_empty() {
            Ok(ty)
        } else {
            Err(TypeError(s.to_owned()))
        }
    }

    /// The alignment of values of this type, in bytes.
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::String | Type::ObjectPath | Type::Signature => 1,
            Type::Int16 | Type::Uint16 => 2,
            Type::Int32 | Type::Uint32 | Type::Handle => 4,
            Type::Int64 | Type::Uint64 | Type::Double | Type::Variant => 8,
            Type::Maybe(t) | Type::Array(t) => t.alignment(),
            Type::Tuple(items) => items.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// The size of every value of this type, or `None` when values vary in size.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::Int16 | Type::Uint16 => Some(2),
            Type::Int32 | Type::Uint32 | Type::Handle => Some(4),
            Type::Int64 | Type::Uint64 | Type::Double => Some(8),
            Type::String
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Maybe(_)
            | Type::Array(_) => None,
            Type::Tuple(items) => fixed_struct_size(items.iter()),
            Type::DictEntry(k, v) => fixed_struct_size([k.as_ref(), v.as_ref()].into_iter()),
        }
    }
}

/// A structure is fixed-size when all its members are; its size is the end
/// of the last member rounded up to the structure's alignment, and the empty
/// structure takes one byte.
fn fixed_struct_size<'a>(items: impl Iterator<Item = &'a Type> + Clone) -> Option<usize> {
    let mut offset = 0usize;
    let mut align = 1usize;
    let mut any = false;
    for t in items {
        any = true;
        let a = t.alignment();
        align = align.max(a);
        offset = offset.next_multiple_of(a);
        offset += t.fixed_size()?;
    }
    if !any {
        return Some(1);
    }
    Some(offset.next_multiple_of(align))
}

/// Parses one type at the start of `s`; returns it and the rest.
fn parse_one(s: &[u8], depth: usize) -> Option<(Type, &[u8])> {
    // GLib limits nesting to 128 levels; we refuse deeper strings too.
    if depth > 128 {
        return None;
    }
    let (&c, rest) = s.split_first()?;
    let simple = match c {
        b'b' => Type::Bool,
        b'y' => Type::Byte,
        b'n' => Type::Int16,
        b'q' => Type::Uint16,
        b'i' => Type::Int32,
        b'u' => Type::Uint32,
        b'x' => Type::Int64,
        b't' => Type::Uint64,
        b'h' => Type::Handle,
        b'd' => Type::Double,
        b's' => Type::String,
        b'o' => Type::ObjectPath,
        b'g' => Type::Signature,
        b'v' => Type::Variant,
        b'm' => {
            let (t, rest) = parse_one(rest, depth + 1)?;
            return Some((Type::Maybe(Box::new(t)), rest));
        }
        b'a' => {
            let (t, rest) = parse_one(rest, depth + 1)?;
            return Some((Type::Array(Box::new(t)), rest));
        }
        b'(' => {
            let mut items = Vec::new();
            let mut rest = rest;
            loop {
                if let Some(r) = rest.strip_prefix(b")") {
                    return Some((Type::Tuple(items), r));
                }
                let (t, r) = parse_one(rest, depth + 1)?;
                items.push(t);
                rest = r;
            }
        }
        b'{' => {
            let (k, rest) = parse_one(rest, depth + 1)?;
            if !k.is_basic() {
                return None;
            }
            let (v, rest) = parse_one(rest, depth + 1)?;
            let rest = rest.strip_prefix(b"}")?;
            return Some((Type::DictEntry(Box::new(k), Box::new(v)), rest));
        }
        _ => return None,
    };
    Some((simple, rest))
}

impl Type {
    fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Maybe(_) | Type::Array(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("b"),
            Type::Byte => f.write_str("y"),
            Type::Int16 => f.write_str("n"),
            Type::Uint16 => f.write_str("q"),
            Type::Int32 => f.write_str("i"),
            Type::Uint32 => f.write_str("u"),
            Type::Int64 => f.write_str("x"),
            Type::Uint64 => f.write_str("t"),
            Type::Handle => f.write_str("h"),
            Type::Double => f.write_str("d"),
            Type::String => f.write_str("s"),
            Type::ObjectPath => f.write_str("o"),
            Type::Signature => f.write_str("g"),
            Type::Variant => f.write_str("v"),
            Type::Maybe(t) => write!(f, "m{t}"),
            Type::Array(t) => write!(f, "a{t}"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for t in items {
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
            Type::DictEntry(k, v) => write!(f, "{{{k}{v}}}"),
        }
    }
}
