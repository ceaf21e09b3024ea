//! Reading the processor's inputs: S3 notifications and main-queue message bodies
//! (as lib/processor_function.py: s3_event_refs, parse_queue_message; decisions P21-P23).

use crate::json::{self, JsonValue};
use crate::messages::SourceInfo;
use crate::object::ObjectVersion;
use crate::ranges::FileRange;
use crate::record::{validate, Field, InputRecord, Transaction};
use crate::timestamp::{parse_rfc3339_ms, MAX_EPOCH_MS, MIN_EPOCH_MS};
use crate::urlcode::unquote_plus;

/// One object named by an event or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The object, with the version id the event (or message) names, if any.
    pub object: ObjectVersion,
    /// Epoch ms of the S3 event, fallback for last_modified when the object cannot be read.
    pub event_time: Option<i64>,
    /// A range message's range of a split file (P35); `None`: the whole file.
    pub range: Option<FileRange>,
}

/// What an S3 notification names: the objects to process and the event names ignored (P23).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Refs {
    /// The objects to process, in event order.
    pub refs: Vec<ObjectRef>,
    /// (eventName, bucket) of the records that are not ObjectCreated events (P23).
    pub ignored: Vec<(String, String)>,
}

fn as_str(v: Option<&JsonValue>) -> Option<&str> {
    match v {
        Some(JsonValue::String(s)) => Some(s),
        _ => None,
    }
}

/// The objects of an S3 event, or `None` when the value is not an S3 event.
pub fn s3_event_refs(event: &JsonValue) -> Option<S3Refs> {
    let Some(JsonValue::Array(records)) = event.get("Records") else {
        return None;
    };
    if records.is_empty() {
        return None;
    }
    let mut out = S3Refs::default();
    for record in records {
        if !matches!(record, JsonValue::Object(_))
            || as_str(record.get("eventSource")) != Some("aws:s3")
        {
            return None;
        }
        let s3 = record.get("s3")?;
        let bucket_obj = s3.get("bucket")?;
        let bucket = bucket_obj.get("name")?;
        let object = s3.get("object")?;
        let raw_key = object.get("key")?;
        let version_id = object.get("versionId");
        let (JsonValue::String(bucket), JsonValue::String(raw_key)) = (bucket, raw_key) else {
            return None;
        };
        if let Some(name) = as_str(record.get("eventName")) {
            if !name.starts_with("ObjectCreated") {
                out.ignored.push((name.to_owned(), bucket.clone()));
                continue;
            }
        }
        out.refs.push(ObjectRef {
            object: ObjectVersion::new(bucket, &unquote_plus(raw_key), as_str(version_id)),
            event_time: as_str(record.get("eventTime")).and_then(parse_rfc3339_ms),
            range: None,
        });
    }
    Some(out)
}

/// Whether the value is an SQS event (every record from aws:sqs).
pub fn is_sqs_event(event: &JsonValue) -> bool {
    match event.get("Records") {
        Some(JsonValue::Array(records)) if !records.is_empty() => records.iter().all(|r| {
            matches!(r, JsonValue::Object(_)) && as_str(r.get("eventSource")) == Some("aws:sqs")
        }),
        _ => false,
    }
}

/// A non-negative JSON integer (Python `int`, not `bool`, `>= 0`).
pub(crate) fn nonneg_int(value: Option<&JsonValue>) -> Option<u64> {
    let JsonValue::Number(n) = value? else {
        return None;
    };
    if n.contains(['.', 'e', 'E']) || n == "NaN" || n.ends_with("Infinity") {
        return None;
    }
    if let Some(digits) = n.strip_prefix('-') {
        return digits.bytes().all(|b| b == b'0').then_some(0);
    }
    n.parse().ok()
}

/// A main-queue message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueWork {
    /// A retry_record: the record to write again.
    Retry {
        /// The validated record.
        transaction: Box<Transaction>,
        /// Where it came from.
        source: SourceInfo,
        /// Its source line.
        line: u64,
    },
    /// A resume_file or an S3 event: objects to process, each from a start line.
    Files(Vec<(ObjectRef, u64)>),
}

