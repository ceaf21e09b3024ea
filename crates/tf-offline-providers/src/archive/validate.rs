//! Validation of an `archive_file` block, with the real data source's messages.

use std::collections::{BTreeMap, BTreeSet};

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::entries::build_excludes;
use super::{ArchiveFileState, ONE_OF_SOURCES};
use crate::schema_util::is_specified;

/// A validation problem: attribute (None for the whole block), summary, detail.
pub(super) type Problem = (Option<&'static str>, String, String);

pub(super) fn report(diags: &mut Diagnostics, problems: Vec<Problem>) {
    for (attribute, summary, detail) in problems {
        match attribute {
            Some(name) => diags.error(summary, detail, AttributePath::new(name)),
            None => diags.root_error(summary, detail),
        }
    }
}

pub(super) fn source_specified(config: &ArchiveFileState<'_>) -> bool {
    match &config.source {
        Value::Value(blocks) => !blocks.is_empty(),
        Value::Unknown => true,
        Value::Null => false,
    }
}

/// The real provider's validators: `AtLeastOneOf` over the source kinds plus
/// pairwise `ConflictsWith`, the supported archive type, the file mode, and
/// (stricter than the real provider) the glob patterns and the uniqueness of
/// `source` file names.
pub(super) fn validate_config(config: &ArchiveFileState<'_>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    let specified: BTreeMap<&'static str, bool> = [
        ("source", source_specified(config)),
        ("source_content", is_specified(&config.source_content)),
        (
            "source_content_filename",
            is_specified(&config.source_content_filename),
        ),
        ("source_file", is_specified(&config.source_file)),
        ("source_dir", is_specified(&config.source_dir)),
        (
            "excludes",
            matches!(&config.excludes, Value::Value(v) if !v.is_empty())
                || config.excludes.is_unknown(),
        ),
    ]
    .into_iter()
    .collect();
    let is_set = |name: &str| specified.get(name).copied().unwrap_or(false);

    if ![
        "source",
        "source_content_filename",
        "source_file",
        "source_dir",
    ]
    .iter()
    .any(|name| is_set(name))
    {
        problems.push((
            None,
            "Invalid Attribute Combination".into(),
            format!(
                "At least one attribute out of [source, source_content_filename, source_file, \
                 source_dir] must be specified. {ONE_OF_SOURCES}"
            ),
        ));
    }

    const CONFLICTS: &[(&str, &[&str])] = &[
        (
            "source",
            &[
                "source_file",
                "source_dir",
                "source_content",
                "source_content_filename",
            ],
        ),
        ("source_content", &["source_file", "source_dir"]),
        ("source_content_filename", &["source_file", "source_dir"]),
        ("source_file", &["source_dir"]),
        (
            "excludes",
            &["source_file", "source_content", "source_content_filename"],
        ),
    ];
    for (name, others) in CONFLICTS {
        if !is_set(name) {
            continue;
        }
        for other in others.iter().filter(|other| is_set(other)) {
            problems.push((
                Some(name),
                "Invalid Attribute Combination".into(),
                format!(
                    "Attribute \"{other}\" cannot be specified when \"{name}\" is specified. \
                     {ONE_OF_SOURCES}"
                ),
            ));
        }
    }

    if let Value::Value(kind) = &config.archive_type {
        if let Err(message) = check_archive_type(kind) {
            problems.push((Some("type"), "Unsupported archive type".into(), message));
        }
    }

    if let Value::Value(mode) = &config.output_file_mode {
        if !mode.is_empty() {
            if let Err(message) = parse_file_mode(mode) {
                problems.push((
                    Some("output_file_mode"),
                    "Invalid file mode".into(),
                    message,
                ));
            }
        }
    }

    if let Value::Value(excludes) = &config.excludes {
        let patterns: Vec<&str> = excludes
            .iter()
            .filter_map(|p| p.as_ref_option())
            .map(|p| p.as_ref())
            .collect();
        if let Err(message) = build_excludes(&patterns) {
            problems.push((Some("excludes"), "Invalid exclude pattern".into(), message));
        }
    }

    if let Value::Value(blocks) = &config.source {
        let mut seen = BTreeSet::new();
        for name in blocks.iter().filter_map(|b| b.filename.as_ref_option()) {
            if !seen.insert(name.as_ref()) {
                problems.push((
                    Some("source"),
                    "Duplicate file name".into(),
                    format!(
                        "Two `source` blocks have the filename {name:?}; an archive entry can only \
                         have one content."
                    ),
                ));
            }
        }
    }

    problems
}

pub(super) fn check_archive_type(kind: &str) -> Result<(), String> {
    match kind {
        "zip" => Ok(()),
        "tar.gz" => Err(
            "archive type \"tar.gz\" is supported by the real hashicorp/archive provider but not \
             by this offline stand-in, which only builds \"zip\" archives"
                .into(),
        ),
        other => Err(format!(
            "archive type not supported: {other:?} (this offline stand-in supports only \"zip\")"
        )),
    }
}

/// Parses `output_file_mode` like Go's `strconv.ParseUint(s, 0, 32)` (which the
/// real provider uses): `0x`/`0o`/`0b` prefixes, a leading `0` means octal,
/// otherwise decimal. Returns the permission bits.
pub fn parse_file_mode(text: &str) -> Result<u32, String> {
    let invalid = || format!("error parsing output_file_mode value: {text}");
    let lower = text.to_ascii_lowercase();
    let (digits, radix) = if let Some(rest) = lower.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (rest, 8)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (rest, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid());
    }
    let value = u32::from_str_radix(digits, radix).map_err(|_| invalid())?;
    Ok(value & 0o777)
}
