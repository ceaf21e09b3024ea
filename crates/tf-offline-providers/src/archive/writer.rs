//! Deterministic zip bytes from entries, their checksums, and the output file.

use std::borrow::Cow;
use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use base64::Engine as _;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use super::entries::{collect_entries, Entry, EntryData, Sources};

/// Writes the entries into a deterministic zip: sorted by name, fixed
/// replaces every entry's permissions).
pub(super) fn write_zip(
    mut entries: Vec<Entry>,
    mode_override: Option<u32>,
) -> Result<Vec<u8>, String> {
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

pub(super) fn to_hex(bytes: &[u8]) -> String {
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
pub(super) fn write_output(path: &Path, data: &[u8]) -> Result<(), String> {
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
