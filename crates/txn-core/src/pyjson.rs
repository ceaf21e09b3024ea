//! Compact JSON text written alike by both implementations, where it is stored or sent: the
//! values of an echoed record that are not strings (D8), a non-string SQS body and a forwarded
//! event (Q1). Numbers are written as contract/decisions.md Q3 says (the Python handlers'
//! `json.dumps` after `json.loads`); message texts never need it (decision P25).

use crate::json::JsonValue;

/// Compact JSON text with every non-ASCII character escaped: the form of every message body
/// either function writes and of a non-string SQS body (decision Q1).
pub fn ascii_json(value: &JsonValue) -> String {
    Dumps::compact(true, Numbers::Python).dumps(value)
}

/// How Python sees the number tokens of a parsed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// As strings (`parse_int=JsonNumber, parse_float=JsonNumber`, a `str` subclass): dumped as
    /// JSON strings of their token text.
    Quoted,
    /// As Python `int` / `float` (the default `json.loads`), written as decision Q3 says.
    Python,
    /// As the document wrote them (their token text).
    Tokens,
}

/// How a value is written: always compact (separators `,` and `:`).
#[derive(Debug, Clone, Copy)]
pub struct Dumps {
    /// Escape every non-ASCII character as `\uXXXX`.
    pub ensure_ascii: bool,
    /// How number tokens are written.
    pub numbers: Numbers,
}

impl Dumps {
    /// `json.dumps(v, separators=(",", ":"), ensure_ascii=...)`.
    pub fn compact(ensure_ascii: bool, numbers: Numbers) -> Dumps {
        Dumps {
            ensure_ascii,
            numbers,
        }
    }

    /// The JSON text of a value.
    pub fn dumps(&self, value: &JsonValue) -> String {
        let mut out = String::new();
        self.write(value, &mut out);
        out
    }

    fn write(&self, value: &JsonValue, out: &mut String) {
        match value {
            JsonValue::Null => out.push_str("null"),
            JsonValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonValue::Number(n) => match self.numbers {
                Numbers::Quoted => write_string(n, self.ensure_ascii, out),
                Numbers::Python => out.push_str(&python_number(n)),
                Numbers::Tokens => out.push_str(n),
            },
            JsonValue::String(s) => write_string(s, self.ensure_ascii, out),
            JsonValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(item, out);
                }
                out.push(']');
            }
            JsonValue::Object(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, self.ensure_ascii, out);
                    out.push(':');
                    self.write(v, out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal as Python's encoder writes it.
pub(crate) fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u(c as u32, out),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u(u32::from(*unit), out);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u(unit: u32, out: &mut String) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// Escape every character above `~` of a JSON text as `\uXXXX` (what `ensure_ascii=True`
/// changes); only valid on text whose non-ASCII characters are all inside string literals.
pub(crate) fn ascii_only(json_text: &str) -> String {
    let mut out = String::with_capacity(json_text.len());
    for c in json_text.chars() {
        if (c as u32) > 0x7e {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_u(u32::from(*unit), &mut out);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON number token as Python's `json.dumps(json.loads(token))` writes it.
pub(crate) fn python_number(token: &str) -> String {
    match token {
        "NaN" => return "NaN".to_owned(),
        "Infinity" => return "Infinity".to_owned(),
        "-Infinity" => return "-Infinity".to_owned(),
        _ => {}
    }
    let is_int = !token.contains(['.', 'e', 'E']);
    if is_int {
        let (neg, digits) = match token.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, token),
        };
        let digits = digits.trim_start_matches('0');
        return match (neg, digits.is_empty()) {
            (_, true) => "0".to_owned(),
            (true, false) => format!("-{digits}"),
            (false, false) => digits.to_owned(),
        };
    }
    match token.parse::<f64>() {
        Ok(f) => float_repr(f),
        Err(_) => token.to_owned(),
    }
}

/// Python's `repr(float)`.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's Debug output is the shortest round-trip text and switches to exponent notation at
    // the same thresholds as Python (exponent < -4 or >= 16); only the exponent's spelling
    // differs: Python writes a sign and at least two digits.
    let text = format!("{f:?}");
    match text.split_once('e') {
        None => text,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let mantissa = mantissa.strip_suffix(".0").unwrap_or(mantissa);
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn dumps_like_python() {
        let v = parse(r#"{"a": [1, 2.50, true, null], "é": "x\u0001\u007f€😀"}"#).unwrap();
        // json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
        assert_eq!(
            Dumps::compact(false, Numbers::Python).dumps(&v),
            "{\"a\":[1,2.5,true,null],\"é\":\"x\\u0001\u{7f}€😀\"}"
        );
        // json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=True): ascii_json
        assert_eq!(
            ascii_json(&v),
            "{\"a\":[1,2.5,true,null],\"\\u00e9\":\"x\\u0001\\u007f\\u20ac\\ud83d\\ude00\"}"
        );
        // Numbers parsed as JsonNumber (a str subclass) are dumped as strings.
        assert_eq!(
            Dumps::compact(false, Numbers::Quoted).dumps(&parse("[1, 2.50]").unwrap()),
            "[\"1\",\"2.50\"]"
        );
    }

    #[test]
    fn python_numbers() {
        for (token, want) in [
            ("-0", "0"),
            ("10", "10"),
            ("1.50", "1.5"),
            ("1e3", "1000.0"),
            ("1e16", "1e+16"),
            ("1.5e-5", "1.5e-05"),
            ("0.0001", "0.0001"),
            ("-0.0", "-0.0"),
            ("1e400", "Infinity"),
            ("123456789.123456789", "123456789.12345679"),
            ("1E+22", "1e+22"),
        ] {
            assert_eq!(python_number(token), want, "{token}");
        }
    }

    #[test]
    fn ascii_only_escapes() {
        assert_eq!(
            ascii_only("{\"k\":\"é😀\u{7f}\"}"),
            "{\"k\":\"\\u00e9\\ud83d\\ude00\\u007f\"}"
        );
    }
}
