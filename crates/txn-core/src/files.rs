//! Reading input files into rows: CSV as a stream (row by row), JSON as one document
//! (decisions P10-P15 of lib/processor_function.py).
//!
//! Both readers yield [`Row`]s: the source line, the input values (for error messages) and,
//! for a row that could not be read, its error. File errors (design.md section 3) are reported
//! before the first row, so that no record of a bad file is ever stored.

use std::io::{self, BufRead};
use std::sync::Arc;

use crate::csv::{CsvReader, CsvRow};
use crate::error::{ErrorCode, FileError, RecordError};
use crate::json::{self, JsonValue, ParseOptions, MAX_DEPTH, RECURSION_LIMIT};
use crate::messages::{masked_record, StringMap, ECHO_MAX_KEY_CHARS};
use crate::pyjson::py_repr;
use crate::record::{trim, truncate_chars, validate, Field, InputRecord, Transaction};

/// The kind of an input file, from its key's suffix (decision P15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// `.csv` or `.json`, case-insensitive.
    pub fn from_key(key: &str) -> Option<Format> {
        let lower = key.to_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// The input values of a row, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum RowValues {
    /// A CSV row: the header's (trimmed) names and the row's raw cells.
    Csv {
        names: Arc<Vec<String>>,
        cells: Vec<String>,
    },
    /// A JSON object's key/value pairs.
    Json(Vec<(String, JsonValue)>),
}

impl RowValues {
    /// The values as the validator sees them.
    pub fn input(&self) -> InputRecord {
        let mut input = InputRecord::default();
        match self {
            RowValues::Csv { names, cells } => {
                for (name, cell) in names.iter().zip(cells) {
                    if let Some(field) = Field::from_name(name) {
                        input.set_text(field, cell);
                    }
                }
            }
            RowValues::Json(pairs) => {
                for (key, value) in pairs {
                    match Field::from_name(key) {
                        Some(field) => match value {
                            JsonValue::Null => input.clear(field),
                            JsonValue::String(s) | JsonValue::Number(s) => input.set_text(field, s),
                            other => input.set_wrong_type(field, other.type_name()),
                        },
                        None => input.add_unknown(key),
                    }
                }
            }
        }
        input
    }

    /// The values as key/value pairs (CSV cells as strings).
    pub fn pairs(&self) -> Vec<(String, JsonValue)> {
        match self {
            RowValues::Csv { names, cells } => names
                .iter()
                .zip(cells)
                .map(|(n, c)| (n.clone(), JsonValue::String(c.clone())))
                .collect(),
            RowValues::Json(pairs) => pairs.clone(),
        }
    }

    /// The masked record for the errors path (decision P20).
    pub fn masked(&self) -> StringMap {
        masked_record(&self.pairs())
    }

    /// The transaction_id to label an error with (decision P19).
    pub fn transaction_id_hint(&self) -> Option<String> {
        self.input().transaction_id_hint()
    }
}

/// One input record as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// CSV: 1-based physical line where the row starts; JSON: 0-based index in the array.
    pub line: u64,
    /// `None` for a row that could not be read (its error is in `error`).
    pub values: Option<RowValues>,
    pub error: Option<RecordError>,
}

impl Row {
    fn failed(line: u64, code: ErrorCode, message: String) -> Row {
        Row {
            line,
            values: None,
            error: Some(RecordError {
                code,
                field: None,
                message,
            }),
        }
    }

    /// Validate the row: its read error, or what the record's rules make of its values.
    pub fn validate(&self) -> Result<Transaction, RecordError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match &self.values {
            Some(values) => validate(&values.input()),
            None => validate(&InputRecord::default()),
        }
    }
}

// --------------------------------------------------------------------------------------------
// CSV

/// A CSV file being read row by row.
pub struct CsvRows<R: BufRead> {
    reader: CsvReader<R>,
    names: Arc<Vec<String>>,
}

