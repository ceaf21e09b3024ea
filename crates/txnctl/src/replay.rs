//! Replay planning: which errors rows to re-run, and the message that re-runs them.
//!
//! Records in the errors table are masked (D8), so they cannot be sent again. What a replay
//! sends instead is a message kind the processor already accepts, `resume_file` (P21): the
//! processor reads the object version again from `start_line` on. Rows that failed for a
//! retryable reason are the PROCESSING rows (D2: retryable = true), whose codes (D3) say what
//! failed: RECORD_WRITE_FAILED (a retry_record; source_line is the record's line),
//! FILE_RESUME_FAILED (a resume_file; source_line is its start_line) and
//! FILE_PROCESSING_FAILED (an S3 event; no line, so the whole file: start_line 0).
//! The rows of one object version become one message starting at their smallest line.
//!
//! Reading rows again does not write twice: a row already stored fails the conditional
//! PutItem with the same record_hash and counts as a duplicate (design.md section 4); a row
//! that is invalid again gives the same error_id and timestamp (D4, D5), so the DLQ
//! processor's conditional PutItem stores no second errors row.

use serde::Serialize;

use crate::model::{ErrorRow, RowKey};

/// The resume_file body (contract/schemas/resume_file.json), exactly these five keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResumeFile {
    pub kind: &'static str,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub start_line: i64,
}

/// An errors row a message re-runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayRow {
    pub error_id: String,
    pub error_code: String,
    pub source_line: Option<i64>,
    pub replayed_at: Option<String>,
    #[serde(skip)]
    pub key: RowKey,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayMessage {
    pub body: ResumeFile,
    pub rows: Vec<ReplayRow>,
}

impl ReplayMessage {
    fn new(bucket: String, key: String, version_id: Option<String>, rows: Vec<ReplayRow>) -> Self {
        let start_line = rows
            .iter()
            .map(|r| r.source_line.unwrap_or(0))
            .min()
            .unwrap_or(0);
        ReplayMessage {
            body: ResumeFile {
                kind: "resume_file",
                bucket,
                key,
                version_id,
                start_line,
            },
            rows,
        }
    }

    /// The same message for only the rows this run could mark (None when there are none);
    /// start_line follows the rows that remain.
    pub fn keep_rows(self, rows: Vec<ReplayRow>) -> Option<ReplayMessage> {
        if rows.is_empty() {
            return None;
        }
        let ResumeFile {
            bucket,
            key,
            version_id,
            ..
        } = self.body;
        Some(ReplayMessage::new(bucket, key, version_id, rows))
    }

    pub fn body_json(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(&self.body).unwrap_or_default()
    }
}

/// A retryable row that is not replayed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub error_id: String,
    pub error_code: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplayPlan {
    pub messages: Vec<ReplayMessage>,
    pub skipped: Vec<Skipped>,
}

/// Plans a replay of `rows`: the retryable ones (of `code`, when given) that were not replayed
/// yet (or all of them with `include_replayed`), one message per object version.
pub fn plan(rows: &[ErrorRow], code: Option<&str>, include_replayed: bool) -> ReplayPlan {
    let mut groups: std::collections::BTreeMap<(String, String, Option<String>), Vec<ReplayRow>> =
        Default::default();
    let mut skipped = Vec::new();
    for row in rows {
        if !row.retryable || code.is_some_and(|c| row.error_code != c) {
            continue;
        }
        let skip = |reason: String| Skipped {
            error_id: row.error_id.clone(),
            error_code: row.error_code.clone(),
            reason,
        };
        if let (Some(at), false) = (&row.replayed_at, include_replayed) {
            skipped.push(skip(format!(
                "replayed already at {at} (--include-replayed sends it again)"
            )));
            continue;
        }
        let (Some(bucket), Some(key)) = (&row.source_bucket, &row.source_key) else {
            skipped.push(skip(
                "no source bucket and key: nothing to read again".into(),
            ));
            continue;
        };
        groups
            .entry((bucket.clone(), key.clone(), row.source_version_id.clone()))
            .or_default()
            .push(ReplayRow {
                error_id: row.error_id.clone(),
                error_code: row.error_code.clone(),
                source_line: row.source_line,
                replayed_at: row.replayed_at.clone(),
                key: row.key.clone(),
            });
    }
    let messages = groups
        .into_iter()
        .map(|((bucket, key, version), rows)| ReplayMessage::new(bucket, key, version, rows))
        .collect();
    ReplayPlan { messages, skipped }
}
