//! A minimal JSON value and pretty printer, enough for `--json` output
//! without pulling serde into the workspace.

use std::fmt::Write;

/// A JSON value. Objects keep their fields in the given order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (all the numbers the CLI prints are integers).
    Int(i64),
    /// A string, escaped on output.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object with fields in order.
    Object(Vec<(&'static str, Value)>),
}

impl Value {
    /// `value`, or `null` for `None`.
    pub fn opt(value: Option<Value>) -> Value {
        value.unwrap_or(Value::Null)
    }

    /// Two-space indented JSON, no trailing newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let v = Value::from("a\"b\\c\nd\u{1}é —");
        assert_eq!(v.to_pretty(), r#""a\"b\\c\nd\u0001é —""#);
    }

    #[test]
    fn pretty_layout() {
        let v = Value::Object(vec![
            ("a", Value::Int(-1)),
            ("b", Value::Array(vec![Value::Bool(true), Value::Null])),
            ("c", Value::Object(vec![])),
            ("d", Value::Array(vec![])),
        ]);
        assert_eq!(
            v.to_pretty(),
            "{\n  \"a\": -1,\n  \"b\": [\n    true,\n    null\n  ],\n  \"c\": {},\n  \"d\": []\n}"
        );
    }
}
