//! The processor's messages (design.md section 5, decisions P19-P21) and the masking of input
//! records on the errors path.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::error::{ErrorCode, FileError, RecordError};
use crate::json::JsonValue;
use crate::object::ObjectVersion;
use crate::pyjson::{ascii_only, Dumps, Numbers};
use crate::ranges::FileRange;
use crate::record::{trim, truncate_chars, Transaction};

/// Most keys of an input record echoed in a message.
pub(crate) const ECHO_MAX_KEYS: usize = 32;
/// Longest echoed key, in characters.
pub(crate) const ECHO_MAX_KEY_CHARS: usize = 64;
/// Longest echoed value, in characters.
pub(crate) const ECHO_MAX_VALUE_CHARS: usize = 256;
/// Longest error text in a message, in characters.
pub(crate) const MAX_TEXT_IN_MESSAGE: usize = 1024;
/// SQS's message size limit, in bytes.
pub const SQS_MAX_BYTES: usize = 262_144;

/// Where a record or file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The object version read.
    pub object: ObjectVersion,
    /// Epoch ms of the object version's LastModified (decision P19).
    pub last_modified: Option<i64>,
}

#[derive(Serialize)]
struct SourceJson<'a> {
    #[serde(flatten)]
    object: &'a ObjectVersion,
    line: Option<u64>,
    last_modified: Option<i64>,
}

impl SourceInfo {
    fn to_json(&self, line: Option<u64>) -> SourceJson<'_> {
        SourceJson {
            object: &self.object,
            line,
            last_modified: self.last_modified,
        }
    }
}

/// An ordered map of strings (a masked record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringMap(pub Vec<(String, String)>);

impl StringMap {
    /// Python's `d[key] = value`: a new key goes last, an existing one keeps its place.
    pub fn insert(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `"****"` plus the last 4 characters; only `"****"` for short or non-text values (P20).
pub(crate) fn mask_account(value: &JsonValue) -> String {
    let text = match value {
        JsonValue::String(s) | JsonValue::Number(s) => trim(s),
        _ => return "****".to_owned(),
    };
    let n = text.chars().count();
    if n > 4 {
        let tail: String = text.chars().skip(n - 4).collect();
        format!("****{tail}")
    } else {
        "****".to_owned()
    }
}

fn echo_text(value: &JsonValue) -> String {
    let text = match value {
        JsonValue::String(s) | JsonValue::Number(s) => trim(s).to_owned(),
        other => Dumps::compact(false, Numbers::Quoted).dumps(other),
    };
    truncate_chars(&text, ECHO_MAX_VALUE_CHARS).to_owned()
}

/// The input record for the errors path: account_id masked, description dropped, null values
/// left out, at most 32 keys, keys cut to 64 and values to 256 characters (P20).
pub fn masked_record(values: &[(String, JsonValue)]) -> StringMap {
    mask_entries(values, "", |key, value| {
        if key == "account_id" {
            mask_account(value)
        } else {
            echo_text(value)
        }
    })
}

/// The masking both errors paths share (P20 here, D8 in the DLQ processor): description and
/// null values left out, at most 32 keys, each key cut to 64 characters (an empty one named
/// `empty_key`); `text(key, value)` renders and masks each value.
pub(crate) fn mask_entries<'a>(
    entries: impl IntoIterator<Item = &'a (String, JsonValue)>,
    empty_key: &str,
    text: impl Fn(&str, &JsonValue) -> String,
) -> StringMap {
    let mut out = StringMap::default();
    for (key, value) in entries {
        if out.len() >= ECHO_MAX_KEYS {
            break;
        }
        if key == "description" || *value == JsonValue::Null {
            continue;
        }
        let name = match truncate_chars(key, ECHO_MAX_KEY_CHARS) {
            "" => empty_key,
            name => name,
        };
        out.insert(name.to_owned(), text(key, value));
    }
    out
}

/// The validated record as retry_record carries it (P21).
#[derive(Debug, Clone, Serialize)]
pub struct TransactionJson<'a> {
    /// Validated transaction_id.
    pub transaction_id: &'a str,
    /// Validated account_id.
    pub account_id: &'a str,
    /// Canonical amount (P4).
    pub amount: &'a str,
    /// Upper-case currency code.
    pub currency: &'a str,
    /// Upper-case transaction type.
    pub transaction_type: &'a str,
    /// Epoch milliseconds UTC.
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// merchant_id, when present.
    pub merchant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// description, when present.
    pub description: Option<&'a str>,
}

