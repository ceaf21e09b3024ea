//! Unit tests of the files module.

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
    assert_eq!(e.message, "header: unknown column \"note\"");
    let e = csv("transaction_id,account_id,amount,currency,transaction_type,merchant_id\n")
        .unwrap_err();
    assert_eq!(e.message, "header: missing required column \"timestamp\"");
    let e = csv("amount,amount\n").unwrap_err();
    assert_eq!(e.message, "header: duplicate column \"amount\"");
    assert_eq!(
        csv("amount,descripci\u{f3}n\n").unwrap_err().message,
        "header: unknown column \"descripción\""
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
        "header: unreadable CSV, a closing quote must be followed by ',' or the line end"
    );
    // A header and no rows is not a file error here: the processor reports EMPTY_FILE
    // when a file yields no row at all.
    assert_eq!(csv(HEADER).unwrap(), vec![]);
}

/// The texts of decision P25, the same inputs as tests/unit/test_contract.py.
#[test]
fn texts_are_the_contracts() {
    let header = "transaction_id,account_id,amount,currency,transaction_type,timestamp";
    let row = "T1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z";
    let long_cell = "x".repeat(crate::csv::FIELD_LIMIT + 1);
    let unreadable = "row: unreadable CSV, ";
    for (text, want) in [
        (
            format!("{header}\n\"T2\"x,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z\n"),
            format!("{unreadable}a closing quote must be followed by ',' or the line end"),
        ),
        (
            format!("{header}\nT2,AC\rC1,1,EUR,DEBIT,2024-01-01T00:00:00Z\n"),
            format!("{unreadable}a bare CR inside an unquoted cell"),
        ),
        (
            format!("{header}\n{row}\n\"open"),
            format!("{unreadable}a quoted cell is not closed at the end of the file"),
        ),
        (
            format!("{header}\n{long_cell}\n"),
            format!("{unreadable}a cell longer than 131072 characters"),
        ),
        (
            format!("\"{header}\n"),
            "header: unreadable CSV, a quoted cell is not closed at the end of the file".into(),
        ),
        (
            "transaction_id,\"a\"\"b\tc\"\n".into(),
            "header: unknown column \"a\\\"b\\tc\"".into(),
        ),
    ] {
        let messages: Vec<String> = match csv(&text) {
            Err(e) => vec![e.message],
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| r.error.map(|e| e.message))
                .collect(),
        };
        assert_eq!(messages, vec![want], "{text:?}");
    }
    for (text, want) in [
        ("[1,]", "file: not valid JSON at line 1, column 4"),
        ("[\n1,\n]", "file: not valid JSON at line 3, column 1"),
        (
            "{\"\u{e9}\": x}",
            "file: not valid JSON at line 1, column 7",
        ),
        ("[NaN]", "file: not valid JSON (NaN is not allowed)"),
        (
            "[-Infinity]",
            "file: not valid JSON (-Infinity is not allowed)",
        ),
    ] {
        assert_eq!(json_err(text).message, want, "{text:?}");
    }
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
        "file: not valid JSON at line 1, column 4"
    );
    assert_eq!(
        json_err("[NaN]").message,
        "file: not valid JSON (NaN is not allowed)"
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
        // The timestamp as text (the status times use the same format).
        let stamp = crate::timestamp::iso_ms(timestamp);
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
