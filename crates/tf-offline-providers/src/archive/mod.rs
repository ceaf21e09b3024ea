//! Stand-in for `hashicorp/archive` 2.7.1: the `archive_file` data source.
//!
//! Same schema and validation as the real data source. Only `type = "zip"` is
//! implemented. Zips are deterministic: entries sorted by name, every entry
//! dated 1980-01-01 00:00, deflate, Unix permissions, no extra fields, so the
//! same inputs always give the same bytes and the same hashes.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, NestedBlock, Schema};
use tf_provider::value::{Value, ValueBool, ValueEmpty, ValueNumber, ValueSet, ValueString};
use tf_provider::{map, DataSource, Diagnostics};

use crate::provider::StandInProvider;
use crate::schema_util::{attr, block, is_specified, schema};

mod entries;
#[cfg(test)]
mod tests;
mod validate;
mod writer;

use entries::Sources;
use validate::{parse_file_mode, report, validate_config, Problem};
use writer::{build_zip, checksums, write_output};

/// Permissions of entries whose content does not come from a file.
const DEFAULT_CONTENT_MODE: u32 = 0o644;

const ONE_OF_SOURCES: &str = "One and only one of `source`, `source_content_filename` (with \
                              `source_content`), `source_file`, or `source_dir` must be specified.";

/// The `hashicorp/archive` provider: no configuration, one data source.
pub const PROVIDER: StandInProvider = StandInProvider {
    description: "Offline stand-in for the hashicorp/archive provider.",
    resources: HashMap::new,
    data_sources: || map! { "file" => ArchiveFile },
};

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
    match build_archive_file(config) {
        Ok(state) => Some(state),
        Err(problems) => {
            report(diags, problems);
            None
        }
    }
}

/// A failure of the read on one attribute (`None`: the whole block), with its summary.
fn problem(attribute: Option<&'static str>, summary: &str) -> impl Fn(String) -> Vec<Problem> {
    let summary = summary.to_owned();
    move |detail| vec![(attribute, summary.clone(), detail)]
}

fn build_archive_file(config: ArchiveFileState<'_>) -> Result<ArchiveFileState<'_>, Vec<Problem>> {
    let problems = validate_config(&config);
    if !problems.is_empty() {
        return Err(problems);
    }
    let output_path_error = problem(Some("output_path"), "Output path error");
    let output_path =
        known_string(&config.output_path, "output_path").map_err(&output_path_error)?;
    let output_path = PathBuf::from(output_path);
    let mode_override = match &config.output_file_mode {
        Value::Value(mode) if !mode.is_empty() => Some(
            parse_file_mode(mode)
                .map_err(problem(Some("output_file_mode"), "Invalid file mode"))?,
        ),
        _ => None,
    };
    let data = sources_from_config(&config)
        .and_then(|sources| build_zip(&sources, mode_override, Some(&output_path)))
        .map_err(|message| format!("error creating archive: {message}"))
        .map_err(problem(None, "Archive creation error"))?;
    write_output(&output_path, &data).map_err(&output_path_error)?;
    let size = i64::try_from(data.len())
        .map_err(|_| problem(None, "Archive output error: archive too large")(String::new()))?;

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
    Ok(state)
}