impl<'a> From<&'a Transaction> for TransactionJson<'a> {
    fn from(tx: &'a Transaction) -> Self {
        TransactionJson {
            transaction_id: &tx.transaction_id,
            account_id: &tx.account_id,
            amount: &tx.amount,
            currency: &tx.currency,
            transaction_type: &tx.transaction_type,
            timestamp: tx.timestamp,
            merchant_id: tx.merchant_id.as_deref(),
            description: tx.description.as_deref(),
        }
    }
}

/// The input values of a validated record (what a conflict found on the retry path echoes:
/// the timestamp as text).
pub fn transaction_values(tx: &Transaction) -> Vec<(String, JsonValue)> {
    let mut values = vec![
        (
            "transaction_id".to_owned(),
            JsonValue::String(tx.transaction_id.clone()),
        ),
        (
            "account_id".to_owned(),
            JsonValue::String(tx.account_id.clone()),
        ),
        ("amount".to_owned(), JsonValue::String(tx.amount.clone())),
        (
            "currency".to_owned(),
            JsonValue::String(tx.currency.clone()),
        ),
        (
            "transaction_type".to_owned(),
            JsonValue::String(tx.transaction_type.clone()),
        ),
        (
            "timestamp".to_owned(),
            JsonValue::String(tx.timestamp.to_string()),
        ),
    ];
    if let Some(m) = &tx.merchant_id {
        values.push(("merchant_id".to_owned(), JsonValue::String(m.clone())));
    }
    if let Some(d) = &tx.description {
        values.push(("description".to_owned(), JsonValue::String(d.clone())));
    }
    values
}

#[derive(Serialize)]
struct RecordErrorJson<'a> {
    kind: &'static str,
    error_code: ErrorCode,
    error_message: &'a str,
    field: Option<&'a str>,
    transaction_id: Option<&'a str>,
    source: SourceJson<'a>,
    record: Option<&'a StringMap>,
    failed_at: i64,
    processor: &'a str,
}

#[derive(Serialize)]
struct FileErrorJson<'a> {
    kind: &'static str,
    error_code: ErrorCode,
    error_message: &'a str,
    source: SourceJson<'a>,
    failed_at: i64,
    processor: &'a str,
}

#[derive(Serialize)]
struct RetryErrorJson<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct RetryRecordJson<'a> {
    kind: &'static str,
    record: TransactionJson<'a>,
    source: SourceJson<'a>,
    error: RetryErrorJson<'a>,
    failed_at: i64,
    processor: &'a str,
}

#[derive(Serialize)]
struct ResumeFileJson<'a> {
    kind: &'static str,
    #[serde(flatten)]
    object: &'a ObjectVersion,
    start_line: u64,
}

