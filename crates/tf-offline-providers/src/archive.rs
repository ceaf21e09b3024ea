//! Stand-in for `hashicorp/archive` 2.7.1: the `archive_file` data source.
//!
//! Same schema and validation as the real data source. Only `type = "zip"` is
//! implemented. Zips are deterministic: entries sorted by name, every entry
//! dated 1980-01-01 00:00, deflate, Unix permissions, no extra fields, so the
//! same inputs always give the same bytes and the same hashes.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use base64::Engine as _;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use tf_provider::schema::{AttributeConstraint, AttributeType, NestedBlock, Schema};
use tf_provider::value::{Value, ValueBool, ValueEmpty, ValueNumber, ValueSet, ValueString};
use tf_provider::{map, AttributePath, DataSource, Diagnostics, DynamicDataSource, Provider};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::schema_util::{attr, block, is_specified, schema};

/// Permissions of entries whose content does not come from a file.
const DEFAULT_CONTENT_MODE: u32 = 0o644;

const ONE_OF_SOURCES: &str = "One and only one of `source`, `source_content_filename` (with \
                              `source_content`), `source_file`, or `source_dir` must be specified.";

/// The `hashicorp/archive` provider: no configuration, one data source.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArchiveProvider;

#[async_trait]
impl Provider for ArchiveProvider {
    type Config<'a> = ValueEmpty;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema(
            "Offline stand-in for the hashicorp/archive provider.",
            HashMap::new(),
            HashMap::new(),
        ))
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some(map! { "file" => ArchiveFile })
    }
}

/// One `source { content, filename }` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceBlock<'a> {
    pub content: ValueString<'a>,
    pub filename: ValueString<'a>,
}

/// Configuration and state of `data "archive_file"`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchiveFileState<'a> {
    pub id: ValueString<'a>,
    #[serde(rename = "type")]
    pub archive_type: ValueString<'a>,
    pub source: ValueSet<SourceBlock<'a>>,
    pub source_content: ValueString<'a>,
    pub source_content_filename: ValueString<'a>,
    pub source_file: ValueString<'a>,
    pub source_dir: ValueString<'a>,
    pub excludes: ValueSet<ValueString<'a>>,
    pub exclude_symlink_directories: ValueBool,
    pub output_path: ValueString<'a>,
    pub output_size: ValueNumber,
    pub output_file_mode: ValueString<'a>,
    pub output_md5: ValueString<'a>,
    pub output_sha: ValueString<'a>,
    pub output_sha256: ValueString<'a>,
    pub output_base64sha256: ValueString<'a>,
    pub output_sha512: ValueString<'a>,
    pub output_base64sha512: ValueString<'a>,
}

/// The `archive_file` data source.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArchiveFile;

#[async_trait]
impl DataSource for ArchiveFile {
    type State<'a> = ArchiveFileState<'a>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(archive_file_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        let problems = validate_config(&config);
        let ok = problems.is_empty();
        report(diags, problems);
        ok.then_some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        read_archive_file(diags, config)
    }
}

