//! JSON arrays in ranges (contract/decisions.md P33 to P35): a streaming structural scanner that
//! finds the elements of a document's top-level array (or of `{"transactions": [...]}`), byte
//! offsets included, holding one element at a time; the split's boundaries; and the rows of one
//! range. The twin of the JSON part of lib/processor_function.py's ranges section: the same
//! boundaries, byte for byte.
//!
//! Why a hand-written scanner and not a crate: streaming JSON readers exist on crates.io
//! (struson, json-streaming, bufjson, actson), but each is a second JSON parser with its own
//! acceptance rules (RFC 8259: no `NaN`, its own surrogate and depth handling), none of which
//! is Python's `json.loads`, and the boundaries must be exactly those of the Python handler,
//! which may use only the standard library. What a boundary needs is only strings (with
//! backslash escapes) and bracket nesting; every element's bytes are then parsed alone by
//! [`crate::json`], the parser that matches `json.loads`, with P14's checks, so a boundary is
//! only trusted when its element parses, and a document the scanner cannot read as the simple
//! shape is not split (the unsplit path reports it as before).

use std::io::{self, BufRead};

use crate::files::{json_row, Row};
use crate::json::{self, JsonValue, ParseOptions, MAX_DEPTH, RECURSION_LIMIT};

const FILE_PARSE: ParseOptions = ParseOptions {
    reject_constants: true,
    recursion_limit: RECURSION_LIMIT,
};

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A byte stream with its absolute offset.
struct Scanner<R: BufRead> {
    input: R,
    /// Offset in the object of the next byte.
    offset: u64,
}

/// What an element's scan does with a byte.
enum Step {
    /// Part of the element; go on.
    Take,
    /// The element's last byte.
    Last,
    /// Not part of the element: it ended before this byte.
    Stop,
}

/// The state of one element's scan.
struct Element {
    /// A number or literal: runs to white space, ',' or ']'.
    scalar: bool,
    in_string: bool,
    escaped: bool,
    /// Open brackets and braces (0 for a string or a scalar).
    depth: usize,
}

impl Element {
    fn starting_with(first: u8) -> Element {
        Element {
            scalar: !matches!(first, b'"' | b'[' | b'{'),
            in_string: false,
            escaped: false,
            depth: 0,
        }
    }

    fn step(&mut self, b: u8) -> Step {
        if self.scalar {
            return if is_ws(b) || b == b',' || b == b']' {
                Step::Stop
            } else {
                Step::Take
            };
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false; // the byte after a backslash, whatever it is
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 0 {
                    return Step::Last; // an element that is a string
                }
            }
            return Step::Take;
        }
        match b {
            b'"' => self.in_string = true,
            b'[' | b'{' => self.depth += 1,
            b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Step::Last;
                }
            }
            _ => {}
        }
        Step::Take
    }
}

impl<R: BufRead> Scanner<R> {
    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        self.input.consume(1);
        self.offset += 1;
    }

    /// Skip JSON white space; the next byte, or `None` at the end.
    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let blanks = buf.iter().take_while(|&&b| is_ws(b)).count();
            let next = buf.get(blanks).copied();
            self.input.consume(blanks);
            self.offset += blanks as u64;
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Step over `literal` if the stream goes on with it (byte by byte: it may span buffers).
    fn take(&mut self, literal: &[u8]) -> io::Result<bool> {
        for &want in literal {
            if self.peek()? != Some(want) {
                return Ok(false);
            }
            self.bump();
        }
        Ok(true)
    }

    /// The bytes of the element that starts at the next byte, into `out`; `false` when a
    /// string or a nesting is not closed at the end of the stream.
    fn element(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        out.clear();
        let Some(first) = self.peek()? else {
            return Ok(false);
        };
        let mut state = Element::starting_with(first);
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(state.scalar); // a number or literal may end with the stream
            }
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                match state.step(b) {
                    Step::Take => used += 1,
                    Step::Last => {
                        used += 1;
                        done = true;
                        break;
                    }
                    Step::Stop => {
                        done = true;
                        break;
                    }
                }
            }
            out.extend_from_slice(buf.get(..used).unwrap_or_default());
            self.input.consume(used);
            self.offset += used as u64;
            if done {
                return Ok(true);
            }
        }
    }
}

/// An element parsed alone with P14's checks, its nesting counted from the document's top
/// level (the element is at `level`: 2 in a top-level array, 3 in `{"transactions": [...]}`).
/// `None`: the unsplit document would be a file error.
fn load_element(data: &[u8], level: usize) -> Option<JsonValue> {
    let text = std::str::from_utf8(data).ok()?;
    let parsed = json::parse_with(text, FILE_PARSE).ok()?;
    if json::value_depth(&parsed.value) + level - 1 > MAX_DEPTH || parsed.lone_surrogate {
        return None;
    }
    Some(parsed.value)
}