/// Compact ASCII JSON, as Python's `json.dumps(..., separators=(",", ":"), ensure_ascii=True)`.
fn encode<T: Serialize>(body: &T) -> String {
    // Serialising these structs cannot fail (string keys, no maps with non-string keys).
    ascii_only(&serde_json::to_string(body).unwrap_or_default())
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
#[error("retry_record message over the SQS size limit")]
pub struct MessageTooLarge;

/// A record_error message body; the echoed record is dropped when the body would be over the
/// SQS size limit.
pub fn record_error_message(
    error: &RecordError,
    source: &SourceInfo,
    line: u64,
    record: Option<&StringMap>,
    transaction_id: Option<&str>,
    failed_at: i64,
    processor: &str,
) -> String {
    let mut body = RecordErrorJson {
        kind: "record_error",
        error_code: error.code,
        error_message: truncate_chars(&error.message, MAX_TEXT_IN_MESSAGE),
        field: error.field.as_deref(),
        transaction_id,
        source: source.to_json(Some(line)),
        record,
        failed_at,
        processor,
    };
    let text = encode(&body);
    if text.len() > SQS_MAX_BYTES && body.record.is_some() {
        body.record = None;
        return encode(&body);
    }
    text
}

/// A file_error message body (P19: source.line null, no transaction_id, no record).
pub fn file_error_message(
    error: &FileError,
    source: &SourceInfo,
    failed_at: i64,
    processor: &str,
) -> String {
    encode(&FileErrorJson {
        kind: "file_error",
        error_code: error.code,
        error_message: truncate_chars(&error.message, MAX_TEXT_IN_MESSAGE),
        source: source.to_json(None),
        failed_at,
        processor,
    })
}

/// A retry_record message body (P21).
pub fn retry_record_message(
    tx: &Transaction,
    source: &SourceInfo,
    line: u64,
    code: &str,
    message: &str,
    failed_at: i64,
    processor: &str,
) -> Result<String, MessageTooLarge> {
    let text = encode(&RetryRecordJson {
        kind: "retry_record",
        record: tx.into(),
        source: source.to_json(Some(line)),
        error: RetryErrorJson {
            code,
            message: truncate_chars(message, MAX_TEXT_IN_MESSAGE),
        },
        failed_at,
        processor,
    });
    if text.len() > SQS_MAX_BYTES {
        return Err(MessageTooLarge);
    }
    Ok(text)
}

/// A resume_file of one range of a split file (P35): a resume_file with the range's fields.
#[derive(Serialize)]
struct RangeFileJson<'a> {
    #[serde(flatten)]
    resume: ResumeFileJson<'a>,
    range_line: u64,
    start_byte: u64,
    end_byte: u64,
}

/// A resume_file message body for one range of a split file, from `start_line` on (P35).
pub fn range_message(object: &ObjectVersion, range: &FileRange, start_line: u64) -> String {
    encode(&RangeFileJson {
        resume: ResumeFileJson {
            kind: "resume_file",
            object,
            start_line,
        },
        range_line: range.line,
        start_byte: range.start_byte,
        end_byte: range.end_byte,
    })
}

/// The resume_file that continues from `start_line`: of one range of a split file when
/// `range` is given (a range stays a range, P35), else of the whole file (P21).
pub fn resume_message(
    object: &ObjectVersion,
    range: Option<&FileRange>,
    start_line: u64,
) -> String {
    match range {
        Some(range) => range_message(object, range, start_line),
        None => resume_file_message(object, start_line),
    }
}

