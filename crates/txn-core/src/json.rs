//! A small JSON parser that keeps every number token's text (amounts are never parsed through
//! a binary float) and bounds the nesting depth.
//!
//! It accepts exactly what Python's `json.loads` accepts on a `str` (the Python handler's
//! parser), so that both implementations agree on which documents are malformed:
//! whitespace is space, tab, CR and LF; `NaN`, `Infinity` and `-Infinity` are number tokens;
//! control characters inside strings are rejected; `\uXXXX` escapes combine surrogate pairs;
//! a duplicate object key keeps its first position and its last value.

use crate::pyjson::{Dumps, Numbers};
use thiserror::Error;

/// Deepest nesting of arrays/objects accepted (design.md section 3: deeper is MALFORMED_FILE).
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed JSON value. Numbers keep their token text; objects keep key order.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// The number token exactly as written (`10.50`, `1e3`, `-0`, `NaN`, `Infinity`).
    Number(String),
    /// A string (escapes resolved).
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// Key/value pairs in first-seen key order; a repeated key keeps its last value.
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// The JSON type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "boolean",
            JsonValue::Number(_) => "number",
            JsonValue::String(_) => "string",
            JsonValue::Array(_) => "array",
            JsonValue::Object(_) => "object",
        }
    }

    /// Look a key up in an object.
    pub fn get(&self, key: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Serialise compactly, numbers as their token text.
    pub fn to_json_string(&self) -> String {
        Dumps::compact(false, Numbers::Tokens).dumps(self)
    }
}

/// Why a document could not be parsed. A syntax error carries the position where reading
/// stopped, which is the position the Python handler reports too (decision P25).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// The text is not JSON.
    #[error("{reason} at line {line}, column {column}")]
    Syntax {
        /// What was wrong there, in words (not part of any stored text).
        reason: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column, counted in code points.
        column: usize,
    },
    /// `NaN`, `Infinity` or `-Infinity` where constants are rejected.
    #[error("{0} is not allowed")]
    Constant(&'static str),
    /// Nested deeper than [`ParseOptions::recursion_limit`].
    #[error("nested too deeply")]
    TooDeep,
}

/// 1-based line and column (in code points) of a byte offset into `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = match before.rfind('\n') {
        Some(nl) => before[nl..].chars().count(),
        None => before.chars().count() + 1,
    };
    (line, column)
}

/// How to parse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParseOptions {
    /// Reject `NaN` / `Infinity` / `-Infinity` (the processor's file parser) or keep them as
    /// number tokens (Python's default `json.loads`, used for queue messages).
    pub reject_constants: bool,
    /// Nesting at which parsing gives up with [`JsonError::TooDeep`] (Python's recursion limit
    /// is reached at about this depth).
    pub recursion_limit: usize,
}

/// Python's `json.loads` defaults: constants accepted, recursion limit about 1000 frames.
pub(crate) const PYTHON_DEFAULT: ParseOptions = ParseOptions {
    reject_constants: false,
    recursion_limit: RECURSION_LIMIT,
};

/// Nesting depth at which Python's json module runs out of recursion (sys.getrecursionlimit()
/// is 1000, minus the frames of the Lambda runtime and handler).
pub(crate) const RECURSION_LIMIT: usize = 980;

/// A parsed document and whether one of its strings holds a lone UTF-16 surrogate escape
/// (replaced by U+FFFD in the value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub value: JsonValue,
    pub lone_surrogate: bool,
}

/// Parse a whole document with Python's defaults.
pub fn parse(text: &str) -> Result<JsonValue, JsonError> {
    parse_with(text, PYTHON_DEFAULT).map(|p| p.value)
}

/// Parse a whole document.
pub(crate) fn parse_with(text: &str, options: ParseOptions) -> Result<Parsed, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        options,
        lone_surrogate: false,
    };
    p.ws();
    let value = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("text after the document"));
    }
    Ok(Parsed {
        value,
        lone_surrogate: p.lone_surrogate,
    })
}

