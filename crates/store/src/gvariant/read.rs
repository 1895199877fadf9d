//! Parsing, strict: only normal-form data is accepted.

use super::{StrKind, Type, Value};

/// Why bytes could not be read as a value of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes break the framing rules of a type.
    #[error("{ty}: {what} (at byte {at})")]
    Malformed {
        /// The type being read.
        ty: String,
        /// Which rule was broken.
        what: &'static str,
        /// Offset of the value in the whole input.
        at: usize,
    },
    /// The bytes parse, but are not their value's normal form (the payload
    /// names the type): another encoding would hash differently.
    #[error("value of type {0} is not in GVariant normal form")]
    NotNormal(String),
    /// Containers nested past the limit.
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Nesting limit for hostile input (variants can nest without bound).
const MAX_DEPTH: usize = 64;

pub(super) fn parse_normal(ty: &Type, data: &[u8]) -> Result<Value, ParseError> {
    let value = parse(ty, data, 0, 0)?;
    if value.to_bytes() != data {
        return Err(ParseError::NotNormal(ty.to_string()));
    }
    Ok(value)
}

fn malformed(ty: &Type, what: &'static str, at: usize) -> ParseError {
    ParseError::Malformed {
        ty: ty.to_string(),
        what,
        at,
    }
}

/// Width of framing offsets in a container of `size` bytes.
fn offset_width(size: usize) -> usize {
    match size {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        _ if size as u64 <= 0xffff_ffff => 4,
        _ => 8,
    }
}

fn read_offset(data: &[u8], at: usize, width: usize) -> usize {
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(&data[at..at + width]);
    u64::from_le_bytes(buf) as usize
}

fn fixed<const N: usize>(ty: &Type, data: &[u8], base: usize) -> Result<[u8; N], ParseError> {
    data.try_into()
        .map_err(|_| malformed(ty, "wrong size", base))
}

/// `base` is the offset of `data` in the outermost buffer, for messages.
fn parse(ty: &Type, data: &[u8], base: usize, depth: usize) -> Result<Value, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    Ok(match ty {
        Type::Bool => match data {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return Err(malformed(ty, "boolean not 0 or 1", base)),
        },
        Type::Byte => Value::Byte(fixed::<1>(ty, data, base)?[0]),
        Type::Int16 => Value::Int16(i16::from_le_bytes(fixed(ty, data, base)?)),
        Type::Uint16 => Value::Uint16(u16::from_le_bytes(fixed(ty, data, base)?)),
        Type::Int32 => Value::Int32(i32::from_le_bytes(fixed(ty, data, base)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(ty, data, base)?)),
        Type::Uint32 => Value::Uint32(u32::from_le_bytes(fixed(ty, data, base)?)),
        Type::Int64 => Value::Int64(i64::from_le_bytes(fixed(ty, data, base)?)),
        Type::Uint64 => Value::Uint64(u64::from_le_bytes(fixed(ty, data, base)?)),
        Type::Double => Value::Double(f64::from_le_bytes(fixed(ty, data, base)?)),
        Type::String | Type::ObjectPath | Type::Signature => {
            let kind = match ty {
                Type::String => StrKind::String,
                Type::ObjectPath => StrKind::ObjectPath,
                _ => StrKind::Signature,
            };
            let Some((0, body)) = data.split_last() else {
                return Err(malformed(ty, "string not NUL-terminated", base));
            };
            if body.contains(&0) {
                return Err(malformed(ty, "NUL inside string", base));
            }
            let s =
                std::str::from_utf8(body).map_err(|_| malformed(ty, "string not UTF-8", base))?;
            Value::Str(kind, s.to_owned())
        }
        Type::Variant => {
            let zero = data
                .iter()
                .rposition(|&b| b == 0)
                .ok_or_else(|| malformed(ty, "variant without type", base))?;
            let sig = std::str::from_utf8(&data[zero + 1..])
                .map_err(|_| malformed(ty, "variant type not UTF-8", base))?;
            let inner_ty =
                Type::parse(sig).map_err(|_| malformed(ty, "variant type invalid", base))?;
            Value::Variant(Box::new(parse(&inner_ty, &data[..zero], base, depth + 1)?))
        }
        Type::Maybe(inner) => {
            if data.is_empty() {
                Value::Maybe((**inner).clone(), None)
            } else if inner.fixed_size().is_some() {
                let v = parse(inner, data, base, depth + 1)?;
                Value::Maybe((**inner).clone(), Some(Box::new(v)))
            } else {
                let Some((0, body)) = data.split_last() else {
                    return Err(malformed(ty, "maybe without trailing zero", base));
                };
                let v = parse(inner, body, base, depth + 1)?;
                Value::Maybe((**inner).clone(), Some(Box::new(v)))
            }
        }
        Type::Array(inner) if **inner == Type::Byte => Value::Bytes(data.to_vec()),
        Type::Array(inner) => {
            Value::Array((**inner).clone(), parse_array(inner, data, base, depth)?)
        }
        Type::Tuple(items) => Value::Tuple(parse_struct(ty, items, data, base, depth)?),
        Type::DictEntry(k, v) => {
            let items = [(**k).clone(), (**v).clone()];
            let mut parsed = parse_struct(ty, &items, data, base, depth)?.into_iter();
            match (parsed.next(), parsed.next()) {
                (Some(k), Some(v)) => Value::DictEntry(Box::new(k), Box::new(v)),
                _ => return Err(malformed(ty, "dict entry without two members", base)),
            }
        }
    })
}