fn archive_file_schema() -> Schema {
    use AttributeConstraint::{Computed, Optional, Required};
    let string = || AttributeType::String;
    schema(
        "Generates an archive from content, a file, or directory of files. The archive is built \
         during the terraform plan, so you must persist the archive through to the terraform \
         apply. (Offline stand-in: only `zip` is supported.)",
        map! {
            "id" => attr(string(), Computed, "The sha1 checksum hash of the output."),
            "type" => attr(string(), Required,
                "The type of archive to generate. NOTE: only `zip` is supported by this offline stand-in."),
            "source_content" => attr(string(), Optional, &format!(
                "Add only this content to the archive with `source_content_filename` as the filename. {ONE_OF_SOURCES}")),
            "source_content_filename" => attr(string(), Optional, &format!(
                "Set this as the filename when using `source_content`. {ONE_OF_SOURCES}")),
            "source_file" => attr(string(), Optional, &format!(
                "Package this file into the archive. {ONE_OF_SOURCES}")),
            "source_dir" => attr(string(), Optional, &format!(
                "Package entire contents of this directory into the archive. {ONE_OF_SOURCES}")),
            "excludes" => attr(AttributeType::Set(Box::new(string())), Optional,
                "Specify files/directories to ignore when reading the `source_dir`. Supports glob file \
                 matching patterns including doublestar/globstar (`**`) patterns."),
            "exclude_symlink_directories" => attr(AttributeType::Bool, Optional,
                "Boolean flag indicating whether symbolically linked directories should be excluded \
                 during the creation of the archive. Defaults to `false`."),
            "output_path" => attr(string(), Required, "The output of the archive file."),
            "output_size" => attr(AttributeType::Number, Computed, "The byte size of the output archive file."),
            "output_file_mode" => attr(string(), Optional,
                "String that specifies the octal file mode for all archived files. For example: `\"0666\"`. \
                 Setting this will ensure that cross platform usage of this module will not vary the modes \
                 of archived files (and ultimately checksums) resulting in more deterministic behavior."),
            "output_md5" => attr(string(), Computed, "MD5 of output file"),
            "output_sha" => attr(string(), Computed, "SHA1 checksum of output file"),
            "output_sha256" => attr(string(), Computed, "SHA256 checksum of output file"),
            "output_base64sha256" => attr(string(), Computed, "Base64 Encoded SHA256 checksum of output file"),
            "output_sha512" => attr(string(), Computed, "SHA512 checksum of output file"),
            "output_base64sha512" => attr(string(), Computed, "Base64 Encoded SHA512 checksum of output file"),
        },
        map! {
            "source" => NestedBlock::Set(block(
                &format!("Specifies attributes of a single source file to include into the archive. {ONE_OF_SOURCES}"),
                map! {
                    "content" => attr(string(), Required,
                        "Add this content to the archive with `filename` as the filename."),
                    "filename" => attr(string(), Required,
                        "Set this as the filename when declaring a `source`."),
                },
            )),
        },
    )
}