/// The deepest nesting of arrays/objects in a parsed value (the top-level value is level 1).
pub(crate) fn value_depth(value: &JsonValue) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        match node {
            JsonValue::Array(items) => {
                max = max.max(depth);
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            JsonValue::Object(pairs) => {
                max = max.max(depth);
                stack.extend(pairs.iter().map(|(_, v)| (v, depth + 1)));
            }
            _ => {}
        }
    }
    max
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |v, &c| char::from(c).to_digit(16).map(|d| v * 16 + d))
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    options: ParseOptions,
    lone_surrogate: bool,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> JsonError {
        self.err_at(reason, self.pos)
    }

    fn err_at(&self, reason: &'static str, offset: usize) -> JsonError {
        let (line, column) = line_and_column(self.text, offset);
        JsonError::Syntax {
            reason,
            line,
            column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn rest(&self) -> &[u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn constant(&mut self, name: &'static str) -> Result<JsonValue, JsonError> {
        if self.options.reject_constants {
            return Err(JsonError::Constant(name));
        }
        self.pos += name.len();
        Ok(JsonValue::Number(name.to_owned()))
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        let rest = self.rest();
        match rest.first() {
            None => Err(self.err("expected a value")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(JsonValue::String(self.string()?)),
            Some(b'n') if rest.starts_with(b"null") => {
                self.pos += 4;
                Ok(JsonValue::Null)
            }
            Some(b't') if rest.starts_with(b"true") => {
                self.pos += 4;
                Ok(JsonValue::Bool(true))
            }
            Some(b'f') if rest.starts_with(b"false") => {
                self.pos += 5;
                Ok(JsonValue::Bool(false))
            }
            Some(b'N') if rest.starts_with(b"NaN") => self.constant("NaN"),
            Some(b'I') if rest.starts_with(b"Infinity") => self.constant("Infinity"),
            Some(b'-') if rest.starts_with(b"-Infinity") => self.constant("-Infinity"),
            Some(_) => self.number(),
        }
    }

    fn number(&mut self) -> Result<JsonValue, JsonError> {
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?  (Python's NUMBER_RE)
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err_at("expected a value", start)),
        }
        if self.peek() == Some(b'.') && matches!(self.s.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mut q = self.pos + 1;
            if let Some(b'+' | b'-') = self.s.get(q) {
                q += 1;
            }
            if matches!(self.s.get(q), Some(b'0'..=b'9')) {
                self.pos = q;
                self.digits();
            }
        }
        Ok(JsonValue::Number(
            self.text
                .get(start..self.pos)
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// Four hex digits at `self.pos`; `u_pos` is where the `u` of the escape is. Like CPython,
    /// an escape needs at least one more character after its four digits.
    fn hex4(&mut self, u_pos: usize) -> Result<u32, JsonError> {
        let end = self.pos + 4;
        if end >= self.s.len() {
            return Err(self.err_at("invalid \\u escape", u_pos));
        }
        let v = hex_value(&self.s[self.pos..end])
            .ok_or_else(|| self.err_at("invalid \\u escape", u_pos))?;
        self.pos = end;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let begin = self.pos;
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.err_at("unterminated string", begin)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let backslash = self.pos;
                    self.pos += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.err_at("unterminated string", begin))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4(self.pos - 1)?;
                            // CPython pairs a high surrogate with a following `\\uXXXX` only
                            // when at least 7 characters follow the first escape.
                            if (0xD800..0xDC00).contains(&cp)
                                && self.pos + 6 < self.s.len()
                                && self.rest().starts_with(b"\\u")
                            {
                                let digits = &self.s[self.pos + 2..self.pos + 6];
                                let lo = hex_value(digits).ok_or_else(|| {
                                    self.err_at("invalid \\u escape", self.pos + 1)
                                })?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    self.pos += 6;
                                }
                            }
                            // A lone surrogate (which Python keeps in its str) cannot live in a
                            // Rust String: it becomes U+FFFD and the parse result says so.
                            match char::from_u32(cp) {
                                Some(ch) => out.push(ch),
                                None => {
                                    self.lone_surrogate = true;
                                    out.push('\u{FFFD}');
                                }
                            }
                        }
                        _ => return Err(self.err_at("invalid escape", backslash)),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
            }
        }
    }

    /// At `[` or `{`: checks the depth and steps over the bracket and the white space after it;
    /// true when `close` follows at once (an empty array or object).
    fn open(&mut self, depth: usize, close: u8) -> Result<bool, JsonError> {
        if depth > self.options.recursion_limit {
            return Err(JsonError::TooDeep);
        }
        self.pos += 1;
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.pos += 1;
        }
        Ok(empty)
    }

    /// After an element: false past a comma (another element follows), true past `close`.
    fn next_or_close(&mut self, close: u8) -> Result<bool, JsonError> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.err("expected ',' or a closing bracket")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        let mut items = Vec::new();
        if !self.open(depth, b']')? {
            loop {
                items.push(self.value(depth)?);
                if self.next_or_close(b']')? {
                    break;
                }
            }
        }
        Ok(JsonValue::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        let mut pairs: Vec<(String, JsonValue)> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        if self.open(depth, b'}')? {
            return Ok(JsonValue::Object(pairs));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a quoted key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.ws();
            let value = self.value(depth)?;
            // Python's dict: a repeated key keeps its first position and its last value.
            if pairs.len() < 16 {
                match pairs.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => pairs.push((key, value)),
                }
            } else {
                if index.is_empty() {
                    index = pairs
                        .iter()
                        .enumerate()
                        .map(|(i, (k, _))| (k.clone(), i))
                        .collect();
                }
                match index.get(&key) {
                    Some(&i) => {
                        if let Some(slot) = pairs.get_mut(i) {
                            slot.1 = value;
                        }
                    }
                    None => {
                        index.insert(key.clone(), pairs.len());
                        pairs.push((key, value));
                    }
                }
            }
            if self.next_or_close(b'}')? {
                return Ok(JsonValue::Object(pairs));
            }
        }
    }
}

#[cfg(test)]
mod tests;
