//! Unit tests of the dlq module.

use super::*;

fn msg(body: &str) -> SqsMessage {
    SqsMessage {
        message_id: "m-1".into(),
        body: body.into(),
        sent_timestamp: Some("1700000000000".into()),
        receive_count: Some("1".into()),
    }
}

#[test]
fn record_error_row() {
    let body = r#"{"kind":"record_error","error_code":"INVALID_VALUE","error_message":"amount: must be greater than 0","field":"amount","transaction_id":"RP-2","source":{"bucket":"b","key":"in/x.csv","version_id":"v1","line":3,"last_modified":1699999999000},"record":{"transaction_id":"RP-2","account_id":"****1234","amount":"0"},"failed_at":1700000000500,"processor":"rust/1.0.0"}"#;
    let rows = interpret_message(&msg(body), 1_700_000_001_000);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        r.error_id,
        error_id(
            &ObjectVersion::new("b", "in/x.csv", Some("v1")),
            Some("3"),
            "INVALID_VALUE"
        )
    );
    assert_eq!(
        r.error_id,
        sha256_hex("b\u{1f}in/x.csv\u{1f}v1\u{1f}3\u{1f}INVALID_VALUE")
    );
    assert_eq!(r.timestamp, "1699999999000");
    assert_eq!(r.detected_at, "1700000000500");
    assert_eq!(r.error_type, VALIDATION);
    assert_eq!(r.transaction_id.as_deref(), Some("RP-2"));
    assert_eq!(
        r.record.as_ref().unwrap().0[1],
        ("account_id".into(), "****1234".into())
    );
    let item = r.to_item(&msg(body), 42);
    assert!(item.contains(&("retryable", Attr::Bool(false))));
    assert!(item.contains(&("receive_count", Attr::N("1".into()))));
}

#[test]
fn unknown_shapes() {
    for body in [
        "this is not json",
        "{\"foo\": 1}",
        "[1, 2, 3]",
        "42",
        "\"s\"",
        "null",
        "{\"kind\": \"something_else\"}",
        "{\"Records\": []}",
        "{\"kind\":\"file_error\",\"error_code\":\"\",\"source\":{\"bucket\":\"b\",\"key\":\"k\"}}",
    ] {
        let rows = interpret_message(&msg(body), 5);
        assert_eq!(rows.len(), 1, "{body}");
        assert_eq!(rows[0].error_type, UNKNOWN_FORMAT);
        assert_eq!(rows[0].error_id, sha256_hex(body));
        assert_eq!(rows[0].timestamp, "1700000000000");
    }
}

#[test]
fn s3_event_rows() {
    let body = r#"{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"in/my+file%2B1.csv","versionId":"v"}}},{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"x.json"}}}]}"#;
    let rows = interpret_message(&msg(body), 5);
    assert_eq!(rows.len(), 2);
    let source = |i: usize| rows[i].source.as_ref().expect("a source");
    assert_eq!(source(0).key, "in/my file+1.csv");
    assert_eq!(rows[0].error_code, FILE_PROCESSING_FAILED);
    assert!(rows[0].retryable);
    assert_eq!(source(1).version_id, None);
}

#[test]
fn processing_rows() {
    let retry = r#"{"kind":"retry_record","record":{"transaction_id":"T","account_id":"ACC123456","amount":"1","currency":"EUR","transaction_type":"DEBIT","timestamp":1704067200000},"source":{"bucket":"b","key":"k","version_id":null,"line":2,"last_modified":null},"error":{"code":"ThrottlingException","message":"slow down"},"failed_at":9,"processor":"p"}"#;
    let r = &interpret_message(&msg(retry), 5)[0];
    assert_eq!(r.error_code, RECORD_WRITE_FAILED);
    assert_eq!(
        r.error_message,
        "record could not be stored after retries; last error: ThrottlingException: slow down"
    );
    assert_eq!(r.timestamp, "1700000000000");
    let rec = r.record.as_ref().unwrap();
    assert!(rec.0.contains(&("account_id".into(), "****3456".into())));
    assert!(rec
        .0
        .contains(&("timestamp".into(), "1704067200000".into())));
    let resume =
        r#"{"kind":"resume_file","bucket":"b","key":"k","version_id":"v","start_line":1001}"#;
    let r = &interpret_message(&msg(resume), 5)[0];
    assert_eq!(
        r.error_message,
        "file processing could not be resumed from line 1001"
    );
    assert_eq!(r.source_line.as_deref(), Some("1001"));
}

#[test]
fn int_attributes() {
    // Q2: ASCII digits, as SQS sends them, or a non-negative JSON integer.
    let s = |t: &str| JsonValue::String(t.into());
    let n = |t: &str| JsonValue::Number(t.into());
    assert_eq!(int_attr(&s("1700000000000")), Some("1700000000000".into()));
    assert_eq!(int_attr(&s("007")), Some("7".into()));
    assert_eq!(int_attr(&n("12")), Some("12".into()));
    assert_eq!(int_attr(&n("-0")), Some("0".into()));
    for bad in [" 1000 ", "1_000", "+1", "-1", "1.5", "", "\u{0661}"] {
        assert_eq!(int_attr(&s(bad)), None, "{bad:?}");
    }
    for bad in ["-1", "1.0", "1e3"] {
        assert_eq!(int_attr(&n(bad)), None, "{bad:?}");
    }
    assert_eq!(int_attr(&JsonValue::Bool(true)), None);
}

#[test]
fn sqs_record_parts_of_odd_records() {
    // Q1: a messageId that is not a string is ""; a body that is not a string is its
    // compact ASCII JSON text, "null" when there is none.
    let parts = |text: &str| sqs_record_parts(&json::parse(text).unwrap());
    assert_eq!(
        parts(r#"{"messageId":"m-1","body":"b"}"#),
        ("m-1".into(), "b".into())
    );
    assert_eq!(
        parts(r#"{"messageId":7,"body":{"k": [1.50, "é"]}}"#),
        (String::new(), r#"{"k":[1.5,"\u00e9"]}"#.into())
    );
    assert_eq!(
        parts(r#"{"messageId":true}"#),
        (String::new(), "null".into())
    );
}

#[test]
fn leaked_data_is_masked_again() {
    let record = json::parse(
        r#"{"account_id":"DE89370400440532013000","description":"private","amount":5,
        "x":null,"":"empty key","n":12345678}"#,
    )
    .unwrap();
    let masked = masked_record(Some(&record)).unwrap();
    let expected = [
        ("account_id", "****3000"),
        ("amount", "5"),
        ("_", "empty key"),
        ("n", "12345678"),
    ];
    assert_eq!(
        masked.0,
        expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
    );
}