/// Where a JSON array's elements are (P33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSplit {
    /// The first element's first byte: range 0's start.
    pub first_byte: u64,
    /// The offset of the array's closing bracket: the last range's end.
    pub end_byte: u64,
    /// (index, first byte) of the first element of every range after range 0.
    pub bounds: Vec<(u64, u64)>,
}

/// Scan a JSON document once for its range boundaries (P33): for k = 1, 2, ..., the first
/// element (never element 0) that starts at or after byte k * step. `Ok(None)` when it is not
/// the simple shape (UTF-8 with an optional BOM; a top-level array, or an object whose one key
/// is the plain "transactions" holding an array; at least one element; every element parses
/// alone with P14's checks), so that a document the unsplit path would reject is never split.
/// Holds one element at a time. `Err` only for I/O errors of the stream.
pub fn json_range_bounds<R: BufRead>(input: R, step: u64) -> io::Result<Option<JsonSplit>> {
    let step = step.max(1);
    let mut s = Scanner { input, offset: 0 };
    s.take(b"\xEF\xBB\xBF")?;
    if s.offset != 0 && s.offset != 3 {
        return Ok(None); // a partial BOM is not UTF-8
    }
    let level = match s.skip_ws()? {
        Some(b'[') => 2,
        Some(b'{') => {
            s.bump();
            if s.skip_ws()? != Some(b'"') || !s.take(b"\"transactions\"")? {
                return Ok(None);
            }
            if s.skip_ws()? != Some(b':') {
                return Ok(None);
            }
            s.bump();
            if s.skip_ws()? != Some(b'[') {
                return Ok(None);
            }
            3
        }
        _ => return Ok(None),
    };
    s.bump(); // the array's '['
    if matches!(s.skip_ws()?, None | Some(b']')) {
        return Ok(None); // no element: EMPTY_FILE or MALFORMED_FILE, unsplit
    }
    let first_byte = s.offset;
    let mut bounds = Vec::new();
    let mut next_at = step;
    let mut index: u64 = 0;
    let mut element = Vec::new();
    loop {
        let start = s.offset;
        if !s.element(&mut element)? || load_element(&element, level).is_none() {
            return Ok(None);
        }
        if index > 0 && start >= next_at {
            bounds.push((index, start));
            next_at = (start / step + 1) * step;
        }
        index += 1;
        match s.skip_ws()? {
            Some(b',') => {
                s.bump();
                if matches!(s.skip_ws()?, None | Some(b']')) {
                    return Ok(None); // a trailing comma
                }
            }
            Some(b']') => break,
            _ => return Ok(None),
        }
    }
    let end_byte = s.offset;
    s.bump();
    if level == 3 {
        if s.skip_ws()? != Some(b'}') {
            return Ok(None);
        }
        s.bump();
    }
    if s.skip_ws()?.is_some() {
        return Ok(None); // anything but white space after the document
    }
    Ok(Some(JsonSplit {
        first_byte,
        end_byte,
        bounds,
    }))
}

/// The rows of one range of a split JSON array (P35): `input` is the range's bytes, from
/// `first_byte` on, whose first element has index `first_index`; elements separated by ','
/// and white space, up to the next range's first element or the array's closing bracket.
/// Bytes that are not such elements (the object replaced under an unversioned key) are an
/// `InvalidData` error: a read failure, retryable, never a wrong row.
pub fn json_range_rows<R: BufRead>(
    input: R,
    first_byte: u64,
    first_index: u64,
) -> impl Iterator<Item = io::Result<Row>> {
    let mut s = Scanner {
        input,
        offset: first_byte,
    };
    let mut index = first_index;
    let mut element = Vec::new();
    let mut started = false;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = (|| -> io::Result<Option<Row>> {
            let mut at = s.skip_ws()?;
            if started {
                match at {
                    None => return Ok(None),
                    Some(b',') => {
                        s.bump();
                        at = s.skip_ws()?;
                    }
                    Some(_) => return Err(changed(s.offset)),
                }
            }
            started = true;
            if at.is_none() {
                return Ok(None); // a range that is not the last ends after a ','
            }
            let start = s.offset;
            // Level 2: the split checked each element at its level; this only guards the parse.
            if !s.element(&mut element)? {
                return Err(changed(start));
            }
            let value = load_element(&element, 2).ok_or_else(|| changed(start))?;
            let row = json_row(index, value);
            index += 1;
            Ok(Some(row))
        })();
        failed = next.is_err();
        next.transpose()
    })
}

fn changed(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the range's bytes are not the split's JSON elements (byte {offset})"),
    )
}

#[cfg(test)]
mod tests;