/// A resume_file message body (P21).
pub fn resume_file_message(object: &ObjectVersion, start_line: u64) -> String {
    encode(&ResumeFileJson {
        kind: "resume_file",
        object,
        start_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn pairs(text: &str) -> Vec<(String, JsonValue)> {
        match parse(text).unwrap() {
            JsonValue::Object(p) => p,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn masking() {
        let rec = masked_record(&pairs(
            r#"{"transaction_id": " T-1 ", "account_id": " DE89370400440532013000 ", "amount": 12.50,
                "description": "secret", "merchant_id": null, "meta": [1, {"a": true}], "flag": false}"#,
        ));
        assert_eq!(
            rec.0,
            vec![
                ("transaction_id".into(), "T-1".into()),
                ("account_id".into(), "****3000".into()),
                ("amount".into(), "12.50".into()),
                ("meta".into(), "[\"1\",{\"a\":true}]".into()),
                ("flag".into(), "false".into()),
            ]
        );
        assert_eq!(mask_account(&JsonValue::String("ACC1".into())), "****");
        assert_eq!(mask_account(&JsonValue::Bool(true)), "****");
        assert_eq!(
            mask_account(&JsonValue::Number("123456".into())),
            "****3456"
        );
    }

    #[test]
    fn masking_limits() {
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i:02}\": \"v\"")).collect();
        let rec = masked_record(&pairs(&format!("{{{}}}", many.join(","))));
        assert_eq!(rec.len(), ECHO_MAX_KEYS);
        let long_key = "k".repeat(100);
        let rec = masked_record(&pairs(&format!(
            "{{\"{long_key}\": \"{}\"}}",
            "v".repeat(300)
        )));
        assert_eq!(rec.0[0].0.len(), 64);
        assert_eq!(rec.0[0].1.len(), 256);
    }

    #[test]
    fn message_shapes() {
        let source = SourceInfo {
            object: ObjectVersion::new("b", "in/ü.csv", Some("v1")),
            last_modified: Some(1_700_000_000_000),
        };
        let error = RecordError {
            code: ErrorCode::InvalidValue,
            field: Some("amount".into()),
            message: "amount: must be greater than 0".into(),
        };
        let rec = StringMap(vec![("account_id".into(), "****1234".into())]);
        assert_eq!(
            record_error_message(&error, &source, 3, Some(&rec), Some("T-1"), 5, "rust/1.0.0"),
            "{\"kind\":\"record_error\",\"error_code\":\"INVALID_VALUE\",\"error_message\":\
             \"amount: must be greater than 0\",\"field\":\"amount\",\"transaction_id\":\"T-1\",\
             \"source\":{\"bucket\":\"b\",\"key\":\"in/\\u00fc.csv\",\"version_id\":\"v1\",\
             \"line\":3,\"last_modified\":1700000000000},\"record\":{\"account_id\":\"****1234\"},\
             \"failed_at\":5,\"processor\":\"rust/1.0.0\"}"
        );
        let ferr = FileError::new(ErrorCode::EmptyFile, "file: no rows");
        assert_eq!(
            file_error_message(&ferr, &source, 5, "rust/1.0.0"),
            "{\"kind\":\"file_error\",\"error_code\":\"EMPTY_FILE\",\"error_message\":\
             \"file: no rows\",\"source\":{\"bucket\":\"b\",\"key\":\
             \"in/\\u00fc.csv\",\"version_id\":\"v1\",\"line\":null,\"last_modified\":\
             1700000000000},\"failed_at\":5,\"processor\":\"rust/1.0.0\"}"
        );
        let range = FileRange {
            line: 41,
            start_byte: 1000,
            end_byte: 2000,
        };
        assert_eq!(
            range_message(&ObjectVersion::new("b", "k", Some("v1")), &range, 57),
            "{\"kind\":\"resume_file\",\"bucket\":\"b\",\"key\":\"k\",\"version_id\":\"v1\",\
             \"start_line\":57,\"range_line\":41,\"start_byte\":1000,\"end_byte\":2000}"
        );
        assert_eq!(
            resume_file_message(&ObjectVersion::new("b", "k", None), 7),
            "{\"kind\":\"resume_file\",\"bucket\":\"b\",\"key\":\"k\",\"version_id\":null,\
             \"start_line\":7}"
        );
    }

    #[test]
    fn largest_echo_stays_under_the_sqs_limit() {
        let source = SourceInfo {
            object: ObjectVersion {
                bucket: "b".repeat(63),
                key: "\u{1F600}".repeat(1024),
                version_id: Some("v".repeat(1024)),
            },
            last_modified: None,
        };
        let error = RecordError {
            code: ErrorCode::UnknownField,
            field: Some("\u{1F600}".repeat(256)),
            message: "\u{1F600}".repeat(5000),
        };
        let big = StringMap(
            (0..32)
                .map(|i| {
                    (
                        format!("{i}{}", "\u{1F600}".repeat(63)),
                        "\u{1F600}".repeat(256),
                    )
                })
                .collect(),
        );
        let text = record_error_message(&error, &source, 1, Some(&big), None, 1, "p");
        assert!(text.len() < SQS_MAX_BYTES, "{}", text.len());
        assert!(text.contains("\"record\":{"));
    }
}
