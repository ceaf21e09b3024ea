//! Human output: the reports of `crate::commands` as plain tables (comfy-table).

use comfy_table::presets::ASCII_MARKDOWN;
use comfy_table::Table;

use crate::commands::{
    by_code, ErrorsReport, FilesReport, QueuesReport, ReplayReport, StatusReport,
};
use crate::model::{iso_ms, ErrorRow};

/// Longest error message shown in a table cell (`--json` has them whole).
const MESSAGE_WIDTH: usize = 72;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(ASCII_MARKDOWN).set_header(header.to_vec());
    t
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width.saturating_sub(3)).collect();
    short.push_str("...");
    short
}

pub fn status(r: &StatusReport) -> String {
    let f = &r.file;
    let mut summary = table(&["field", "value"]);
    let errors_by_code = f
        .record_errors
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    for (name, value) in [
        (
            "file",
            format!("s3://{}/{}", opt(&f.source_bucket), f.source_key),
        ),
        ("version", f.source_version_id.clone()),
        ("state", f.state.clone()),
        ("rows seen", f.rows_seen.to_string()),
        ("stored", f.stored.to_string()),
        ("duplicates", f.duplicates.to_string()),
        (
            "record errors",
            format!("{} {}", f.error_count(), errors_by_code),
        ),
        ("retries pending", f.retries_pending.to_string()),
        (
            "file error",
            f.file_error
                .as_ref()
                .map(|e| format!("{}: {}", e.error_code, e.error_message))
                .unwrap_or_else(|| "-".into()),
        ),
        ("first activity", opt(&f.first_activity)),
        ("last activity", opt(&f.last_activity)),
        ("processor", opt(&f.processor)),
        ("versions", r.versions.join(", ")),
    ] {
        summary.add_row(vec![name.to_owned(), value]);
    }
    let counts = by_code(&r.errors)
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        "{summary}\n\nerrors rows of this version: {}",
        r.errors.len()
    );
    if !r.errors.is_empty() {
        out.push_str(&format!(" ({counts})\n{}", error_table(&r.errors, false)));
    }
    out
}

fn error_table(rows: &[ErrorRow], with_file: bool) -> Table {
    let mut header = vec![
        "code",
        "line",
        "transaction",
        "field",
        "message",
        "retryable",
        "replayed",
    ];
    if with_file {
        header.splice(0..0, ["time", "file", "version"]);
    }
    let mut t = table(&header);
    for e in rows {
        let mut row = vec![
            e.error_code.clone(),
            opt(&e.source_line),
            opt(&e.transaction_id),
            opt(&e.field),
            cut(&e.error_message, MESSAGE_WIDTH),
            e.retryable.to_string(),
            opt(&e.replayed_at),
        ];
        if with_file {
            row.splice(
                0..0,
                [
                    iso_ms(e.timestamp),
                    opt(&e.source_key),
                    opt(&e.source_version_id),
                ],
            );
        }
        t.add_row(row);
    }
    t
}

pub fn files(r: &FilesReport) -> String {
    let mut t = table(&[
        "first activity",
        "key",
        "version",
        "state",
        "rows",
        "stored",
        "dup",
        "errors",
        "retries",
        "file error",
    ]);
    for f in &r.files {
        t.add_row(vec![
            opt(&f.first_activity),
            f.source_key.clone(),
            f.source_version_id.clone(),
            f.state.clone(),
            f.rows_seen.to_string(),
            f.stored.to_string(),
            f.duplicates.to_string(),
            f.error_count().to_string(),
            f.retries_pending.to_string(),
            f.file_error
                .as_ref()
                .map(|e| e.error_code.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let state = r
        .state
        .map(|s| format!(" in state {}", s.as_str()))
        .unwrap_or_default();
    format!("files since {}{state}: {}\n{t}", r.since, r.files.len())
}

pub fn errors(r: &ErrorsReport) -> String {
    format!(
        "errors rows (records masked): {}\n{}",
        r.errors.len(),
        error_table(&r.errors, true)
    )
}

pub fn queues(r: &QueuesReport) -> String {
    let mut t = table(&[
        "queue",
        "name",
        "visible",
        "in flight",
        "delayed",
        "oldest message age",
    ]);
    for q in &r.queues {
        t.add_row(vec![
            q.queue.to_owned(),
            q.name.clone(),
            q.depth.visible.to_string(),
            q.depth.in_flight.to_string(),
            q.depth.delayed.to_string(),
            match (q.oldest_age_seconds, &q.age_note) {
                (Some(s), _) => format!("{s:.0} s"),
                (None, Some(note)) => format!("n/a ({note})"),
                (None, None) => "n/a".into(),
            },
        ]);
    }
    t.to_string()
}

pub fn replay(r: &ReplayReport) -> String {
    let mut t = table(&[
        "result",
        "bucket",
        "key",
        "version",
        "start line",
        "errors rows",
    ]);
    for m in &r.messages {
        let b = &m.message.body;
        let rows = m
            .message
            .rows
            .iter()
            .map(|row| format!("{}@{}", row.error_code, opt(&row.source_line)))
            .collect::<Vec<_>>()
            .join(" ");
        t.add_row(vec![
            m.result.clone(),
            b.bucket.clone(),
            b.key.clone(),
            opt(&b.version_id),
            b.start_line.to_string(),
            rows,
        ]);
    }
    let head = if r.dry_run {
        format!(
            "dry run: {} resume_file messages would be sent",
            r.messages.len()
        )
    } else {
        format!("{} resume_file messages sent, {} failed", r.sent, r.failed)
    };
    let mut out = format!("{head} ({} errors rows read)", r.rows_read);
    if !r.messages.is_empty() {
        out.push_str(&format!("\n{t}"));
    }
    if !r.skipped.is_empty() {
        let mut s = table(&["skipped errors row", "code", "reason"]);
        for k in &r.skipped {
            s.add_row(vec![
                cut(&k.error_id, 16),
                k.error_code.clone(),
                k.reason.clone(),
            ]);
        }
        out.push_str(&format!("\n{s}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_in_tables() {
        assert_eq!(cut("abcdef", 5), "ab...");
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("äöüäöü", 5), "äö...");
    }
}