/// INVALID_HEADER for an unknown, empty or duplicate name, or a missing column (P13).
fn check_header(names: &[String]) -> Result<(), FileError> {
    let mut seen: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        let shown = truncate_chars(name, ECHO_MAX_KEY_CHARS);
        if Field::from_name(name).is_none() {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: unknown column {}", py_repr(shown)),
            ));
        }
        if seen.contains(&name.as_str()) {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: duplicate column {}", py_repr(shown)),
            ));
        }
        seen.push(name);
    }
    for field in Field::ALL.into_iter().filter(|f| f.required()) {
        if !seen.contains(&field.name()) {
            return Err(FileError::new(
                ErrorCode::InvalidHeader,
                format!("header: missing required column {}", py_repr(field.name())),
            ));
        }
    }
    Ok(())
}

/// Why a file could not be opened: a file error, or an I/O error of the stream (retryable).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("reading the object failed: {0}")]
    Io(#[from] io::Error),
}

/// Read and check the header; the rows follow lazily (never all in memory).
pub fn open_csv<R: BufRead>(input: R) -> Result<CsvRows<R>, OpenError> {
    let mut reader = CsvReader::new(input);
    let header = match reader.next_row()? {
        None => return Err(FileError::new(ErrorCode::EmptyFile, "file: no header row").into()),
        Some(CsvRow::Cells { cells, .. }) => cells,
        Some(CsvRow::TooLong { .. }) => {
            return Err(
                FileError::new(ErrorCode::MalformedFile, "header: longer than 1 MiB").into(),
            )
        }
        Some(CsvRow::InvalidEncoding { .. }) => {
            return Err(FileError::new(
                ErrorCode::InvalidEncoding,
                "header: bytes are not valid UTF-8",
            )
            .into())
        }
        Some(CsvRow::Unreadable { reason, .. }) => {
            return Err(FileError::new(
                ErrorCode::MalformedFile,
                format!("header: unreadable CSV ({reason})"),
            )
            .into())
        }
    };
    let names: Vec<String> = header.iter().map(|n| trim(n).to_owned()).collect();
    check_header(&names)?;
    Ok(CsvRows {
        reader,
        names: Arc::new(names),
    })
}

impl<R: BufRead> CsvRows<R> {
    /// The header's column names (trimmed).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The next row; `Ok(None)` at end of file; `Err` only for I/O errors of the stream.
    pub fn next_row(&mut self) -> io::Result<Option<Row>> {
        let width = self.names.len();
        Ok(self.reader.next_row()?.map(|row| match row {
            CsvRow::TooLong { line } => Row::failed(
                line,
                ErrorCode::MalformedRow,
                "row: longer than 1 MiB".to_owned(),
            ),
            CsvRow::InvalidEncoding { line } => Row::failed(
                line,
                ErrorCode::InvalidEncoding,
                "row: bytes are not valid UTF-8".to_owned(),
            ),
            CsvRow::Unreadable { line, reason } => Row::failed(
                line,
                ErrorCode::MalformedRow,
                format!("row: unreadable CSV ({reason})"),
            ),
            CsvRow::Cells { line, cells } if cells.len() != width => Row::failed(
                line,
                ErrorCode::MalformedRow,
                format!("row: {} cells where the header has {width}", cells.len()),
            ),
            CsvRow::Cells { line, cells } => Row {
                line,
                values: Some(RowValues::Csv {
                    names: Arc::clone(&self.names),
                    cells,
                }),
                error: None,
            },
        }))
    }
}