/// A validation problem: attribute (None for the whole block), summary, detail.
type Problem = (Option<&'static str>, String, String);

fn report(diags: &mut Diagnostics, problems: Vec<Problem>) {
    for (attribute, summary, detail) in problems {
        match attribute {
            Some(name) => diags.error(summary, detail, AttributePath::new(name)),
            None => diags.root_error(summary, detail),
        }
    }
}

fn source_specified(config: &ArchiveFileState<'_>) -> bool {
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
fn validate_config(config: &ArchiveFileState<'_>) -> Vec<Problem> {
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

fn check_archive_type(kind: &str) -> Result<(), String> {
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

fn build_excludes(patterns: &[&str]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns.iter().filter(|p| !p.is_empty()) {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|err| format!("invalid exclude pattern {pattern:?}: {err}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|err| format!("invalid exclude patterns: {err}"))
}

/// What goes into the archive.
#[derive(Debug, Clone)]
pub enum Sources {
    Dir {
        path: PathBuf,
        excludes: Vec<String>,
        exclude_symlink_directories: bool,
    },
    File(PathBuf),
    Content {
        filename: String,
        content: Vec<u8>,
    },
    Multiple(Vec<(String, Vec<u8>)>),
}

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryData {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    data: EntryData,
    mode: u32,
}

/// Identity (device, inode) of a file, to leave the output zip itself out
/// when it lies inside `source_dir`.
type FileId = (u64, u64);

fn file_id(meta: &fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

fn utf8_name(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("file name is not valid UTF-8: {}", path.display()))
}

struct DirWalk<'a> {
    excludes: &'a GlobSet,
    exclude_symlink_directories: bool,
    skip: Option<FileId>,
    /// Canonical directories currently being walked (symlink loop detection).
    stack: Vec<PathBuf>,
    entries: Vec<Entry>,
}

impl DirWalk<'_> {
    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<(), String> {
        let read = fs::read_dir(dir)
            .map_err(|err| format!("error reading directory {}: {err}", dir.display()))?;
        let mut children = Vec::new();
        for child in read {
            let child = child.map_err(|err| {
                format!(
                    "error encountered during file walk in {}: {err}",
                    dir.display()
                )
            })?;
            children.push(child);
        }
        children.sort_by_key(|child| child.file_name());

        for child in children {
            let path = child.path();
            let name = utf8_name(Path::new(&child.file_name()))?;
            let archive_path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let excluded = self.excludes.is_match(&archive_path);
            let file_type = child
                .file_type()
                .map_err(|err| format!("error reading {}: {err}", path.display()))?;

            if file_type.is_dir() {
                if !excluded {
                    self.enter(&path, &archive_path)?;
                }
                continue;
            }
            if excluded {
                continue;
            }
            // Follows symlinks.
            let meta = fs::metadata(&path).map_err(|err| {
                format!(
                    "error reading {} (a broken symlink?): {err}",
                    path.display()
                )
            })?;
            if meta.is_dir() {
                // Only a symlink can get here as a directory.
                if !self.exclude_symlink_directories {
                    self.enter(&path, &archive_path)?;
                }
                continue;
            }
            if !meta.is_file() {
                return Err(format!(
                    "cannot archive {}: not a regular file, directory or symlink",
                    path.display()
                ));
            }
            if self.skip == Some(file_id(&meta)) {
                continue;
            }
            self.entries.push(Entry {
                name: archive_path,
                data: EntryData::File(path),
                mode: meta.permissions().mode() & 0o777,
            });
        }
        Ok(())
    }

    fn enter(&mut self, dir: &Path, archive_path: &str) -> Result<(), String> {
        let canonical = fs::canonicalize(dir)
            .map_err(|err| format!("error resolving {}: {err}", dir.display()))?;
        if self.stack.contains(&canonical) {
            return Err(format!(
                "symlink loop: {} leads back to {}",
                dir.display(),
                canonical.display()
            ));
        }
        self.stack.push(canonical);
        let result = self.walk(dir, archive_path);
        self.stack.pop();
        result
    }
}

/// Lists the archive's entries (not yet sorted). `output_path` is left out of
/// a directory walk, so that an archive written inside its own source
/// directory does not contain its previous version.
fn collect_entries(sources: &Sources, output_path: Option<&Path>) -> Result<Vec<Entry>, String> {
    match sources {
        Sources::Dir {
            path,
            excludes,
            exclude_symlink_directories,
        } => {
            let meta = fs::metadata(path).map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    format!("could not archive missing directory: {}", path.display())
                } else {
                    format!("could not archive directory {}: {err}", path.display())
                }
            })?;
            if !meta.is_dir() {
                return Err(format!(
                    "could not archive directory that is a file: {}",
                    path.display()
                ));
            }
            let patterns: Vec<&str> = excludes.iter().map(String::as_str).collect();
            let excludes = build_excludes(&patterns)?;
            let skip = output_path
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| file_id(&m));
            let mut walk = DirWalk {
                excludes: &excludes,
                exclude_symlink_directories: *exclude_symlink_directories,
                skip,
                stack: Vec::new(),
                entries: Vec::new(),
            };
            walk.enter(path, "")?;
            if walk.entries.is_empty() {
                return Err("archive has not been created as it would be empty".into());
            }
            Ok(walk.entries)
        }
        Sources::File(path) => {
            let meta = fs::metadata(path).map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    format!("could not archive missing file: {}", path.display())
                } else {
                    format!("could not archive file {}: {err}", path.display())
                }
            })?;
            if !meta.is_file() {
                return Err(format!(
                    "could not archive {}: not a regular file",
                    path.display()
                ));
            }
            let name = path
                .file_name()
                .ok_or_else(|| format!("could not archive {}: no file name", path.display()))?;
            Ok(vec![Entry {
                name: utf8_name(Path::new(name))?,
                data: EntryData::File(path.clone()),
                mode: meta.permissions().mode() & 0o777,
            }])
        }
        Sources::Content { filename, content } => Ok(vec![Entry {
            name: filename.clone(),
            data: EntryData::Bytes(content.clone()),
            mode: DEFAULT_CONTENT_MODE,
        }]),
        Sources::Multiple(files) => Ok(files
            .iter()
            .map(|(filename, content)| Entry {
                name: filename.clone(),
                data: EntryData::Bytes(content.clone()),
                mode: DEFAULT_CONTENT_MODE,
            })
            .collect()),
    }
}

