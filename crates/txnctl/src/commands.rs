//! The five commands, over the edges of `crate::edges`; each returns a report that
//! `crate::render` prints as tables or as JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::ValueEnum;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::edges::{OldestAge, QueueDepth, Queues, Tables};
use crate::error::CliError;
use crate::model::{ErrorRow, FileStatus};
use crate::outputs::{queue_name, StackOutputs};
use crate::replay::{plan, ReplayMessage, ReplayPlan};

/// The states of a status record (file-status-schema.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Received,
    Processing,
    Done,
    Failed,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Received => "received",
            FileState::Processing => "processing",
            FileState::Done => "done",
            FileState::Failed => "failed",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub file: FileStatus,
    /// Every version of this key that has a status record, newest first activity first.
    pub versions: Vec<String>,
    /// The errors rows of this version, by error_code then line.
    pub errors: Vec<ErrorRow>,
}

/// One file's status: the named version, else the one with the latest first_activity (S3
/// version ids are not ordered, so the table's range key cannot say which is newest).
pub async fn status(
    tables: &impl Tables,
    key: &str,
    version: Option<&str>,
) -> Result<StatusReport, CliError> {
    let mut files: Vec<FileStatus> = tables
        .file_versions(key)
        .await?
        .iter()
        .filter_map(FileStatus::from_item)
        .collect();
    if files.is_empty() {
        return Err(CliError::NotFound(format!(
            "no status record for key {key:?}: the pipeline never took an S3 event for it (check the key, its case and its prefix)"
        )));
    }
    files.sort_by(|a, b| b.first_activity.cmp(&a.first_activity));
    let versions: Vec<String> = files.iter().map(|f| f.source_version_id.clone()).collect();
    let file = match version {
        None => files.swap_remove(0),
        Some(v) => {
            let at = files
                .iter()
                .position(|f| f.source_version_id == v)
                .ok_or_else(|| {
                    CliError::NotFound(format!(
                        "key {key:?} has no status record for version {v:?}; known versions: {}",
                        versions.join(", ")
                    ))
                })?;
            files.swap_remove(at)
        }
    };
    let mut errors: Vec<ErrorRow> = tables
        .errors_of_file(key)
        .await?
        .iter()
        .filter_map(ErrorRow::from_item)
        .filter(|e| same_version(e.source_version_id.as_deref(), &file.source_version_id))
        .collect();
    errors.sort_by(|a, b| {
        (a.error_code.as_str(), a.source_line, a.timestamp).cmp(&(
            b.error_code.as_str(),
            b.source_line,
            b.timestamp,
        ))
    });
    Ok(StatusReport {
        file,
        versions,
        errors,
    })
}

/// An errors row has no source_version_id for an unversioned object (D7); the status table
/// names that version "null", as S3 does.
fn same_version(row: Option<&str>, status: &str) -> bool {
    row.unwrap_or("null") == status
}

// ---------------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------------

/// Longest window `files --since` reads: one Query per day.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Serialize)]
pub struct FilesReport {
    pub since: String,
    pub state: Option<FileState>,
    pub files: Vec<FileStatus>,
}

/// `--since`: a date (YYYY-MM-DD, its start in UTC), an RFC 3339 instant, or a duration back
/// from now ("90m", "24h", "7d", as the humantime crate reads them).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
    let trimmed = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
        if let Some(start) = date.and_hms_opt(0, 0, 0) {
            return Ok(start.and_utc());
        }
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(instant.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(trimmed).map_err(|_| {
        CliError::Usage(format!(
            "--since {text:?}: expected a date (2026-11-30), an RFC 3339 time (2026-11-30T08:00:00Z) or a duration (90m, 24h, 7d)"
        ))
    })?;
    let ago = Duration::from_std(ago)
        .map_err(|_| CliError::Usage(format!("--since {text:?}: duration too long")))?;
    now.checked_sub_signed(ago)
        .ok_or_else(|| CliError::Usage(format!("--since {text:?}: duration too long")))
}

