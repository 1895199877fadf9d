//! Serialization to normal form.

use super::{Type, Value};

/// Appends the serialized form of `value` to `out`. `out` must be empty or
/// end at an offset aligned for `value` (true for every container below).
pub(super) fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Byte(b) => out.push(*b),
        Value::Int16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Int32(v) | Value::Handle(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Int64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Str(_, s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Variant(inner) => {
            write_value(inner, out);
            out.push(0);
            out.extend_from_slice(inner.type_of().to_string().as_bytes());
        }
        Value::Maybe(ty, inner) => {
            if let Some(inner) = inner {
                write_value(inner, out);
                if ty.fixed_size().is_none() {
                    out.push(0);
                }
            }
        }
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Array(ty, items) => write_array(ty, items, out),
        Value::Tuple(items) => write_struct(items.iter(), out),
        Value::DictEntry(k, v) => write_struct([k.as_ref(), v.as_ref()].into_iter(), out),
    }
}

fn pad_to(out: &mut Vec<u8>, start: usize, align: usize) {
    let len = (out.len() - start).next_multiple_of(align) + start;
    out.resize(len, 0);
}

fn write_array(ty: &Type, items: &[Value], out: &mut Vec<u8>) {
    let start = out.len();
    if ty.fixed_size().is_some() {
        for item in items {
            write_value(item, out);
        }
        return;
    }
    let align = ty.alignment();
    let mut ends = Vec::with_capacity(items.len());
    for item in items {
        pad_to(out, start, align);
        write_value(item, out);
        ends.push(out.len() - start);
    }
    write_offsets(&ends, start, out);
}

fn write_struct<'a>(items: impl Iterator<Item = &'a Value> + Clone, out: &mut Vec<u8>) {
    let start = out.len();
    let types: Vec<Type> = items.clone().map(Value::type_of).collect();
    if types.is_empty() {
        // The unit value is one zero byte.
        out.push(0);
        return;
    }
    let mut ends = Vec::new();
    let last = types.len() - 1;
    for (i, (item, ty)) in items.zip(&types).enumerate() {
        pad_to(out, start, ty.alignment());
        write_value(item, out);
        if i != last && ty.fixed_size().is_none() {
            ends.push(out.len() - start);
        }
    }
    let whole = Type::Tuple(types);
    if whole.fixed_size().is_some() {
        pad_to(out, start, whole.alignment());
    } else {
        ends.reverse();
        write_offsets(&ends, start, out);
    }
}

/// Appends framing offsets, each as wide as the container's total size needs.
fn write_offsets(ends: &[usize], start: usize, out: &mut Vec<u8>) {
    let body = out.len() - start;
    let width = offset_width_for_body(body, ends.len());
    for &end in ends {
        out.extend_from_slice(&end.to_le_bytes()[..width]);
    }
}

/// The framing offset width GLib picks for a body of `body` bytes followed
/// by `n` offsets: the smallest width in which the whole container fits.
fn offset_width_for_body(body: usize, n: usize) -> usize {
    if n == 0 {
        0
    } else if body + n <= 0xff {
        1
    } else if body + 2 * n <= 0xffff {
        2
    } else if body as u64 + 4 * n as u64 <= 0xffff_ffff {
        4
    } else {
        8
    }
}
