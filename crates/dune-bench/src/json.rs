//! A minimal JSON value and pretty printer for `--json` of `dune bench` and
//! `dune doctor` (no serde in the workspace).

use std::fmt::Write;

/// A JSON value. Objects keep their fields in the given order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number; NaN and infinities are written as `null`.
    Num(f64),
    /// A string, escaped on output.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object with fields in order.
    Object(Vec<(&'static str, Value)>),
}

impl Value {
    /// `f(v)`, or `null` for `None`.
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }

    /// `v`, or `null` for `None`.
    pub fn or_null(v: Option<Value>) -> Value {
        v.unwrap_or(Value::Null)
    }

    /// Two-space indented JSON with a trailing newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = |out: &mut String, depth: usize| {
            out.push('\n');
            out.extend(std::iter::repeat_n("  ", depth));
        };
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Num(x) if x.is_finite() => {
                // Rust prints the shortest text that reads back to the same f64; JSON
                // has no "-0".
                let _ = write!(out, "{}", if *x == 0.0 { 0.0 } else { *x });
            }
            Value::Num(_) => out.push_str("null"),
            Value::Str(s) => write_str(out, s),
            Value::Array(items) if items.is_empty() => out.push_str("[]"),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                }
                indent(out, depth);
                out.push(']');
            }
            Value::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Value::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

/// Writes `s` as a JSON string literal (RFC 8259, section 7).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Num(x)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or(Value::Num(n as f64), Value::Int)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::from(n as u64)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(i64::from(n))
    }
}

impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Int(i64::from(n))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_strings_and_layout() {
        let v = Value::Object(vec![
            ("a", Value::Num(35.8)),
            ("b", Value::Num(f64::NAN)),
            ("c", Value::Array(vec![Value::Int(-1), Value::Num(-0.0), Value::Num(1e21)])),
            ("d", Value::from("q\"\n\u{1}")),
            ("e", Value::Object(vec![])),
        ]);
        assert_eq!(
            v.to_pretty(),
            "{\n  \"a\": 35.8,\n  \"b\": null,\n  \"c\": [\n    -1,\n    0,\n    1000000000000000000000\n  ],\n  \"d\": \"q\\\"\\n\\u0001\",\n  \"e\": {}\n}\n"
        );
    }
}