/// Writes the entries into a deterministic zip: sorted by name, fixed
/// timestamp (1980-01-01 00:00), deflate, Unix permissions (`mode_override`
/// replaces every entry's permissions).
fn write_zip(mut entries: Vec<Entry>, mode_override: Option<u32>) -> Result<Vec<u8>, String> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(format!("duplicate archive entry {:?}", pair[0].name));
    }
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for entry in entries {
        let name = entry.name.replace('\\', "/");
        if name.is_empty() {
            return Err("an archive entry has an empty file name".into());
        }
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::default())
            .system(System::Unix)
            .unix_permissions(mode_override.unwrap_or(entry.mode));
        writer
            .start_file(name.as_str(), options)
            .map_err(|err| format!("error creating file inside archive: {err}"))?;
        let data: Cow<'_, [u8]> = match &entry.data {
            EntryData::Bytes(bytes) => Cow::Borrowed(bytes),
            EntryData::File(path) => Cow::Owned(fs::read(path).map_err(|err| {
                format!("error reading file for archival {}: {err}", path.display())
            })?),
        };
        writer
            .write_all(&data)
            .map_err(|err| format!("error writing {name:?} into the archive: {err}"))?;
    }
    let cursor = writer
        .finish()
        .map_err(|err| format!("error finishing the archive: {err}"))?;
    Ok(cursor.into_inner())
}

/// Builds the zip for `sources` in memory.
pub fn build_zip(
    sources: &Sources,
    mode_override: Option<u32>,
    output_path: Option<&Path>,
) -> Result<Vec<u8>, String> {
    write_zip(collect_entries(sources, output_path)?, mode_override)
}

/// The checksums the data source reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksums {
    pub md5_hex: String,
    pub sha1_hex: String,
    pub sha256_hex: String,
    pub sha256_base64: String,
    pub sha512_hex: String,
    pub sha512_base64: String,
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            // Writing into a String cannot fail.
            let _ = write!(out, "{byte:02x}");
            out
        })
}

pub fn checksums(data: &[u8]) -> Checksums {
    let sha256 = Sha256::digest(data);
    let sha512 = Sha512::digest(data);
    Checksums {
        md5_hex: to_hex(&Md5::digest(data)),
        sha1_hex: to_hex(&Sha1::digest(data)),
        sha256_hex: to_hex(&sha256),
        sha256_base64: BASE64_STANDARD.encode(sha256),
        sha512_hex: to_hex(&sha512),
        sha512_base64: BASE64_STANDARD.encode(sha512),
    }
}

/// Writes `data` to `path` unless the file already holds exactly these bytes
/// (keeps its mtime stable across plans). Creates missing parent directories.
fn write_output(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|err| format!("error creating output path {}: {err}", parent.display()))?;
    }
    if fs::read(path).is_ok_and(|existing| existing == data) {
        return Ok(());
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("output_path {} has no file name", path.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    fs::write(&tmp, data)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|err| {
            let _ = fs::remove_file(&tmp);
            format!("error writing archive {}: {err}", path.display())
        })
}

fn known_string<'s>(value: &'s ValueString<'_>, name: &str) -> Result<&'s str, String> {
    match value {
        Value::Value(text) => Ok(text.as_ref()),
        Value::Null => Err(format!("{name} is not set")),
        Value::Unknown => Err(format!("{name} is not known yet")),
    }
}