impl<R: BufRead> Iterator for CsvRows<R> {
    type Item = io::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

// --------------------------------------------------------------------------------------------
// JSON

const FILE_PARSE: ParseOptions = ParseOptions {
    reject_constants: true,
    recursion_limit: RECURSION_LIMIT,
};

fn too_deep() -> FileError {
    FileError::new(
        ErrorCode::MalformedFile,
        format!("file: JSON nested deeper than {MAX_DEPTH} levels"),
    )
}

/// The records of a JSON file, or its file error (decision P14).
pub fn parse_json_document(data: &[u8]) -> Result<Vec<JsonValue>, FileError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data)
        .map_err(|_| FileError::new(ErrorCode::InvalidEncoding, "file: not valid UTF-8"))?;
    if trim(text).is_empty() {
        return Err(FileError::new(
            ErrorCode::EmptyFile,
            "file: no JSON content",
        ));
    }
    let parsed = match json::parse_with(text, FILE_PARSE) {
        Ok(parsed) => parsed,
        Err(json::JsonError::TooDeep) => return Err(too_deep()),
        Err(e) => {
            let detail = e.python_message(text);
            return Err(FileError::new(
                ErrorCode::MalformedFile,
                format!("file: not valid JSON ({})", truncate_chars(&detail, 200)),
            ));
        }
    };
    if json::value_depth(&parsed.value) > MAX_DEPTH {
        return Err(too_deep());
    }
    if parsed.lone_surrogate {
        return Err(FileError::new(
            ErrorCode::MalformedFile,
            "file: JSON string escapes a lone UTF-16 surrogate",
        ));
    }
    let records = match parsed.value {
        JsonValue::Array(items) => items,
        JsonValue::Object(mut pairs) if pairs.len() == 1 && pairs[0].0 == "transactions" => {
            match pairs.pop() {
                Some((_, JsonValue::Array(items))) => items,
                _ => return Err(top_level_error()),
            }
        }
        _ => return Err(top_level_error()),
    };
    if records.is_empty() {
        return Err(FileError::new(ErrorCode::EmptyFile, "file: no records"));
    }
    Ok(records)
}

fn top_level_error() -> FileError {
    FileError::new(
        ErrorCode::MalformedFile,
        "file: top level must be an array or {\"transactions\": [...]}",
    )
}

/// One JSON array element as a row.
pub fn json_row(index: u64, value: JsonValue) -> Row {
    match value {
        JsonValue::Object(pairs) => Row {
            line: index,
            values: Some(RowValues::Json(pairs)),
            error: None,
        },
        _ => Row::failed(
            index,
            ErrorCode::InvalidFormat,
            "record: must be a JSON object".to_owned(),
        ),
    }
}