/// The UTC days from `since` to `now`, oldest first.
pub fn days_between(since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<String>, CliError> {
    if since > now {
        return Err(CliError::Usage(format!(
            "--since {} is in the future",
            since.format("%Y-%m-%dT%H:%M:%SZ")
        )));
    }
    let first = since.date_naive();
    let last = now.date_naive();
    let span = (last - first).num_days();
    if span >= MAX_DAYS {
        return Err(CliError::Usage(format!(
            "--since reaches {span} days back; at most {MAX_DAYS} days at once"
        )));
    }
    Ok(first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect())
}

/// The status records whose first activity is at or after `since`, by day (one Query on
/// activity_day-index per UTC day), keeping those in `state`.
pub async fn files(
    tables: &impl Tables,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    state: Option<FileState>,
    progress: &ProgressBar,
) -> Result<FilesReport, CliError> {
    let days = days_between(since, now)?;
    let since_text = since.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    progress.set_length(days.len() as u64);
    let mut found = Vec::new();
    for day in &days {
        progress.set_message(day.clone());
        for item in tables.files_on_day(day, &since_text).await? {
            if let Some(file) = FileStatus::from_item(&item) {
                if state.is_none_or(|s| file.state == s.as_str()) {
                    found.push(file);
                }
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    found.sort_by(|a, b| {
        (&a.first_activity, &a.source_key).cmp(&(&b.first_activity, &b.source_key))
    });
    Ok(FilesReport {
        since: since_text,
        state,
        files: found,
    })
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct ErrorsReport {
    pub file: Option<String>,
    pub transaction: Option<String>,
    pub code: Option<String>,
    pub errors: Vec<ErrorRow>,
}

/// Errors rows of a file (source_key-index) or a transaction (transaction_id-index; with both,
/// the transaction's rows of that file), optionally of one error_code. Newest first.
pub async fn errors(
    tables: &impl Tables,
    file: Option<&str>,
    transaction: Option<&str>,
    code: Option<&str>,
) -> Result<ErrorsReport, CliError> {
    let items = match (transaction, file) {
        (Some(id), _) => tables.errors_of_transaction(id).await?,
        (None, Some(key)) => tables.errors_of_file(key).await?,
        (None, None) => {
            return Err(CliError::Usage(
                "errors needs --file KEY or --transaction ID".into(),
            ))
        }
    };
    let mut rows: Vec<ErrorRow> = items
        .iter()
        .filter_map(ErrorRow::from_item)
        .filter(|r| file.is_none_or(|k| r.source_key.as_deref() == Some(k)))
        .filter(|r| code.is_none_or(|c| r.error_code == c))
        .collect();
    rows.sort_by(|a, b| {
        b.timestamp
            .cmp(&a.timestamp)
            .then(a.error_id.cmp(&b.error_id))
    });
    Ok(ErrorsReport {
        file: file.map(str::to_owned),
        transaction: transaction.map(str::to_owned),
        code: code.map(str::to_owned),
        errors: rows,
    })
}

// ---------------------------------------------------------------------------------------------
// queues
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct QueueReport {
    pub queue: &'static str,
    pub name: String,
    pub url: String,
    #[serde(flatten)]
    pub depth: QueueDepth,
    /// Seconds; null when CloudWatch has no datapoint (see age_note).
    pub oldest_age_seconds: Option<f64>,
    pub age_note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct QueuesReport {
    pub queues: Vec<QueueReport>,
}

pub async fn queues(q: &impl Queues, outputs: &StackOutputs) -> Result<QueuesReport, CliError> {
    let mut reports = Vec::new();
    for (role, url) in [("main", &outputs.main_queue_url), ("dlq", &outputs.dlq_url)] {
        let name = queue_name(url).to_owned();
        let depth = q.depth(url).await?;
        let (age, note) = match q.oldest_age(&name).await {
            OldestAge::Seconds(s) => (Some(s), None),
            OldestAge::Unknown(why) => (None, Some(why)),
        };
        reports.push(QueueReport {
            queue: role,
            name,
            url: url.clone(),
            depth,
            oldest_age_seconds: age,
            age_note: note,
        });
    }
    Ok(QueuesReport { queues: reports })
}

// ---------------------------------------------------------------------------------------------
// replay
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct ReplayOutcome {
    #[serde(flatten)]
    pub message: ReplayMessage,
    /// "would send" (dry run), "sent", "nothing to send" (every row was marked by someone
    /// else meanwhile) or "failed: ..." (the send failed; this run's marks were removed).
    pub result: String,
}

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub dry_run: bool,
    pub rows_read: usize,
    pub messages: Vec<ReplayOutcome>,
    pub skipped: Vec<crate::replay::Skipped>,
    pub sent: usize,
    /// Messages whose send failed (exit code 6).
    pub failed: usize,
}

/// Re-enqueues what failed for a retryable reason (see `crate::replay` for why and how).
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    tables: &impl Tables,
    q: &impl Queues,
    outputs: &StackOutputs,
    file: Option<&str>,
    code: Option<&str>,
    include_replayed: bool,
    dry_run: bool,
    now: DateTime<Utc>,
    progress: &ProgressBar,
) -> Result<ReplayReport, CliError> {
    let mut items = Vec::new();
    match file {
        Some(key) => items = tables.errors_of_file(key).await?,
        None => {
            // Without --file the retryable rows are found by a Scan (filtered on retryable):
            // replay runs rarely, by hand, after an incident.
            let mut start = None;
            loop {
                let (page, next) = tables.retryable_errors_page(start).await?;
                items.extend(page);
                progress.set_message(format!("{} retryable errors rows read", items.len()));
                progress.tick();
                match next {
                    Some(n) => start = Some(n),
                    None => break,
                }
            }
        }
    }
    progress.finish_and_clear();
    let rows: Vec<ErrorRow> = items.iter().filter_map(ErrorRow::from_item).collect();
    let ReplayPlan { messages, skipped } = plan(&rows, code, include_replayed);
    let mut report = ReplayReport {
        dry_run,
        rows_read: rows.len(),
        messages: Vec::new(),
        skipped,
        sent: 0,
        failed: 0,
    };
    let at = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let mut failures = 0;
    for message in messages {
        if dry_run {
            report.messages.push(ReplayOutcome {
                message,
                result: "would send".into(),
            });
            continue;
        }
        // Mark first, then send: a row marked by this run is sent by this run or unmarked.
        let mut marked = Vec::new();
        for row in &message.rows {
            match tables.mark_replayed(row, &at).await {
                Ok(true) => marked.push(row.clone()),
                Ok(false) => {}
                Err(err) => {
                    // Leave no row marked without its message (best effort: this may fail too).
                    for done in &marked {
                        let _ = tables.unmark_replayed(&done.key, &at).await;
                    }
                    return Err(err);
                }
            }
        }
        let Some(message) = message.keep_rows(marked) else {
            continue;
        };
        let body = message.body_json();
        match q.send(&outputs.main_queue_url, &body).await {
            Ok(()) => {
                report.sent += 1;
                report.messages.push(ReplayOutcome {
                    message,
                    result: "sent".into(),
                });
            }
            Err(err) => {
                failures += 1;
                for row in &message.rows {
                    tables.unmark_replayed(&row.key, &at).await?;
                }
                report.messages.push(ReplayOutcome {
                    message,
                    result: format!("failed: {err}"),
                });
            }
        }
    }
    report.failed = failures;
    Ok(report)
}

/// Rows per error code, for the status table's summary.
pub fn by_code(rows: &[ErrorRow]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.error_code.as_str()).or_insert(0) += 1;
    }
    counts
}