/// Rebuild a validated record from a retry_record message.
pub(crate) fn transaction_from_json(doc: &JsonValue) -> Option<Transaction> {
    let JsonValue::Object(pairs) = doc else {
        return None;
    };
    let timestamp = nonneg_int(doc.get("timestamp"))
        .and_then(|t| i64::try_from(t).ok())
        .filter(|t| (MIN_EPOCH_MS..MAX_EPOCH_MS).contains(t))?;
    if pairs.iter().any(|(k, _)| Field::from_name(k).is_none()) {
        return None;
    }
    let mut input = InputRecord::default();
    for field in Field::ALL {
        if field == Field::Timestamp {
            continue;
        }
        match doc.get(field.name()) {
            None | Some(JsonValue::Null) => {}
            Some(JsonValue::String(s)) => input.set_text(field, s),
            Some(_) => return None,
        }
    }
    input.set_text(Field::Timestamp, "2000-01-01T00:00:00Z");
    let checked = validate(&input).ok()?;
    if as_str(doc.get("amount")) != Some(checked.amount.as_str()) {
        return None;
    }
    Some(Transaction {
        timestamp,
        ..checked
    })
}

/// A message's `version_id`: absent, null or empty is no version; anything but text makes the
/// message unreadable (the outer `None`).
fn version_id_of(doc: &JsonValue) -> Option<Option<String>> {
    match doc.get("version_id") {
        None | Some(JsonValue::Null) => Some(None),
        Some(JsonValue::String(v)) => Some(Some(v.clone()).filter(|v| !v.is_empty())),
        Some(_) => None,
    }
}

/// The `bucket`, `key` and `version_id` of a message or its source; `None` when the bucket or
/// key is not text, or the version id is neither text nor null.
fn object_from_json(doc: &JsonValue) -> Option<ObjectVersion> {
    let bucket = as_str(doc.get("bucket"))?;
    let key = as_str(doc.get("key"))?;
    Some(ObjectVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version_id_of(doc)?,
    })
}

fn source_from_json(doc: Option<&JsonValue>) -> Option<(SourceInfo, u64)> {
    let doc = doc.filter(|d| matches!(d, JsonValue::Object(_)))?;
    let object = object_from_json(doc)?;
    let line = nonneg_int(doc.get("line"))?;
    let last_modified = nonneg_int(doc.get("last_modified")).and_then(|t| i64::try_from(t).ok());
    Some((
        SourceInfo {
            object,
            last_modified,
        },
        line,
    ))
}

/// The range of a resume_file (P35): `Some(None)` without one; `None` (not our format) when
/// some of the three fields are missing or not non-negative integers, or the range is empty.
fn range_from_json(doc: &JsonValue) -> Option<Option<FileRange>> {
    let names = ["range_line", "start_byte", "end_byte"];
    if names.iter().all(|name| doc.get(name).is_none()) {
        return Some(None);
    }
    let [line, start_byte, end_byte] = names.map(|name| nonneg_int(doc.get(name)));
    let range = FileRange {
        line: line?,
        start_byte: start_byte?,
        end_byte: end_byte?,
    };
    (range.start_byte < range.end_byte).then_some(Some(range))
}