/// The rows of a parsed JSON file.
pub fn json_rows(records: Vec<JsonValue>) -> impl Iterator<Item = Row> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, v)| json_row(i as u64, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(input: &str) -> Result<Vec<Row>, FileError> {
        match open_csv(input.as_bytes()) {
            Ok(rows) => Ok(rows.map(|r| r.unwrap()).collect()),
            Err(OpenError::File(e)) => Err(e),
            Err(OpenError::Io(e)) => panic!("{e}"),
        }
    }

    const HEADER: &str =
        "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description\n";

    #[test]
    fn csv_file_errors() {
        assert_eq!(csv("").unwrap_err().code, ErrorCode::EmptyFile);
        assert_eq!(csv("\n\r\n").unwrap_err().code, ErrorCode::EmptyFile);
        let e = csv("transaction_id,amount,note\n").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        assert_eq!(e.message, "header: unknown column 'note'");
        let e = csv("transaction_id,account_id,amount,currency,transaction_type,merchant_id\n")
            .unwrap_err();
        assert_eq!(e.message, "header: missing required column 'timestamp'");
        let e = csv("amount,amount\n").unwrap_err();
        assert_eq!(e.message, "header: duplicate column 'amount'");
        assert_eq!(
            csv("amount,descripci\u{f3}n\n").unwrap_err().message,
            "header: unknown column 'descripción'"
        );
        let e = open_csv(&b"transaction_id,x\xF3\n"[..]).err().unwrap();
        assert!(matches!(
            e,
            OpenError::File(FileError {
                code: ErrorCode::InvalidEncoding,
                ..
            })
        ));
        assert_eq!(
            csv("\"a\"b\n").unwrap_err().message,
            "header: unreadable CSV (',' expected after '\"')"
        );
        // A header and no rows is not a file error here: the processor reports EMPTY_FILE
        // when a file yields no row at all.
        assert_eq!(csv(HEADER).unwrap(), vec![]);
    }

    #[test]
    fn csv_rows_and_errors() {
        let rows = csv(&format!(
            "{HEADER}T-1,ACC1,1.00,EUR,DEBIT,2024-01-01T00:00:00Z,,\n\nT-2,ACC1\n"
        ))
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert!(rows[0].validate().is_ok());
        assert_eq!(rows[1].line, 4);
        assert_eq!(
            rows[1].error.as_ref().unwrap().message,
            "row: 2 cells where the header has 8"
        );
    }

    fn json_err(text: &str) -> FileError {
        parse_json_document(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_file_errors() {
        assert_eq!(json_err("").message, "file: no JSON content");
        assert_eq!(json_err(" \n\x0c").code, ErrorCode::EmptyFile);
        assert_eq!(json_err("[]").message, "file: no records");
        assert_eq!(
            json_err("{\"transactions\": []}").code,
            ErrorCode::EmptyFile
        );
        assert_eq!(
            json_err("[1,").message,
            "file: not valid JSON (Expecting value: line 1 column 4 (char 3))"
        );
        assert_eq!(
            json_err("[NaN]").message,
            "file: not valid JSON (NaN is not valid JSON)"
        );
        assert_eq!(
            json_err("\"x\"").message,
            "file: top level must be an array or {\"transactions\": [...]}"
        );
        assert_eq!(
            json_err("{\"transactions\": [1], \"x\": 1}").code,
            ErrorCode::MalformedFile
        );
        assert_eq!(
            json_err("[\"\\udc00\"]").message,
            "file: JSON string escapes a lone UTF-16 surrogate"
        );
        let deep = format!("[{}{}]", "[".repeat(64), "]".repeat(64));
        assert_eq!(
            json_err(&deep).message,
            "file: JSON nested deeper than 64 levels"
        );
        let very_deep = "[".repeat(100_000);
        assert_eq!(
            json_err(&very_deep).message,
            "file: JSON nested deeper than 64 levels"
        );
        assert_eq!(
            parse_json_document(b"[{\"a\": \"caf\xe9\"}]")
                .unwrap_err()
                .code,
            ErrorCode::InvalidEncoding
        );
        assert_eq!(parse_json_document(b"\xEF\xBB\xBF[1]").unwrap().len(), 1);
    }

    #[test]
    fn json_rows_and_types() {
        let records = parse_json_document(
            br#"[{"transaction_id": 12345, "account_id": "ACC1", "amount": 1e3, "currency": "EUR",
                  "transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"}, 5]"#,
        )
        .unwrap();
        let rows: Vec<Row> = json_rows(records).collect();
        let e = rows[0].validate().unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidFormat, Some("amount"))
        );
        assert_eq!(
            rows[0]
                .values
                .as_ref()
                .unwrap()
                .transaction_id_hint()
                .as_deref(),
            Some("12345")
        );
        assert_eq!(
            rows[1].error.as_ref().unwrap().message,
            "record: must be a JSON object"
        );
    }

    fn csv_cell(value: &str) -> String {
        format!("\"{}\"", value.replace('"', "\"\""))
    }

    proptest::proptest! {
        /// Every data row of a file is accounted for: exactly one Row per non-blank row,
        /// whatever its bytes, at increasing lines.
        #[test]
        fn every_row_accounted_for(rows in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..40)) {
            let mut data = HEADER.as_bytes().to_vec();
            let mut expected = 0;
            for row in &rows {
                // One physical line per row: LF, CR and quotes replaced, so that each line is
                // exactly one CSV row (possibly malformed or not UTF-8).
                let line: Vec<u8> = row
                    .iter()
                    .map(|b| if matches!(b, b'\n' | b'\r' | b'"') { b'x' } else { *b })
                    .collect();
                if !line.is_empty() {
                    expected += 1;
                }
                data.extend_from_slice(&line);
                data.push(b'\n');
            }
            let parsed: Vec<Row> = match open_csv(data.as_slice()) {
                Ok(rows) => rows.map(|r| r.unwrap()).collect(),
                Err(e) => panic!("{e}"),
            };
            proptest::prop_assert_eq!(parsed.len(), expected);
            for pair in parsed.windows(2) {
                proptest::prop_assert!(pair[0].line < pair[1].line);
            }
            for row in &parsed {
                let _ = row.validate();
            }
        }

        /// A valid record written as CSV (quoted, any text in the free-text fields) and as JSON
        /// reads back as the same transaction.
        #[test]
        fn valid_records_round_trip(
            id in "[A-Za-z0-9._:-]{1,64}",
            account in "[A-Za-z0-9]{1,34}",
            int in 1u64..999_999_999_999,
            frac in 0u32..100,
            day in 0i64..36_000,
            millis in 0i64..86_400_000,
            merchant in "[^\u{0}]{0,64}",
            description in "[^\u{0}-\u{1f}\u{7f}-\u{9f}]{0,200}",
        ) {
            let merchant = trim(&merchant).to_owned();
            let description = trim(&description).to_owned();
            let timestamp = crate::timestamp::MIN_EPOCH_MS + day * 86_400_000 + millis;
            let secs = timestamp.div_euclid(1000);
            let (d, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            // civil_from_days (Hinnant), to write the timestamp as text.
            let z = d + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let dd = doy - (153 * mp + 2) / 5 + 1;
            let mm = if mp < 10 { mp + 3 } else { mp - 9 };
            let yy = yoe + era * 400 + i64::from(mm <= 2);
            let stamp = format!(
                "{yy:04}-{mm:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600, rem % 3600 / 60, rem % 60, timestamp.rem_euclid(1000)
            );
            let amount = format!("{int}.{frac:02}");
            let csv_text = format!(
                "{HEADER}{},{},{},eur,debit,{},{},{}\n",
                csv_cell(&id), csv_cell(&account), amount, stamp,
                csv_cell(&merchant), csv_cell(&description)
            );
            let rows: Vec<Row> = match open_csv(csv_text.as_bytes()) {
                Ok(rows) => rows.map(|r| r.unwrap()).collect(),
                Err(e) => panic!("{e}"),
            };
            proptest::prop_assert_eq!(rows.len(), 1);
            let tx = rows[0].validate().unwrap();
            proptest::prop_assert_eq!(&tx.transaction_id, &id);
            proptest::prop_assert_eq!(&tx.account_id, &account);
            proptest::prop_assert_eq!(tx.timestamp, timestamp);
            proptest::prop_assert_eq!(tx.merchant_id.clone().unwrap_or_default(), merchant.clone());
            proptest::prop_assert_eq!(tx.description.clone().unwrap_or_default(), description.clone());
            let expected_amount = crate::amount::validate_amount(&amount, 2).unwrap();
            proptest::prop_assert_eq!(&tx.amount, &expected_amount);

            let mut obj = serde_json::Map::new();
            obj.insert("transaction_id".into(), id.clone().into());
            obj.insert("account_id".into(), account.clone().into());
            obj.insert("amount".into(), serde_json::Value::String(amount.clone()));
            obj.insert("currency".into(), "EUR".into());
            obj.insert("transaction_type".into(), "DEBIT".into());
            obj.insert("timestamp".into(), stamp.into());
            obj.insert("merchant_id".into(), merchant.into());
            obj.insert("description".into(), description.into());
            let doc = serde_json::Value::Array(vec![serde_json::Value::Object(obj)]).to_string();
            let records = parse_json_document(doc.as_bytes()).unwrap();
            let json_tx = json_rows(records).next().unwrap().validate().unwrap();
            proptest::prop_assert_eq!(json_tx, tx);
        }
    }

    #[test]
    fn format_from_key() {
        assert_eq!(Format::from_key("in/a.CSV"), Some(Format::Csv));
        assert_eq!(Format::from_key("a.json"), Some(Format::Json));
        assert_eq!(Format::from_key("a.txt"), None);
    }
}
