//! The element scanner's boundaries against an independent oracle (serde_json's stream
//! deserializer and its byte offsets), the ranges' rows against the whole document's, and the
//! documents that must not be split (the Python twin: tests/unit/test_processor_json_ranges.py).

use std::io::BufReader;

use super::*;
use crate::files::{json_rows, parse_json_document};
use crate::ranges::plan_ranges;

/// Strings that a scanner must not take for structure: brackets, braces, commas, escaped quotes
/// and backslashes, a backslash right before the closing quote, non-ASCII text.
const TRICKY: [&str; 10] = [
    "a,b]",
    "}{\"",
    "\\",
    "\\\"],[",
    "\\\\",
    "ü€ 𝄞",
    "[[[",
    "\"",
    ", ]",
    "}}",
];

fn tricky_document(object_form: bool, ws: &str) -> Vec<u8> {
    let mut elements = Vec::new();
    for i in 0..60usize {
        let text = TRICKY[i % TRICKY.len()];
        let element = if i % 11 == 5 {
            serde_json::json!([text, {"x": [1, 2]}])
        } else if i % 13 == 7 {
            serde_json::json!("text, with ] inside")
        } else if i % 17 == 3 {
            serde_json::json!(12.5)
        } else {
            serde_json::json!({
                "transaction_id": format!("tx-{i:05}"),
                "account_id": format!("DE89{i:04}"),
                "amount": "10.50",
                "currency": "EUR",
                "transaction_type": "DEBIT",
                "timestamp": "2024-03-01T10:00:00Z",
                "merchant_id": if i % 4 == 0 { None } else { Some(format!("m{i}")) },
                "description": text,
            })
        };
        elements.push(element.to_string());
    }
    let separators = [
        ",".to_owned(),
        format!("{ws},"),
        format!(",{ws}\n"),
        format!("\r\n,\t{ws}"),
    ];
    let mut body = elements[0].clone();
    for (i, element) in elements.iter().enumerate().skip(1) {
        body.push_str(&separators[(i - 1) % separators.len()]);
        body.push_str(element);
    }
    let array = format!("[{ws}{body}\n]");
    let text = if object_form {
        format!("{{ \"transactions\" :\n{array} }}\n")
    } else {
        array
    };
    text.into_bytes()
}

/// Every element's first byte and the closing bracket's offset, found by serde_json.
fn oracle_starts(data: &[u8]) -> (Vec<u64>, u64) {
    let open = data.iter().position(|&b| b == b'[').unwrap();
    let mut pos = open + 1;
    let mut starts = Vec::new();
    loop {
        while matches!(data[pos], b' ' | b'\t' | b'\r' | b'\n' | b',') {
            pos += 1;
        }
        if data[pos] == b']' {
            return (starts, pos as u64);
        }
        starts.push(pos as u64);
        let mut values =
            serde_json::Deserializer::from_slice(&data[pos..]).into_iter::<serde_json::Value>();
        values.next().unwrap().unwrap();
        pos += values.byte_offset();
    }
}

/// P33 as written: for k = 1, 2, ..., the first element (never element 0) at or after k * step.
fn expected_bounds(starts: &[u64], step: u64) -> Vec<(u64, u64)> {
    let mut bounds: Vec<(u64, u64)> = Vec::new();
    let mut k = 1;
    while k * step <= *starts.last().unwrap() {
        let later = starts
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, &s)| s >= k * step)
            .map(|(i, &s)| (i as u64, s));
        if let Some(b) = later {
            if !bounds.contains(&b) {
                bounds.push(b);
            }
        }
        k += 1;
    }
    bounds
}

fn bounds_of(data: &[u8], step: u64, chunk: usize) -> Option<JsonSplit> {
    json_range_bounds(BufReader::with_capacity(chunk, data), step).unwrap()
}

#[test]
fn boundaries_are_the_oracles_element_starts() {
    for object_form in [false, true] {
        let data = tricky_document(object_form, " ");
        let (starts, close) = oracle_starts(&data);
        for chunk in [1, 3, 64, 1 << 20] {
            for step in [1, 50, 137, 400, 1000, data.len() as u64 - 1] {
                let split = bounds_of(&data, step, chunk).expect("split");
                assert_eq!((split.first_byte, split.end_byte), (starts[0], close));
                assert_eq!(split.bounds, expected_bounds(&starts, step), "step {step}");
            }
        }
    }
}

