//! Prints what txn-core makes of an input file, one JSON line per row (or one for the file
//! error), in the same shape as bench/differential.py prints for the Python handler: the two
//! outputs must be identical. Usage: txn_dump FILE [FILE...]

use std::io::{BufReader, Write};

use serde_json::{json, Value};
use txn_core::{
    json_range_bounds, json_rows, open_csv, parse_json_document, Format, OpenError, Row,
};

fn row_json(row: &Row) -> Value {
    let (hint, masked) = match &row.values {
        Some(v) => (v.transaction_id_hint(), Some(v.masked())),
        None => (None, None),
    };
    match row.validate() {
        Ok(tx) => json!({
            "line": row.line,
            "tx": [tx.transaction_id, tx.account_id, tx.amount, tx.currency,
                   tx.transaction_type, tx.timestamp, tx.merchant_id, tx.description],
            "hash": tx.record_hash(),
            "record": masked.map(|m| m.0),
        }),
        Err(e) => json!({
            "line": row.line,
            "code": e.code.as_str(),
            "field": e.field,
            "message": e.message,
            "txid": hint,
            "record": masked.map(|m| m.0),
        }),
    }
}

fn dump(path: &str, out: &mut impl Write) -> std::io::Result<()> {
    let file_error =
        |e: txn_core::FileError| json!({"file_error": e.code.as_str(), "message": e.message});
    match Format::from_key(path) {
        Some(Format::Csv) => {
            let f = std::fs::File::open(path)?;
            match open_csv(BufReader::new(f)) {
                Err(OpenError::File(e)) => writeln!(out, "{}", file_error(e))?,
                Err(OpenError::Io(e)) => return Err(e),
                Ok(rows) => {
                    for row in rows {
                        writeln!(out, "{}", row_json(&row?))?;
                    }
                }
            }
        }
        Some(Format::Json) => {
            let data = std::fs::read(path)?;
            // The split's scan at step 1 (P33a): every element's first byte, or not split.
            let split = json_range_bounds(data.as_slice(), 1)?
                .map(|s| json!([s.first_byte, s.end_byte, s.bounds]));
            writeln!(out, "{}", json!({ "split": split }))?;
            match parse_json_document(&data) {
                Err(e) => writeln!(out, "{}", file_error(e))?,
                Ok(records) => {
                    for row in json_rows(records) {
                        writeln!(out, "{}", row_json(&row))?;
                    }
                }
            }
        }
        None => writeln!(out, "{}", json!({"unsupported": path}))?,
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for path in std::env::args().skip(1) {
        writeln!(out, "{}", json!({"file": path}))?;
        dump(&path, &mut out)?;
    }
    Ok(())
}
