//! Large files in ranges (contract/decisions.md P33 to P35): the row-aligned byte ranges of a
//! large CSV object, found by streaming it once through the same reader that processes its
//! rows, and the range fields of a resume_file message. JSON arrays: `crate::json_ranges`.
//!
//! Why the row reader and not a separate quote scanner: a boundary must be exactly where that
//! reader starts a row, also after rows it cannot read (P10: reading resumes on the next line),
//! overlong lines (P12) and blank lines; any second state machine could drift from it.

use std::io::BufRead;

use crate::error::{ErrorCode, FileError};
use crate::files::{open_csv, OpenError};

/// At most this many ranges per file: the step grows with the object, so that the split's one
/// status update stays small (P33).
pub const MAX_RANGES: u64 = 100;

/// One range of a split file: its id is the source_line of its first row (0 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// The range id: source_line of its first row; 0 for the range that holds the header.
    pub line: u64,
    /// Offset of its first byte.
    pub start_byte: u64,
    /// Offset just past its last byte.
    pub end_byte: u64,
}

/// Bytes per range for this object, or 0 when it is not split (P33).
pub fn range_step(range_split_bytes: u64, content_length: u64) -> u64 {
    if range_split_bytes == 0 || content_length <= range_split_bytes {
        return 0;
    }
    range_split_bytes.max(content_length.div_ceil(MAX_RANGES))
}

/// (first line, first byte) of every range after the first, or the file's error (P33). Reads
/// the stream once; holds only the current row.
pub fn csv_range_bounds<R: BufRead>(input: R, step: u64) -> Result<Vec<(u64, u64)>, OpenError> {
    let step = step.max(1);
    let mut rows = open_csv(input)?;
    let mut bounds = Vec::new();
    let mut next_at = step;
    let mut count: u64 = 0;
    while let Some(row) = rows.next_row()? {
        count += 1;
        let start = rows.row_start_byte();
        if count > 1 && start >= next_at {
            bounds.push((row.line, start));
            next_at = (start / step + 1) * step;
        }
    }
    if count == 0 {
        return Err(FileError::new(ErrorCode::EmptyFile, "file: no rows").into());
    }
    Ok(bounds)
}

/// The ranges between the boundaries; range 0 starts at `first_byte`: 0 for a CSV (the header
/// is in range 0), the first element's first byte for a JSON array (P33). The last range ends
/// at `end_byte`: the CSV's ContentLength, the JSON array's closing bracket.
pub fn plan_ranges(bounds: &[(u64, u64)], first_byte: u64, end_byte: u64) -> Vec<FileRange> {
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut previous = (0, first_byte);
    for &(line, start) in bounds {
        ranges.push(FileRange {
            line: previous.0,
            start_byte: previous.1,
            end_byte: start,
        });
        previous = (line, start);
    }
    ranges.push(FileRange {
        line: previous.0,
        start_byte: previous.1,
        end_byte,
    });
    ranges
}

#[cfg(test)]
mod tests;