fn parse_array(
    elem: &Type,
    data: &[u8],
    base: usize,
    depth: usize,
) -> Result<Vec<Value>, ParseError> {
    let arr_ty = || Type::Array(Box::new(elem.clone()));
    if let Some(size) = elem.fixed_size() {
        if !data.len().is_multiple_of(size) {
            return Err(malformed(
                &arr_ty(),
                "size not a multiple of the element size",
                base,
            ));
        }
        return data
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| parse(elem, chunk, base + i * size, depth + 1))
            .collect();
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let width = offset_width(data.len());
    let table = read_offset(data, data.len() - width, width);
    if table > data.len() || !(data.len() - table).is_multiple_of(width) {
        return Err(malformed(&arr_ty(), "bad framing offset table", base));
    }
    let count = (data.len() - table) / width;
    let align = elem.alignment();
    let mut items = Vec::with_capacity(count);
    let mut pos = 0usize;
    for i in 0..count {
        let start = pos.next_multiple_of(align);
        let end = read_offset(data, table + i * width, width);
        if start > end || end > table {
            return Err(malformed(
                &arr_ty(),
                "framing offset out of range",
                base + pos,
            ));
        }
        items.push(parse(elem, &data[start..end], base + start, depth + 1)?);
        pos = end;
    }
    Ok(items)
}

fn parse_struct(
    ty: &Type,
    items: &[Type],
    data: &[u8],
    base: usize,
    depth: usize,
) -> Result<Vec<Value>, ParseError> {
    if let Some(size) = ty.fixed_size()
        && data.len() != size
    {
        return Err(malformed(ty, "wrong size for a fixed-size structure", base));
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let width = offset_width(data.len());
    let mut table_end = data.len();
    let mut pos = 0usize;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let start = pos.next_multiple_of(item.alignment());
        let end = if let Some(size) = item.fixed_size() {
            start + size
        } else if i == items.len() - 1 {
            table_end
        } else {
            if table_end < width || width == 0 {
                return Err(malformed(ty, "missing framing offset", base));
            }
            table_end -= width;
            read_offset(data, table_end, width)
        };
        if start > end || end > table_end {
            return Err(malformed(ty, "member out of range", base + start));
        }
        out.push(parse(item, &data[start..end], base + start, depth + 1)?);
        pos = end;
    }
    Ok(out)
}
