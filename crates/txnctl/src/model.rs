//! The two kinds of item txnctl reads, decoded from DynamoDB: a per-file status record
//! (contract/schemas/file_status_item.json, issue 14) and an errors row
//! (contract/schemas/errors_row.json).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// An integer attribute. Numbers are N; S is accepted as well, so that a key stored as text
/// (the errors table's `timestamp` is N today) still decodes.
fn int(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) | Some(AttributeValue::S(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A per-file status record (file-status-schema.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileStatus {
    pub source_bucket: Option<String>,
    pub source_key: String,
    pub source_version_id: String,
    pub state: String,
    pub rows_seen: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub retries_pending: i64,
    pub record_errors: BTreeMap<String, i64>,
    pub file_error: Option<FileError>,
    pub first_activity: Option<String>,
    pub last_activity: Option<String>,
    pub activity_day: Option<String>,
    pub processor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileError {
    pub error_code: String,
    pub error_message: String,
}

impl FileStatus {
    /// Decodes an item; None when its key attributes are missing (not a status record).
    pub fn from_item(item: &Item) -> Option<FileStatus> {
        let record_errors = match item.get("record_errors") {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(code, v)| match v {
                    AttributeValue::N(n) => n.parse().ok().map(|c| (code.clone(), c)),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let file_error = match item.get("file_error") {
            Some(AttributeValue::M(m)) => Some(FileError {
                error_code: text(m, "error_code").unwrap_or_default(),
                error_message: text(m, "error_message").unwrap_or_default(),
            }),
            _ => None,
        };
        Some(FileStatus {
            source_bucket: text(item, "source_bucket"),
            source_key: text(item, "source_key")?,
            source_version_id: text(item, "source_version_id")?,
            state: text(item, "state").unwrap_or_default(),
            rows_seen: int(item, "rows_seen").unwrap_or(0),
            stored: int(item, "stored").unwrap_or(0),
            duplicates: int(item, "duplicates").unwrap_or(0),
            retries_pending: int(item, "retries_pending").unwrap_or(0),
            record_errors,
            file_error,
            first_activity: text(item, "first_activity"),
            last_activity: text(item, "last_activity"),
            activity_day: text(item, "activity_day"),
            processor: text(item, "processor"),
        })
    }

    pub fn error_count(&self) -> i64 {
        self.record_errors.values().sum()
    }
}

/// The key of an errors row, kept as stored so that UpdateItem names it exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct RowKey {
    pub error_id: String,
    pub timestamp: AttributeValue,
}

/// An errors row as txnctl shows it: the record is masked (D8) and masked again here, so that
/// nothing but masked data is ever printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorRow {
    pub error_id: String,
    pub timestamp: i64,
    pub detected_at: Option<i64>,
    pub error_code: String,
    pub error_type: String,
    pub error_message: String,
    pub retryable: bool,
    pub transaction_id: Option<String>,
    pub field: Option<String>,
    pub source_bucket: Option<String>,
    pub source_key: Option<String>,
    pub source_version_id: Option<String>,
    pub source_line: Option<i64>,
    pub record: Option<BTreeMap<String, String>>,
    pub receive_count: Option<i64>,
    pub replayed_at: Option<String>,
    #[serde(skip)]
    pub key: RowKey,
}

impl ErrorRow {
    /// Decodes an item; None when its key attributes are missing.
    pub fn from_item(item: &Item) -> Option<ErrorRow> {
        let error_id = text(item, "error_id")?;
        let timestamp_attr = item.get("timestamp")?.clone();
        let record = match item.get("record") {
            Some(AttributeValue::M(m)) => Some(mask_record(m)),
            _ => None,
        };
        Some(ErrorRow {
            timestamp: int(item, "timestamp").unwrap_or(0),
            detected_at: int(item, "detected_at"),
            error_code: text(item, "error_code").unwrap_or_default(),
            error_type: text(item, "error_type").unwrap_or_default(),
            error_message: text(item, "error_message").unwrap_or_default(),
            retryable: matches!(item.get("retryable"), Some(AttributeValue::Bool(true))),
            transaction_id: text(item, "transaction_id"),
            field: text(item, "field"),
            source_bucket: text(item, "source_bucket"),
            source_key: text(item, "source_key"),
            source_version_id: text(item, "source_version_id"),
            source_line: int(item, "source_line"),
            record,
            receive_count: int(item, "receive_count"),
            replayed_at: text(item, "replayed_at"),
            key: RowKey {
                error_id: error_id.clone(),
                timestamp: timestamp_attr,
            },
            error_id,
        })
    }
}

/// D8 once more (it is idempotent): description dropped, account_id down to its last four
/// characters, anything that is not text shown as a type name instead of its value.
pub fn mask_record(record: &HashMap<String, AttributeValue>) -> BTreeMap<String, String> {
    record
        .iter()
        .filter(|(k, _)| k.as_str() != "description")
        .map(|(k, v)| {
            let shown = match (k.as_str(), v) {
                ("account_id", AttributeValue::S(s)) => mask_account(s),
                ("account_id", _) => "****".to_owned(),
                (_, AttributeValue::S(s)) => s.clone(),
                (_, AttributeValue::N(n)) => n.clone(),
                (_, AttributeValue::Bool(b)) => b.to_string(),
                _ => "(not text)".to_owned(),
            };
            (k.clone(), shown)
        })
        .collect()
}

fn mask_account(value: &str) -> String {
    // An already masked value ("****1234") stays as it is: its last four are the same.
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 4 {
        return "****".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

/// Epoch milliseconds as ISO-8601 UTC with milliseconds, for tables.
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }
    pub fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    #[test]
    fn a_status_item_decodes_with_its_error_counts() {
        let item: Item = [
            ("source_key", s("in/a.csv")),
            ("source_version_id", s("v1")),
            ("state", s("done")),
            ("rows_seen", n(10)),
            ("stored", n(7)),
            ("duplicates", n(1)),
            (
                "record_errors",
                AttributeValue::M([("INVALID_VALUE".to_owned(), n(2))].into()),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        let status = FileStatus::from_item(&item).expect("decodes");
        assert_eq!(status.error_count(), 2);
        assert_eq!(status.retries_pending, 0);
        assert_eq!(status.file_error, None);
        let without_key: Item = [("state".to_owned(), s("done"))].into();
        assert_eq!(FileStatus::from_item(&without_key), None);
    }

    #[test]
    fn records_are_masked_again_and_never_shown_whole() {
        let record: HashMap<String, AttributeValue> = [
            ("account_id", s("DE89370400440532013000")),
            ("description", s("rent for flat 3")),
            ("amount", s("12.50")),
            ("nested", AttributeValue::L(vec![s("x")])),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        let masked = mask_record(&record);
        assert_eq!(
            masked.get("account_id").map(String::as_str),
            Some("****3000")
        );
        assert!(!masked.contains_key("description"));
        assert_eq!(masked.get("nested").map(String::as_str), Some("(not text)"));
        assert_eq!(mask_account("****3000"), "****3000");
        assert_eq!(mask_account("123"), "****");
    }

    #[test]
    fn iso_ms_formats_utc_with_milliseconds() {
        assert_eq!(iso_ms(1_764_460_800_123), "2025-11-30T00:00:00.123Z");
    }
}
