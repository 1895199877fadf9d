//! The GVariant text form, for display (`strata show`).

use super::Value;

pub(super) fn to_text(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Byte(v) => {
            let _ = write!(out, "0x{v:02x}");
        }
        Value::Int16(v) => out.push_str(&v.to_string()),
        Value::Uint16(v) => out.push_str(&v.to_string()),
        Value::Int32(v) | Value::Handle(v) => out.push_str(&v.to_string()),
        Value::Uint32(v) => out.push_str(&v.to_string()),
        Value::Int64(v) => out.push_str(&v.to_string()),
        Value::Uint64(v) => out.push_str(&v.to_string()),
        Value::Double(v) => out.push_str(&v.to_string()),
        Value::Str(_, s) => quote(s, out),
        Value::Variant(inner) => {
            out.push('<');
            write(inner, out);
            out.push('>');
        }
        Value::Maybe(_, None) => out.push_str("nothing"),
        Value::Maybe(_, Some(inner)) => write(inner, out),
        Value::Bytes(b) => {
            out.push_str("[byte ");
            for (i, v) in b.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "0x{v:02x}");
            }
            out.push(']');
        }
        Value::Array(_, items) => {
            let is_dict = matches!(items.first(), Some(Value::DictEntry(..)));
            out.push(if is_dict { '{' } else { '[' });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if let Value::DictEntry(k, v) = item {
                    write(k, out);
                    out.push_str(": ");
                    write(v, out);
                } else {
                    write(item, out);
                }
            }
            out.push(if is_dict { '}' } else { ']' });
        }
        Value::Tuple(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::DictEntry(k, v) => {
            out.push('{');
            write(k, out);
            out.push_str(", ");
            write(v, out);
            out.push('}');
        }
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
}
