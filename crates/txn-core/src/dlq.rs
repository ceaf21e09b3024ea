//! What the DLQ processor stores for one dead-letter message (design.md sections 4, 5 and 8;
//! decisions D1-D10 of contract/decisions.md). Pure: the handler only does the I/O.

use crate::json::{self, JsonValue};
use crate::messages::{mask_account, mask_entries, StringMap, ECHO_MAX_VALUE_CHARS};
use crate::object::ObjectVersion;
use crate::pyjson::{ascii_json, Dumps, Numbers};
use crate::record::{is_transaction_id, trim, truncate_chars};
use crate::sha256_hex;
use crate::urlcode::unquote_plus;

/// Longest error_message stored, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1024;

pub(crate) const VALIDATION: &str = "VALIDATION";
pub(crate) const FILE: &str = "FILE";
pub(crate) const PROCESSING: &str = "PROCESSING";
pub(crate) const UNKNOWN_FORMAT: &str = "UNKNOWN_FORMAT";
pub(crate) const RECORD_WRITE_FAILED: &str = "RECORD_WRITE_FAILED";
pub(crate) const FILE_RESUME_FAILED: &str = "FILE_RESUME_FAILED";
pub(crate) const FILE_PROCESSING_FAILED: &str = "FILE_PROCESSING_FAILED";

/// The parts of one SQS event record this function uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// The SQS message id.
    pub message_id: String,
    /// The body, as text (a non-string body is its JSON text).
    pub body: String,
    /// Non-negative integer text of the SentTimestamp attribute.
    pub sent_timestamp: Option<String>,
    /// Non-negative integer text of the ApproximateReceiveCount attribute.
    pub receive_count: Option<String>,
}

/// SentTimestamp or ApproximateReceiveCount (decision Q2): ASCII decimal digits, as SQS sends
/// them, or a non-negative JSON integer, as decimal text without leading zeros; anything else
/// counts as absent.
pub(crate) fn int_attr(value: &JsonValue) -> Option<String> {
    let digits = match value {
        JsonValue::String(s) => s.as_str(),
        // A JSON integer; "-0" is the integer 0.
        JsonValue::Number(n) => n
            .strip_prefix('-')
            .filter(|d| d.bytes().all(|b| b == b'0'))
            .unwrap_or(n),
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let clean = digits.trim_start_matches('0');
    Some(if clean.is_empty() { "0" } else { clean }.to_owned())
}

impl SqsMessage {
    /// From one record of the SQS event (any JSON value).
    pub fn from_record(record: &JsonValue) -> SqsMessage {
        let empty = JsonValue::Object(Vec::new());
        let record = if matches!(record, JsonValue::Object(_)) {
            record
        } else {
            &empty
        };
        let attributes = match record.get("attributes") {
            Some(a @ JsonValue::Object(p)) if !p.is_empty() => a,
            _ => &empty,
        };
        let (message_id, body) = sqs_record_parts(record);
        SqsMessage {
            message_id,
            body,
            sent_timestamp: attributes.get("SentTimestamp").and_then(int_attr),
            receive_count: attributes.get("ApproximateReceiveCount").and_then(int_attr),
        }
    }
}

/// An SQS record's messageId and body (decision Q1): a messageId that is not a string is "";
/// a body that is not a string is its compact ASCII JSON text ("null" when there is none).
pub fn sqs_record_parts(record: &JsonValue) -> (String, String) {
    let message_id = match record.get("messageId") {
        Some(JsonValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let body = match record.get("body") {
        Some(JsonValue::String(s)) => s.clone(),
        Some(other) => ascii_json(other),
        None => "null".to_owned(),
    };
    (message_id, body)
}

/// One row of the errors table (design.md section 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// Hex SHA-256 key of the row (D4).
    pub error_id: String,
    /// Decimal epoch ms.
    pub timestamp: String,
    /// Decimal epoch ms: the message's failed_at, else when this function handled it (D6).
    pub detected_at: String,
    /// The error code (D3).
    pub error_code: String,
    /// VALIDATION, FILE, PROCESSING or UNKNOWN_FORMAT (D1).
    pub error_type: &'static str,
    /// The message text, cut to 1024 characters (D10).
    pub error_message: String,
    /// True for PROCESSING only (D2).
    pub retryable: bool,
    /// Present only when it matches the transaction_id rule (D7).
    pub transaction_id: Option<String>,
    /// The field at fault, when known.
    pub field: Option<String>,
    /// The source object (its bucket, key and version id), when known.
    pub source: Option<ObjectVersion>,
    /// Decimal line.
    pub source_line: Option<String>,
    /// The masked record (D8), when the message carried one.
    pub record: Option<StringMap>,
}

/// A DynamoDB attribute value of an error item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// A string.
    S(String),
    /// A number, as decimal text.
    N(String),
    /// A boolean.
    Bool(bool),
    /// A map of strings.
    M(Vec<(String, String)>),
}

impl ErrorRecord {
    /// The DynamoDB item: the attributes of design.md section 8, absent when unknown (D7).
    pub fn to_item(&self, message: &SqsMessage, expires_at: i64) -> Vec<(&'static str, Attr)> {
        let mut item = vec![
            ("error_id", Attr::S(self.error_id.clone())),
            ("timestamp", Attr::N(self.timestamp.clone())),
            ("detected_at", Attr::N(self.detected_at.clone())),
        ];
        if let Some(t) = self.transaction_id.as_ref().filter(|t| !t.is_empty()) {
            item.push(("transaction_id", Attr::S(t.clone())));
        }
        item.push(("error_code", Attr::S(self.error_code.clone())));
        item.push(("error_type", Attr::S(self.error_type.to_owned())));
        let message_text = if self.error_message.is_empty() {
            self.error_code.clone()
        } else {
            self.error_message.clone()
        };
        item.push(("error_message", Attr::S(message_text)));
        if let Some(f) = self.field.as_ref().filter(|f| !f.is_empty()) {
            item.push(("field", Attr::S(f.clone())));
        }
        item.push(("retryable", Attr::Bool(self.retryable)));
        if let Some(source) = &self.source {
            for (name, value) in [
                ("source_bucket", Some(&source.bucket)),
                ("source_key", Some(&source.key)),
                ("source_version_id", source.version_id.as_ref()),
            ] {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    item.push((name, Attr::S(v.clone())));
                }
            }
        }
        if let Some(line) = &self.source_line {
            item.push(("source_line", Attr::N(line.clone())));
        }
        if let Some(record) = &self.record {
            item.push(("record", Attr::M(record.0.clone())));
        }
        if !message.message_id.is_empty() {
            item.push(("sqs_message_id", Attr::S(message.message_id.clone())));
        }
        if let Some(count) = &message.receive_count {
            item.push(("receive_count", Attr::N(count.clone())));
        }
        item.push(("expires_at", Attr::N(expires_at.to_string())));
        item
    }
}

