//! The rows of the ranges of a split file are exactly the rows of the whole file, with the same
//! lines, whatever the quoting, line ends and errors (the Python twin:
//! tests/unit/test_processor_ranges.py).

use super::*;
use crate::files::{open_csv_range, Row};

const HEADER: &str =
    "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description";

fn row(index: usize, merchant: &str, description: &str) -> String {
    format!("tx-{index:05},DE89{index:04},10.50,EUR,DEBIT,2024-03-01T10:00:00Z,{merchant},{description}")
}

/// Quoted line breaks and commas, blank lines, a quote inside an unquoted cell, unreadable rows
/// (P10), a bare CR, a row that is not UTF-8.
fn tricky_file(newline: &str, bom: bool) -> Vec<u8> {
    let mut rows = vec![HEADER.to_owned()];
    for index in 1..=60 {
        rows.push(match index % 10 {
            1 => row(index, "m", "\"one\ntwo\r\nthree, \"\"four\"\"\""),
            2 => format!("\n{}", row(index, "m", "d").replace('\n', newline)),
            3 => row(index, "a\"b", "d"),
            4 => format!("x{index},A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,\"m\"x,d"),
            5 => row(index, "m", "\"\n\n\n\""),
            6 => format!("y{index},A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m\rm,d"),
            _ => row(index, "m", "d"),
        });
    }
    let mut data: Vec<u8> = if bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    data.extend((rows.join(newline) + newline).into_bytes());
    let at = data.windows(8).position(|w| w == b"tx-00007").unwrap_or(0);
    data[at + 3] = 0xFF; // a row that is not UTF-8
    data
}

fn whole_rows(data: &[u8]) -> Vec<Row> {
    open_csv(data).unwrap().map(|r| r.unwrap()).collect()
}

fn ranged_rows(data: &[u8], ranges: &[FileRange]) -> Vec<Row> {
    let mut rows = Vec::new();
    for range in ranges {
        let piece = &data[range.start_byte as usize..range.end_byte as usize];
        if range.line == 0 {
            rows.extend(open_csv(piece).unwrap().map(|r| r.unwrap()));
        } else {
            let header = &data[..ranges[1].start_byte as usize];
            let reader = open_csv_range(header, piece, range.line).unwrap();
            rows.extend(reader.map(|r| r.unwrap()));
        }
    }
    rows
}

fn check_ranges(data: &[u8], step: u64) -> Vec<FileRange> {
    let bounds = csv_range_bounds(data, step).unwrap();
    let ranges = plan_ranges(&bounds, 0, data.len() as u64);
    assert_eq!((ranges[0].line, ranges[0].start_byte), (0, 0));
    assert_eq!(ranges[ranges.len() - 1].end_byte, data.len() as u64);
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].end_byte, pair[1].start_byte);
        assert!(pair[0].line < pair[1].line);
    }
    assert_eq!(ranged_rows(data, &ranges), whole_rows(data), "step {step}");
    ranges
}

#[test]
fn ranges_hold_the_rows_of_the_file_exactly() {
    for newline in ["\n", "\r\n"] {
        for bom in [false, true] {
            let data = tricky_file(newline, bom);
            let codes: std::collections::BTreeSet<_> = whole_rows(&data)
                .iter()
                .map(|r| r.error.as_ref().map(|e| e.code.as_str()))
                .collect();
            assert_eq!(codes.len(), 3, "valid, MALFORMED_ROW, INVALID_ENCODING");
            let len = data.len() as u64;
            let mut counts = Vec::new();
            for step in [1, 2, 3, 5, 17, 64, 100, 333, 1000, len / 2, len] {
                counts.push(check_ranges(&data, step).len());
            }
            assert!(
                counts.iter().max() > Some(&50) && counts.contains(&1),
                "{counts:?}"
            );
        }
    }
}

#[test]
fn a_boundary_is_never_inside_a_quoted_cell() {
    let data = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        row(1, "m", "d"),
        row(2, "m", "\"inner\ntx-00009,looks,like,a,row\""),
        row(3, "m", "d")
    )
    .into_bytes();
    let inner = data
        .windows(14)
        .position(|w| w == b"tx-00009,looks")
        .unwrap() as u64;
    let ranges = check_ranges(&data, inner);
    let third = data.windows(8).position(|w| w == b"tx-00003").unwrap() as u64;
    assert_eq!(ranges.len(), 2);
    assert_eq!((ranges[1].line, ranges[1].start_byte), (5, third));
}

#[test]
fn an_overlong_line_keeps_the_offsets() {
    let big = "x".repeat((1 << 20) + 10);
    let data = format!(
        "{HEADER}\n{}\n{}\n{}\n{}\n",
        row(1, "m", "d"),
        row(2, "m", &big),
        row(3, "m", "d"),
        row(4, "m", "d")
    )
    .into_bytes();
    let ranges = check_ranges(&data, 1000);
    let third = data.windows(8).position(|w| w == b"tx-00003").unwrap() as u64;
    assert_eq!(ranges.len(), 2);
    assert_eq!((ranges[1].line, ranges[1].start_byte), (4, third));
}

#[test]
fn the_splitter_reports_the_file_errors_of_the_unsplit_reader() {
    for (data, code) in [
        (&b""[..], ErrorCode::EmptyFile),
        (b"\n\n", ErrorCode::EmptyFile),
        (HEADER.as_bytes(), ErrorCode::EmptyFile),
        (b"nope,columns\n1,2\n", ErrorCode::InvalidHeader),
    ] {
        match csv_range_bounds(data, 1) {
            Err(OpenError::File(e)) => assert_eq!(e.code, code),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn range_step_grows_to_at_most_max_ranges() {
    assert_eq!(range_step(1000, 1000), 0);
    assert_eq!(range_step(1000, 5000), 1000);
    assert_eq!(range_step(1000, 1_000_001), 10_001);
    assert_eq!(range_step(0, 1 << 30), 0);
}