/// Classify a main-queue message body; `None` when it is not in a known format (P22).
pub fn parse_queue_message(body: &str) -> Option<QueueWork> {
    let doc = json::parse(body).ok()?;
    if !matches!(doc, JsonValue::Object(_)) {
        return None;
    }
    match doc.get("kind") {
        Some(JsonValue::String(kind)) if kind == "retry_record" => {
            let transaction = transaction_from_json(doc.get("record")?)?;
            let (source, line) = source_from_json(doc.get("source"))?;
            Some(QueueWork::Retry {
                transaction: Box::new(transaction),
                source,
                line,
            })
        }
        Some(JsonValue::String(kind)) if kind == "resume_file" => {
            // A range message with a missing or bad range field is not ours (P22, P35).
            let range = range_from_json(&doc)?;
            let object = object_from_json(&doc)?;
            let start = nonneg_int(doc.get("start_line"))?;
            Some(QueueWork::Files(vec![(
                ObjectRef {
                    object,
                    event_time: None,
                    range,
                },
                start,
            )]))
        }
        None | Some(JsonValue::Null) => {
            let refs = s3_event_refs(&doc)?;
            Some(QueueWork::Files(
                refs.refs.into_iter().map(|r| (r, 0)).collect(),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{range_message, resume_file_message, retry_record_message};

    fn event(key: &str, name: &str) -> JsonValue {
        json::parse(&format!(
            r#"{{"Records":[{{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"{name}",
            "eventTime":"2024-01-01T00:00:00.123Z","s3":{{"bucket":{{"name":"b"}},
            "object":{{"key":"{key}","versionId":"v1"}}}}}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn s3_events() {
        let refs = s3_event_refs(&event("in/my+file%2B1.csv", "ObjectCreated:Put")).unwrap();
        assert_eq!(
            refs.refs,
            vec![ObjectRef {
                object: ObjectVersion::new("b", "in/my file+1.csv", Some("v1")),
                event_time: Some(1_704_067_200_123),
                range: None,
            }]
        );
        let refs = s3_event_refs(&event("k.csv", "ObjectRemoved:Delete")).unwrap();
        assert!(refs.refs.is_empty());
        assert_eq!(refs.ignored.len(), 1);
        assert!(s3_event_refs(&json::parse(r#"{"Records":[]}"#).unwrap()).is_none());
        assert!(
            s3_event_refs(&json::parse(r#"{"Records":[{"eventSource":"aws:s3"}]}"#).unwrap())
                .is_none()
        );
        assert!(is_sqs_event(
            &json::parse(r#"{"Records":[{"eventSource":"aws:sqs"}]}"#).unwrap()
        ));
    }

    #[test]
    fn queue_messages_round_trip() {
        let mut input = InputRecord::default();
        for (f, v) in [
            (Field::TransactionId, "T-1"),
            (Field::AccountId, "ACC1"),
            (Field::Amount, "10.50"),
            (Field::Currency, "EUR"),
            (Field::TransactionType, "DEBIT"),
            (Field::Timestamp, "2024-01-01T00:00:00Z"),
            (Field::MerchantId, "M"),
        ] {
            input.set_text(f, v);
        }
        let tx = validate(&input).unwrap();
        let source = SourceInfo {
            object: ObjectVersion::new("b", "k", Some("v")),
            last_modified: Some(5),
        };
        let body = retry_record_message(&tx, &source, 7, "Throttling", "x", 1, "rust/1").unwrap();
        assert_eq!(
            parse_queue_message(&body),
            Some(QueueWork::Retry {
                transaction: Box::new(tx),
                source,
                line: 7
            })
        );
        let body = resume_file_message(&ObjectVersion::new("b", "k", None), 1001);
        let Some(QueueWork::Files(files)) = parse_queue_message(&body) else {
            panic!("not a file message")
        };
        assert_eq!(files[0].1, 1001);
        assert_eq!(files[0].0.range, None);
        let range = FileRange {
            line: 41,
            start_byte: 1000,
            end_byte: 2000,
        };
        let ranged = range_message(&ObjectVersion::new("b", "k", Some("v1")), &range, 57);
        let Some(QueueWork::Files(files)) = parse_queue_message(&ranged) else {
            panic!("not a range message")
        };
        assert_eq!(files[0].0.range, Some(range));
        assert_eq!(files[0].1, 57);
        // All three range fields or none, each a non-negative integer, a non-empty range (P35).
        for broken in [
            r#""end_byte":null"#,
            r#""end_byte":1000"#,
            r#""range_line":-1"#,
            r#""start_byte":"1000""#,
            r#""end_byte":2000.0"#,
        ] {
            let (name, _) = broken.split_once(':').unwrap();
            let at = ranged.find(name).unwrap();
            let end = ranged[at..].find([',', '}']).unwrap() + at;
            let body = format!("{}{broken}{}", &ranged[..at], &ranged[end..]);
            assert_eq!(parse_queue_message(&body), None, "{body}");
        }
        let partial = ranged.replace(r#","end_byte":2000"#, "");
        assert_eq!(parse_queue_message(&partial), None, "{partial}");
        assert_eq!(parse_queue_message("{\"kind\":\"other\"}"), None);
        assert_eq!(parse_queue_message("not json"), None);
        let s3 = event("a.csv", "ObjectCreated:Put").to_json_string();
        assert!(matches!(parse_queue_message(&s3), Some(QueueWork::Files(f)) if f.len() == 1));
    }

    #[test]
    fn retry_record_must_be_canonical() {
        let doc = json::parse(
            r#"{"transaction_id":"T","account_id":"A","amount":"10.50","currency":"EUR","transaction_type":"DEBIT","timestamp":1704067200000}"#,
        )
        .unwrap();
        assert_eq!(transaction_from_json(&doc), None);
    }
}
