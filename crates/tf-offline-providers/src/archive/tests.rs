//! Tests of the archive_file stand-in: zip layout, excludes, modes, validation, read.

use super::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tf_provider::value::Value;
use tf_provider::Diagnostics;
use zip::{CompressionMethod, DateTime};

use super::entries::*;
use super::validate::*;
use super::writer::*;
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
