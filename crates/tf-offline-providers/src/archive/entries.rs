//! The files an archive holds: sources walked into sorted entries, excludes applied.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::DEFAULT_CONTENT_MODE;

pub(super) fn build_excludes(patterns: &[&str]) -> Result<GlobSet, String> {
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
pub(super) enum EntryData {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) data: EntryData,
    pub(super) mode: u32,
}

/// Identity (device, inode) of a file, to leave the output zip itself out
/// when it lies inside `source_dir`.
pub(super) type FileId = (u64, u64);

pub(super) fn file_id(meta: &fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

pub(super) fn utf8_name(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("file name is not valid UTF-8: {}", path.display()))
}

pub(super) struct DirWalk<'a> {
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
/// The metadata of a source `what` ("file" or "directory"), or the real provider's message.
fn metadata_of(path: &Path, what: &str) -> Result<fs::Metadata, String> {
    fs::metadata(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            format!("could not archive missing {what}: {}", path.display())
        } else {
            format!("could not archive {what} {}: {err}", path.display())
        }
    })
}

pub(super) fn collect_entries(
    sources: &Sources,
    output_path: Option<&Path>,
) -> Result<Vec<Entry>, String> {
    match sources {
        Sources::Dir {
            path,
            excludes,
            exclude_symlink_directories,
        } => {
            let meta = metadata_of(path, "directory")?;
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
            let meta = metadata_of(path, "file")?;
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