fn sources_from_config(config: &ArchiveFileState<'_>) -> Result<Sources, String> {
    if is_specified(&config.source_dir) {
        let excludes = match &config.excludes {
            Value::Value(set) => set
                .iter()
                .map(|p| known_string(p, "an excludes element").map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?,
            Value::Null => Vec::new(),
            Value::Unknown => return Err("excludes is not known yet".into()),
        };
        let exclude_symlink_directories = match config.exclude_symlink_directories {
            Value::Value(flag) => flag,
            Value::Null => false,
            Value::Unknown => return Err("exclude_symlink_directories is not known yet".into()),
        };
        Ok(Sources::Dir {
            path: PathBuf::from(known_string(&config.source_dir, "source_dir")?),
            excludes,
            exclude_symlink_directories,
        })
    } else if is_specified(&config.source_file) {
        Ok(Sources::File(PathBuf::from(known_string(
            &config.source_file,
            "source_file",
        )?)))
    } else if is_specified(&config.source_content_filename) {
        let content = match &config.source_content {
            Value::Value(text) => text.as_bytes().to_vec(),
            Value::Null => Vec::new(),
            Value::Unknown => return Err("source_content is not known yet".into()),
        };
        Ok(Sources::Content {
            filename: known_string(&config.source_content_filename, "source_content_filename")?
                .to_owned(),
            content,
        })
    } else {
        let blocks = match &config.source {
            Value::Value(blocks) => blocks,
            _ => return Err(format!("no source given. {ONE_OF_SOURCES}")),
        };
        let files = blocks
            .iter()
            .map(|b| {
                Ok((
                    known_string(&b.filename, "source.filename")?.to_owned(),
                    known_string(&b.content, "source.content")?
                        .as_bytes()
                        .to_vec(),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Sources::Multiple(files))
    }
}

/// The data source's read: builds the zip, writes it to `output_path`, and
/// returns the configuration with the computed attributes filled in.
fn read_archive_file<'a>(
    diags: &mut Diagnostics,
    config: ArchiveFileState<'a>,
) -> Option<ArchiveFileState<'a>> {
    let problems = validate_config(&config);
    if !problems.is_empty() {
        report(diags, problems);
        return None;
    }
    let output_path = match known_string(&config.output_path, "output_path") {
        Ok(path) => PathBuf::from(path),
        Err(message) => {
            diags.error(
                "Output path error",
                message,
                AttributePath::new("output_path"),
            );
            return None;
        }
    };
    let mode_override = match &config.output_file_mode {
        Value::Value(mode) if !mode.is_empty() => match parse_file_mode(mode) {
            Ok(mode) => Some(mode),
            Err(message) => {
                diags.error(
                    "Invalid file mode",
                    message,
                    AttributePath::new("output_file_mode"),
                );
                return None;
            }
        },
        _ => None,
    };

    let built = sources_from_config(&config)
        .and_then(|sources| build_zip(&sources, mode_override, Some(&output_path)));
    let data = match built {
        Ok(data) => data,
        Err(message) => {
            diags.root_error(
                "Archive creation error",
                format!("error creating archive: {message}"),
            );
            return None;
        }
    };
    if let Err(message) = write_output(&output_path, &data) {
        diags.error(
            "Output path error",
            message,
            AttributePath::new("output_path"),
        );
        return None;
    }
    let Ok(size) = i64::try_from(data.len()) else {
        diags.root_error_short("Archive output error: archive too large");
        return None;
    };

    let sums = checksums(&data);
    let mut state = config;
    state.output_size = Value::Value(size);
    state.id = Value::Value(sums.sha1_hex.clone().into());
    state.output_sha = Value::Value(sums.sha1_hex.into());
    state.output_md5 = Value::Value(sums.md5_hex.into());
    state.output_sha256 = Value::Value(sums.sha256_hex.into());
    state.output_base64sha256 = Value::Value(sums.sha256_base64.into());
    state.output_sha512 = Value::Value(sums.sha512_hex.into());
    state.output_base64sha512 = Value::Value(sums.sha512_base64.into());
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use zip::ZipArchive;

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, text).expect("write");
    }

    /// (name, content, unix mode, last-modified) of every entry, in archive order.
    fn read_zip(data: &[u8]) -> Vec<(String, String, u32, DateTime)> {
        let mut archive = ZipArchive::new(Cursor::new(data)).expect("valid zip");
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).expect("entry");
                assert_eq!(file.compression(), CompressionMethod::Deflated);
                let mut content = String::new();
                file.read_to_string(&mut content).expect("read entry");
                (
                    file.name().expect("utf-8 name").into_owned(),
                    content,
                    file.unix_mode().expect("unix mode"),
                    file.last_modified().expect("mtime"),
                )
            })
            .collect()
    }

    fn names(data: &[u8]) -> Vec<String> {
        read_zip(data).into_iter().map(|e| e.0).collect()
    }

    fn dir_sources(path: &Path, excludes: &[&str]) -> Sources {
        Sources::Dir {
            path: path.to_owned(),
            excludes: excludes.iter().map(|s| s.to_string()).collect(),
            exclude_symlink_directories: false,
        }
    }

    fn sample_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("zeta.py"), "z");
        write(&root.join("a-c.txt"), "dash");
        write(&root.join("a/b.txt"), "nested");
        write(&root.join("a/deep/x.pyc"), "bytecode");
        write(&root.join("__pycache__/m.cpython-312.pyc"), "cache");
        write(&root.join("Alpha.txt"), "upper");
        write(&root.join("skip.pyc"), "top-level bytecode");
        dir
    }

    #[test]
    fn entries_are_sorted_dated_1980_and_deflated() {
        let tree = sample_tree();
        let data = build_zip(&dir_sources(tree.path(), &[]), None, None).expect("zip");
        let entries = read_zip(&data);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(
            names,
            vec![
                "Alpha.txt",
                "__pycache__/m.cpython-312.pyc",
                "a-c.txt",
                "a/b.txt",
                "a/deep/x.pyc",
                "skip.pyc",
                "zeta.py"
            ]
        );
        for (_, _, _, modified) in &entries {
            assert_eq!(
                (modified.year(), modified.month(), modified.day()),
                (1980, 1, 1)
            );
            assert_eq!(
                (modified.hour(), modified.minute(), modified.second()),
                (0, 0, 0)
            );
        }
        assert_eq!(entries[3].1, "nested");
    }

    #[test]
    fn zip_is_deterministic_across_builds_and_mtimes() {
        let tree = sample_tree();
        let sources = dir_sources(tree.path(), &[]);
        let first = build_zip(&sources, None, None).expect("zip");
        // Rewrite a file with the same content: new mtime, same archive.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(&tree.path().join("zeta.py"), "z");
        let second = build_zip(&sources, None, None).expect("zip");
        assert_eq!(first, second);
        // A content change changes the archive.
        write(&tree.path().join("zeta.py"), "zz");
        let third = build_zip(&sources, None, None).expect("zip");
        assert_ne!(first, third);
    }

    #[test]
    fn excludes_use_doublestar_globs() {
        let tree = sample_tree();
        let data = build_zip(
            &dir_sources(tree.path(), &["**/*.pyc", "__pycache__", ""]),
            None,
            None,
        )
        .expect("zip");
        assert_eq!(
            names(&data),
            vec!["Alpha.txt", "a-c.txt", "a/b.txt", "zeta.py"]
        );

        // A single `*` does not cross directories; excluding a directory drops its subtree.
        let data = build_zip(&dir_sources(tree.path(), &["*.pyc", "a"]), None, None).expect("zip");
        assert_eq!(
            names(&data),
            vec![
                "Alpha.txt",
                "__pycache__/m.cpython-312.pyc",
                "a-c.txt",
                "zeta.py"
            ]
        );
    }

    #[test]
    fn everything_excluded_is_an_error() {
        let tree = sample_tree();
        let err = build_zip(&dir_sources(tree.path(), &["**"]), None, None).expect_err("empty");
        assert!(err.contains("would be empty"), "{err}");
    }

    #[test]
    fn missing_sources_are_clear_errors() {
        let tree = tempfile::tempdir().expect("tempdir");
        let missing = tree.path().join("nope");
        let err = build_zip(&dir_sources(&missing, &[]), None, None).expect_err("missing dir");
        assert!(err.contains("could not archive missing directory"), "{err}");
        let err = build_zip(&Sources::File(missing), None, None).expect_err("missing file");
        assert!(err.contains("could not archive missing file"), "{err}");
    }

    #[test]
    fn symlinked_directories_are_followed_unless_excluded() {
        let tree = tempfile::tempdir().expect("tempdir");
        let src = tree.path().join("src");
        let other = tree.path().join("other");
        write(&src.join("main.py"), "main");
        write(&other.join("lib.py"), "lib");
        std::os::unix::fs::symlink(&other, src.join("linked")).expect("symlink");
        std::os::unix::fs::symlink(other.join("lib.py"), src.join("alias.py")).expect("symlink");

        let data = build_zip(&dir_sources(&src, &[]), None, None).expect("zip");
        assert_eq!(names(&data), vec!["alias.py", "linked/lib.py", "main.py"]);

        let sources = Sources::Dir {
            path: src.clone(),
            excludes: vec![],
            exclude_symlink_directories: true,
        };
        let data = build_zip(&sources, None, None).expect("zip");
        assert_eq!(names(&data), vec!["alias.py", "main.py"]);

        // A link back to an ancestor is a loop, reported instead of recursing forever.
        std::os::unix::fs::symlink(&src, src.join("loop")).expect("symlink");
        let err = build_zip(&dir_sources(&src, &[]), None, None).expect_err("loop");
        assert!(err.contains("symlink loop"), "{err}");
    }

    #[test]
    fn output_inside_source_dir_is_left_out() {
        let tree = sample_tree();
        let output = tree.path().join("out.zip");
        let sources = dir_sources(tree.path(), &[]);
        let first = build_zip(&sources, None, Some(&output)).expect("zip");
        fs::write(&output, &first).expect("write");
        let second = build_zip(&sources, None, Some(&output)).expect("zip");
        assert_eq!(first, second);
        assert!(!names(&second).contains(&"out.zip".to_string()));
    }

    #[test]
    fn file_modes_come_from_files_or_output_file_mode() {
        let tree = tempfile::tempdir().expect("tempdir");
        let script = tree.path().join("run.sh");
        write(&script, "#!/bin/sh\n");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");

        let data = build_zip(&Sources::File(script.clone()), None, None).expect("zip");
        let entries = read_zip(&data);
        assert_eq!(entries[0].0, "run.sh");
        assert_eq!(entries[0].2, 0o100755);

        let data = build_zip(&Sources::File(script), Some(0o644), None).expect("zip");
        assert_eq!(read_zip(&data)[0].2, 0o100644);

        let content = Sources::Content {
            filename: "config.json".into(),
            content: b"{}".to_vec(),
        };
        let data = build_zip(&content, None, None).expect("zip");
        assert_eq!(read_zip(&data)[0].2, 0o100644);
        let data = build_zip(&content, Some(0o600), None).expect("zip");
        assert_eq!(read_zip(&data)[0].2, 0o100600);
    }

    #[test]
    fn multiple_sources_are_sorted_and_duplicates_rejected() {
        let files = vec![
            ("z.txt".to_string(), b"last".to_vec()),
            ("a/b.txt".to_string(), b"first".to_vec()),
            ("m.txt".to_string(), b"middle".to_vec()),
        ];
        let data = build_zip(&Sources::Multiple(files), None, None).expect("zip");
        let entries = read_zip(&data);
        assert_eq!(names(&data), vec!["a/b.txt", "m.txt", "z.txt"]);
        assert_eq!(entries[0].1, "first");

        let dupes = vec![
            ("x".to_string(), b"1".to_vec()),
            ("x".to_string(), b"2".to_vec()),
        ];
        let err = build_zip(&Sources::Multiple(dupes), None, None).expect_err("dupes");
        assert!(err.contains("duplicate"), "{err}");
    }

    #[test]
    fn checksums_match_known_vectors() {
        let sums = checksums(b"abc");
        assert_eq!(sums.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(sums.sha1_hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sums.sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sums.sha256_base64,
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            sums.sha512_hex,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            sums.sha512_base64,
            "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
        );
    }

    #[test]
    fn file_mode_parsing_follows_go_parse_uint_base_0() {
        assert_eq!(parse_file_mode("0666"), Ok(0o666));
        assert_eq!(parse_file_mode("0o755"), Ok(0o755));
        assert_eq!(parse_file_mode("0x1ff"), Ok(0o777));
        assert_eq!(parse_file_mode("420"), Ok(0o644));
        assert_eq!(parse_file_mode("0"), Ok(0));
        for bad in ["", "0888", "rw-r--r--", "0x", "99999999999", "-1"] {
            assert!(parse_file_mode(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    fn config<'a>() -> ArchiveFileState<'a> {
        ArchiveFileState {
            archive_type: Value::Value("zip".into()),
            output_path: Value::Value("out.zip".into()),
            ..Default::default()
        }
    }

    fn summaries(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| format!("{:?}: {}", p.0, p.2))
            .collect()
    }

    #[test]
    fn validation_requires_exactly_one_source_kind() {
        let none = validate_config(&config());
        assert_eq!(none.len(), 1, "{:?}", summaries(&none));
        assert!(none[0].2.contains("At least one attribute"));

        let mut both = config();
        both.source_file = Value::Value("a".into());
        both.source_dir = Value::Value("b".into());
        let problems = validate_config(&both);
        assert_eq!(problems.len(), 1, "{:?}", summaries(&problems));
        assert_eq!(problems[0].0, Some("source_file"));

        let mut blocks_and_content = config();
        blocks_and_content.source = Value::Value(BTreeSet::from([SourceBlock {
            content: Value::Value("x".into()),
            filename: Value::Value("x.txt".into()),
        }]));
        blocks_and_content.source_content = Value::Value("y".into());
        blocks_and_content.source_content_filename = Value::Value("y.txt".into());
        assert_eq!(validate_config(&blocks_and_content).len(), 2);

        // An unknown value counts as specified.
        let mut unknown = config();
        unknown.source_dir = Value::Unknown;
        assert!(validate_config(&unknown).is_empty());
        unknown.source_file = Value::Value("f".into());
        assert_eq!(validate_config(&unknown).len(), 1);

        let mut excludes_with_file = config();
        excludes_with_file.source_file = Value::Value("f".into());
        excludes_with_file.excludes = Value::Value(BTreeSet::from([Value::Value("*.pyc".into())]));
        let problems = validate_config(&excludes_with_file);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, Some("excludes"));
    }

    #[test]
    fn validation_rejects_unsupported_type_and_bad_mode() {
        let mut cfg = config();
        cfg.source_file = Value::Value("f".into());
        cfg.archive_type = Value::Value("tar.gz".into());
        cfg.output_file_mode = Value::Value("rwx".into());
        let problems = validate_config(&cfg);
        let attributes: Vec<_> = problems.iter().map(|p| p.0).collect();
        assert_eq!(attributes, vec![Some("type"), Some("output_file_mode")]);
        assert!(problems[0].2.contains("only builds \"zip\""));
    }

    #[test]
    fn read_writes_the_archive_and_fills_every_computed_attribute() {
        let tree = tempfile::tempdir().expect("tempdir");
        let output = tree.path().join("missing/dir/out.zip");
        let mut cfg = config();
        cfg.output_path = Value::Value(output.to_string_lossy().into_owned().into());
        cfg.source_content = Value::Value("hello".into());
        cfg.source_content_filename = Value::Value("hello.txt".into());

        let mut diags = Diagnostics::default();
        let state = read_archive_file(&mut diags, cfg.clone()).expect("read succeeds");
        assert!(diags.errors.is_empty());
        let data = fs::read(&output).expect("output written, parent created");
        let sums = checksums(&data);
        assert_eq!(
            state
                .output_base64sha256
                .as_ref_option()
                .map(|s| s.as_ref()),
            Some(sums.sha256_base64.as_str())
        );
        assert_eq!(
            state.id.as_ref_option().map(|s| s.as_ref()),
            Some(sums.sha1_hex.as_str())
        );
        assert_eq!(state.output_sha, state.id);
        assert_eq!(state.output_size, Value::Value(data.len() as i64));
        for value in [
            &state.output_md5,
            &state.output_sha256,
            &state.output_sha512,
            &state.output_base64sha512,
        ] {
            assert!(value.is_value());
        }
        assert_eq!(read_zip(&data)[0].1, "hello");

        // Reading again gives identical results.
        let again = read_archive_file(&mut diags, cfg).expect("read succeeds");
        assert_eq!(again.output_sha512, state.output_sha512);
    }

    #[test]
    fn read_reports_errors_as_diagnostics() {
        let tree = tempfile::tempdir().expect("tempdir");
        let mut cfg = config();
        cfg.output_path = Value::Value(
            tree.path()
                .join("o.zip")
                .to_string_lossy()
                .into_owned()
                .into(),
        );
        cfg.source_dir = Value::Value(
            tree.path()
                .join("absent")
                .to_string_lossy()
                .into_owned()
                .into(),
        );
        let mut diags = Diagnostics::default();
        assert!(read_archive_file(&mut diags, cfg).is_none());
        assert_eq!(diags.errors.len(), 1);
        assert!(diags.errors[0]
            .detail
            .contains("could not archive missing directory"));
    }
}