/// A non-negative JSON integer (not a float, not a boolean), as decimal text.
fn nonneg_int(value: Option<&JsonValue>) -> Option<String> {
    let JsonValue::Number(n) = value? else {
        return None;
    };
    if n.contains(['.', 'e', 'E']) || n == "NaN" || n.ends_with("Infinity") {
        return None;
    }
    let (neg, digits) = match n.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, n.as_str()),
    };
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if neg && digits != "0" {
        return None;
    }
    Some(digits.to_owned())
}

/// An object version named in a message: a version id that is not a non-empty string is none.
fn object_version(bucket: &str, key: &str, version_id: Option<&JsonValue>) -> ObjectVersion {
    let version_id = match version_id {
        Some(JsonValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    ObjectVersion::new(bucket, key, version_id)
}

/// Deterministic error id (design.md section 4, D4).
pub(crate) fn error_id(object: &ObjectVersion, line: Option<&str>, code: &str) -> String {
    sha256_hex(
        &[
            object.bucket.as_str(),
            &object.key,
            object.version_id.as_deref().unwrap_or(""),
            line.unwrap_or(""),
            code,
        ]
        .join("\u{1f}"),
    )
}

/// The masked map of strings for the errors table (D8).
pub fn masked_record(record: Option<&JsonValue>) -> Option<StringMap> {
    let JsonValue::Object(pairs) = record? else {
        return None;
    };
    Some(mask_entries(pairs, "_", |key, value| {
        let text = if key == "account_id" {
            match value {
                // Python sees numbers as int/float here: not text.
                JsonValue::String(_) => mask_account(value),
                _ => "****".to_owned(),
            }
        } else {
            match value {
                JsonValue::String(s) => s.clone(),
                other => Dumps::compact(false, Numbers::Python).dumps(other),
            }
        };
        truncate_chars(&text, ECHO_MAX_VALUE_CHARS).to_owned()
    }))
}

fn transaction_id(value: Option<&JsonValue>) -> Option<String> {
    match value {
        Some(JsonValue::String(s)) => {
            let t = trim(s);
            is_transaction_id(t).then(|| t.to_owned())
        }
        _ => None,
    }
}

struct Source {
    object: ObjectVersion,
    line: Option<String>,
    last_modified: Option<String>,
}

impl Source {
    fn error_id(&self, code: &str) -> String {
        error_id(&self.object, self.line.as_deref(), code)
    }

    /// The file's upload time when the message carries it, else when the message was sent.
    fn timestamp(&self, message: &SqsMessage, now: &str) -> String {
        first(
            &[self.last_modified.as_ref(), message.sent_timestamp.as_ref()],
            now,
        )
    }
}

fn source(doc: Option<&JsonValue>) -> Option<Source> {
    let doc = doc?;
    if !matches!(doc, JsonValue::Object(_)) {
        return None;
    }
    Some(Source {
        object: object_named_in(doc)?,
        line: nonneg_int(doc.get("line")),
        last_modified: nonneg_int(doc.get("last_modified")),
    })
}

/// The object a message names by its `bucket`, `key` and optional `version_id` members; None
/// unless bucket and key are strings.
fn object_named_in(doc: &JsonValue) -> Option<ObjectVersion> {
    let (Some(JsonValue::String(bucket)), Some(JsonValue::String(key))) =
        (doc.get("bucket"), doc.get("key"))
    else {
        return None;
    };
    Some(object_version(bucket, key, doc.get("version_id")))
}

fn text_or(value: Option<&JsonValue>, fallback: &str) -> String {
    let text = match value {
        Some(JsonValue::String(s)) if !s.is_empty() => s.as_str(),
        _ => fallback,
    };
    truncate_chars(text, MAX_MESSAGE_CHARS).to_owned()
}

fn first(values: &[Option<&String>], now: &str) -> String {
    values
        .iter()
        .flatten()
        .next()
        .map_or_else(|| now.to_owned(), |v| (*v).clone())
}

fn from_error_message(doc: &JsonValue, message: &SqsMessage, now: &str) -> Option<ErrorRecord> {
    let code = match doc.get("error_code") {
        Some(JsonValue::String(c)) if !c.is_empty() => c,
        _ => return None,
    };
    let source = source(doc.get("source"))?;
    let is_record = matches!(doc.get("kind"), Some(JsonValue::String(k)) if k == "record_error");
    let failed_at = nonneg_int(doc.get("failed_at"));
    Some(ErrorRecord {
        error_id: source.error_id(code),
        timestamp: source.timestamp(message, now),
        detected_at: first(&[failed_at.as_ref()], now),
        error_code: truncate_chars(code, MAX_MESSAGE_CHARS).to_owned(),
        error_type: if is_record { VALIDATION } else { FILE },
        error_message: text_or(doc.get("error_message"), code),
        retryable: false,
        transaction_id: if is_record {
            transaction_id(doc.get("transaction_id"))
        } else {
            None
        },
        field: match doc.get("field") {
            Some(JsonValue::String(f)) => Some(truncate_chars(f, ECHO_MAX_VALUE_CHARS).to_owned()),
            _ => None,
        },
        source: Some(source.object),
        source_line: source.line,
        record: if is_record {
            masked_record(doc.get("record"))
        } else {
            None
        },
    })
}

fn from_retry_record(doc: &JsonValue, message: &SqsMessage, now: &str) -> Option<ErrorRecord> {
    let record = doc
        .get("record")
        .filter(|r| matches!(r, JsonValue::Object(_)))?;
    let source = source(doc.get("source"))?;
    let last = doc
        .get("error")
        .filter(|e| matches!(e, JsonValue::Object(_)));
    let last_code = match last.and_then(|e| e.get("code")) {
        Some(JsonValue::String(c)) => c.as_str(),
        _ => "unknown",
    };
    let last_text = match last.and_then(|e| e.get("message")) {
        Some(JsonValue::String(m)) => m.as_str(),
        _ => "",
    };
    let failed_at = nonneg_int(doc.get("failed_at"));
    let text =
        format!("record could not be stored after retries; last error: {last_code}: {last_text}");
    Some(ErrorRecord {
        error_id: source.error_id(RECORD_WRITE_FAILED),
        timestamp: source.timestamp(message, now),
        detected_at: first(&[failed_at.as_ref()], now),
        error_code: RECORD_WRITE_FAILED.to_owned(),
        error_type: PROCESSING,
        error_message: truncate_chars(&text, MAX_MESSAGE_CHARS).to_owned(),
        retryable: true,
        transaction_id: transaction_id(record.get("transaction_id")),
        field: None,
        source: Some(source.object),
        source_line: source.line,
        record: masked_record(Some(record)),
    })
}

fn from_resume_file(doc: &JsonValue, message: &SqsMessage, now: &str) -> Option<ErrorRecord> {
    let object = object_named_in(doc)?;
    let start_line = nonneg_int(doc.get("start_line"))?;
    Some(ErrorRecord {
        error_id: error_id(&object, Some(&start_line), FILE_RESUME_FAILED),
        timestamp: first(&[message.sent_timestamp.as_ref()], now),
        detected_at: now.to_owned(),
        error_code: FILE_RESUME_FAILED.to_owned(),
        error_type: PROCESSING,
        error_message: format!("file processing could not be resumed from line {start_line}"),
        retryable: true,
        transaction_id: None,
        field: None,
        source: Some(object),
        source_line: Some(start_line),
        record: None,
    })
}

fn from_s3_event(doc: &JsonValue, message: &SqsMessage, now: &str) -> Vec<ErrorRecord> {
    let Some(JsonValue::Array(records)) = doc.get("Records") else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let s3 = record.get("s3");
        let object = s3.and_then(|s| s.get("object"));
        let bucket = s3.and_then(|s| s.get("bucket")).and_then(|b| b.get("name"));
        let raw_key = object.and_then(|o| o.get("key"));
        let (Some(JsonValue::String(bucket)), Some(JsonValue::String(raw_key))) = (bucket, raw_key)
        else {
            return Vec::new();
        };
        let source = object_version(
            bucket,
            &unquote_plus(raw_key),
            object.and_then(|o| o.get("versionId")),
        );
        rows.push(ErrorRecord {
            error_id: error_id(&source, None, FILE_PROCESSING_FAILED),
            timestamp: first(&[message.sent_timestamp.as_ref()], now),
            detected_at: now.to_owned(),
            error_code: FILE_PROCESSING_FAILED.to_owned(),
            error_type: PROCESSING,
            error_message: "file processing failed after all retries".to_owned(),
            retryable: true,
            transaction_id: None,
            field: None,
            source: Some(source),
            source_line: None,
            record: None,
        });
    }
    rows
}

/// A row for a message that is not in our format.
pub(crate) fn unknown_format(message: &SqsMessage, reason: &str, now: &str) -> ErrorRecord {
    ErrorRecord {
        error_id: sha256_hex(&message.body),
        timestamp: first(&[message.sent_timestamp.as_ref()], now),
        detected_at: now.to_owned(),
        error_code: UNKNOWN_FORMAT.to_owned(),
        error_type: UNKNOWN_FORMAT,
        error_message: reason.to_owned(),
        retryable: false,
        transaction_id: None,
        field: None,
        source: None,
        source_line: None,
        record: None,
    }
}

fn is_s3_event(doc: &JsonValue) -> bool {
    let records = match doc.get("Records") {
        Some(JsonValue::Array(r)) if !r.is_empty() => r.as_slice(),
        // `doc.get("Records") or [None]`: a missing, null, false, 0, "" or empty value.
        _ => return false,
    };
    records.iter().all(|r| {
        matches!(r, JsonValue::Object(_))
            && matches!(r.get("eventSource"), Some(JsonValue::String(s)) if s == "aws:s3")
    })
}

/// The error rows for one DLQ message; accepts any body (D1). `now` is decimal epoch ms.
pub fn interpret_message(message: &SqsMessage, now: i64) -> Vec<ErrorRecord> {
    let now = now.to_string();
    let doc = match json::parse(&message.body) {
        Ok(doc) => doc,
        Err(_) => return vec![unknown_format(message, "message body is not JSON", &now)],
    };
    let mut rows = Vec::new();
    if matches!(doc, JsonValue::Object(_)) {
        let kind = doc.get("kind");
        let row = match kind {
            Some(JsonValue::String(k)) if k == "record_error" || k == "file_error" => {
                from_error_message(&doc, message, &now)
            }
            Some(JsonValue::String(k)) if k == "retry_record" => {
                from_retry_record(&doc, message, &now)
            }
            Some(JsonValue::String(k)) if k == "resume_file" => {
                from_resume_file(&doc, message, &now)
            }
            None | Some(JsonValue::Null) if is_s3_event(&doc) => {
                rows = from_s3_event(&doc, message, &now);
                None
            }
            _ => None,
        };
        if let Some(row) = row {
            rows = vec![row];
        }
    }
    if rows.is_empty() {
        rows.push(unknown_format(
            message,
            "message body is not in a known format",
            &now,
        ));
    }
    rows
}

#[cfg(test)]
mod tests;