#[test]
fn the_same_boundaries_as_the_python_scanner() {
    // The literal of test_the_same_boundaries_as_the_rust_scanner in the Python twin; the
    // offsets are counted by hand: elements at 1, 12, 18, 29, 42, 45, ']' at 54.
    let doc = br#"[{"a":"],"},"\"]",{"b":"\\"},[1,"[",{}],  7, {"c":"x"}]"#;
    let split = bounds_of(doc, 12, 2).unwrap();
    assert_eq!((split.first_byte, split.end_byte), (1, 54));
    assert_eq!(split.bounds, [(1, 12), (3, 29), (4, 42)]);
    assert_eq!(bounds_of(doc, 20, 2).unwrap().bounds, [(3, 29), (4, 42)]);
}

type Seen = (u64, Option<&'static str>, Option<Vec<(String, JsonValue)>>);

fn seen(row: Row) -> Seen {
    let values = row.values.as_ref().map(|v| v.pairs());
    (row.line, row.error.map(|e| e.code.as_str()), values)
}

#[test]
fn the_ranges_rows_are_the_whole_documents_rows() {
    for object_form in [false, true] {
        let mut data = b"\xEF\xBB\xBF".to_vec();
        data.extend(tricky_document(object_form, "\t "));
        let whole: Vec<Seen> = json_rows(parse_json_document(&data).unwrap())
            .map(seen)
            .collect();
        for step in [1, 90, 333, 2000] {
            let split = bounds_of(&data, step, 5).unwrap();
            let ranges = plan_ranges(&split.bounds, split.first_byte, split.end_byte);
            let mut got = Vec::new();
            for r in &ranges {
                let piece = &data[r.start_byte as usize..r.end_byte as usize];
                let rows =
                    json_range_rows(BufReader::with_capacity(3, piece), r.start_byte, r.line);
                got.extend(rows.map(|row| seen(row.unwrap())));
            }
            assert_eq!(got, whole, "step {step}");
        }
        assert!(whole
            .iter()
            .any(|(_, code, _)| *code == Some("INVALID_FORMAT")));
    }
}

const NOT_SPLIT: &[&[u8]] = &[
    br#"[{"a": 1}, {"a": 2]"#,
    br#"[{"a": 1}, {"a": 2},]"#,
    br#"[{"a": 1} {"a": 2}]"#,
    b"[ ]",
    br#"[{"a": 1}, NaN]"#,
    br#"[{"a": 1}, {"a": -Infinity}]"#,
    br#"[{"a": 1}, {"a": "\ud800"}]"#,
    b"[{\"a\": 1}, \"\xff\"]",
    br#"[{"a": 1}, {"a": 2}] x"#,
    br#"[{"a": 1}, {"a": "2}]"#,
    br#"{"transactions": [{"a": 1}], "more": 1}"#,
    br#"{"transaction\u0073": [{"a": 1}, {"a": 2}]}"#,
    br#"{"records": [{"a": 1}, {"a": 2}]}"#,
    br#""[1, 2]""#,
    b" \n ",
    b"",
    b"\xEF\xBB[1]",
];

#[test]
fn documents_that_are_not_the_simple_shape_are_not_split() {
    for doc in NOT_SPLIT {
        assert_eq!(
            bounds_of(doc, 1, 2),
            None,
            "{}",
            String::from_utf8_lossy(doc)
        );
    }
}

fn nested(prefix: &str, levels: usize, suffix: &str) -> Vec<u8> {
    format!(
        "{prefix}{}{}{suffix}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
    .into_bytes()
}

#[test]
fn nesting_counts_from_the_documents_top_level() {
    // 64 levels in all are allowed (P14), the element being at level 2 (3 in the object form).
    let deepest = nested("[{\"a\": 1}, ", 63, "]");
    assert!(parse_json_document(&deepest).is_ok());
    assert!(bounds_of(&deepest, 1, 3).is_some());
    assert!(bounds_of(&nested("[{\"a\": 1}, ", 64, "]"), 1, 3).is_none());
    let in_object = nested("{\"transactions\": [{\"a\": 1}, ", 62, "]}");
    assert!(parse_json_document(&in_object).is_ok());
    assert!(bounds_of(&in_object, 1, 3).is_some());
    assert!(bounds_of(&nested("{\"transactions\": [{\"a\": 1}, ", 63, "]}"), 1, 3).is_none());
}

#[test]
fn a_range_whose_bytes_changed_is_a_read_failure() {
    let read =
        |bytes: &'static [u8]| -> Vec<io::Result<Row>> { json_range_rows(bytes, 10, 3).collect() };
    let cut = read(br#"{"a": 1}, {"a": 2"#);
    assert!(cut[0].is_ok() && cut[1].is_err() && cut.len() == 2);
    let no_comma = read(br#"{"a": 1} {"a": 2}"#);
    assert!(no_comma[1].is_err() && no_comma.len() == 2);
    let lines: Vec<u64> = read(b" {\"a\": 1} ,\n{\"a\": 2}, ")
        .into_iter()
        .map(|r| r.unwrap().line)
        .collect();
    assert_eq!(lines, [3, 4]);
}
