//! A tiny JSON value and pretty-printer for `--json-out` (the workspace has
//! no serde, and the output is a fixed, small document).

use std::fmt::Write;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An unsigned integer, printed exactly.
    Int(u64),
    /// A float; NaN and infinities become `null` (JSON has no spelling).
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object; keys keep their insertion order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<const N: usize>(pairs: [(&str, Json); N]) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string value.
    pub fn str(s: &str) -> Json {
        Json::Str(s.to_string())
    }

    /// `Int` or `Null`.
    pub fn opt_int(v: Option<u64>) -> Json {
        v.map_or(Json::Null, Json::Int)
    }

    /// Pretty-printed text with two-space indentation and a final newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Num(v) if v.is_finite() => {
                // `{}` prints the shortest text that round-trips and never
                // uses an exponent; keep a fraction so readers see a float.
                let text = format!("{v}");
                out.push_str(&text);
                if !text.contains('.') {
                    out.push_str(".0");
                }
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => write_str(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                // Arrays of plain numbers stay on one line (timelines).
                if items
                    .iter()
                    .all(|i| matches!(i, Json::Int(_) | Json::Num(_) | Json::Null))
                {
                    out.push('[');
                    for (n, item) in items.iter().enumerate() {
                        if n > 0 {
                            out.push_str(", ");
                        }
                        item.write(out, indent);
                    }
                    out.push(']');
                    return;
                }
                out.push_str("[\n");
                for (n, item) in items.iter().enumerate() {
                    push_indent(out, indent + 1);
                    item.write(out, indent + 1);
                    out.push_str(if n + 1 < items.len() { ",\n" } else { "\n" });
                }
                push_indent(out, indent);
                out.push(']');
            }
            Json::Obj(pairs) if pairs.is_empty() => out.push_str("{}"),
            Json::Obj(pairs) => {
                out.push_str("{\n");
                for (n, (k, v)) in pairs.iter().enumerate() {
                    push_indent(out, indent + 1);
                    write_str(out, k);
                    out.push_str(": ");
                    v.write(out, indent + 1);
                    out.push_str(if n + 1 < pairs.len() { ",\n" } else { "\n" });
                }
                push_indent(out, indent);
                out.push('}');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_valid_json() {
        let doc = Json::obj([
            ("a", Json::Int(3)),
            ("t", Json::Bool(true)),
            ("b", Json::Num(1.5)),
            ("c", Json::Num(2.0)),
            ("d", Json::Num(f64::NAN)),
            ("e", Json::str("q\"\\\n\u{1}")),
            ("f", Json::Arr(vec![Json::Int(1), Json::Num(0.25)])),
            ("g", Json::Arr(vec![Json::obj([("x", Json::Null)])])),
            ("h", Json::Arr(vec![])),
            ("i", Json::Num(-1e3)),
        ]);
        let text = doc.to_pretty();
        assert_eq!(
            text,
            "{\n  \"a\": 3,\n  \"t\": true,\n  \"b\": 1.5,\n  \"c\": 2.0,\n  \"d\": null,\n  \
             \"e\": \"q\\\"\\\\\\n\\u0001\",\n  \"f\": [1, 0.25],\n  \
             \"g\": [\n    {\n      \"x\": null\n    }\n  ],\n  \"h\": [],\n  \
             \"i\": -1000.0\n}\n"
        );
    }
}
