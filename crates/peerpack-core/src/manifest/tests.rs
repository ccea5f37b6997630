//! Tests of manifest parsing and validation.

use super::*;

const GOOD: &str = r#"
[package]
name = "rust-cli"
version = "1.2.0"
description = "A Rust command-line application template"
license = "MIT"
authors = ["Ada <ada@example.org>"]
categories = ["cli"]
tags = ["rust", "clap"]
homepage = "https://example.org/rust-cli"
readme = "README.md"

[dependencies]
ci-workflow = "^1.0"
"#;

fn problem(text: &str) -> Problem {
    let err = Manifest::parse(text, Path::new("pkg/peerpack.toml")).unwrap_err();
    assert!(err.to_string().starts_with("pkg/peerpack.toml: "), "{err}");
    err.problem().cloned().unwrap()
}

#[test]
fn parses_a_full_manifest() {
    let m = Manifest::parse(GOOD, Path::new("peerpack.toml")).unwrap();
    assert_eq!(m.name.as_str(), "rust-cli");
    assert_eq!(m.version, Version::new(1, 2, 0));
    assert_eq!(m.tags, ["rust", "clap"]);
    assert_eq!(m.dependencies.len(), 1);
    assert_eq!(m.repository, None);
}

#[test]
fn syntax_error() {
    assert!(matches!(problem("[package"), Problem::Syntax(_)));
}

#[test]
fn missing_keys() {
    assert_eq!(
        problem("x = 1"),
        Problem::Unknown {
            key: "x".into(),
            known: TOP_KEYS.join(", ")
        }
    );
    assert_eq!(problem(""), Problem::Missing("package".into()));
    let without_version = GOOD.replace("version = \"1.2.0\"\n", "");
    assert_eq!(
        problem(&without_version),
        Problem::Missing("package.version".into())
    );
    let without_authors = GOOD.replace("authors = [\"Ada <ada@example.org>\"]\n", "");
    assert_eq!(
        problem(&without_authors),
        Problem::Missing("package.authors".into())
    );
}

#[test]
fn unknown_key_names_the_key() {
    let text = GOOD.replace("license = \"MIT\"", "license = \"MIT\"\nlicence = \"MIT\"");
    let p = problem(&text);
    assert!(
        matches!(&p, Problem::Unknown { key, .. } if key == "package.licence"),
        "{p}"
    );
    assert!(p.to_string().contains("package.licence"));
}

#[test]
fn bad_version() {
    let p = problem(&GOOD.replace("1.2.0", "1.2"));
    assert!(
        matches!(&p, Problem::InvalidVersion { key, value, .. } if key == "package.version" && value == "1.2"),
        "{p}"
    );
}

#[test]
fn bad_name() {
    let p = problem(&GOOD.replace("\"rust-cli\"", "\"Rust_CLI\""));
    assert!(
        matches!(&p, Problem::InvalidName { key, .. } if key == "package.name"),
        "{p}"
    );
    let p = problem(&GOOD.replace("ci-workflow", "\"../evil\""));
    assert!(
        matches!(&p, Problem::InvalidName { key, .. } if key == "dependencies.../evil"),
        "{p}"
    );
}

#[test]
fn description_too_long() {
    let long = "x".repeat(MAX_DESCRIPTION_LEN + 1);
    let p = problem(&GOOD.replace("A Rust command-line application template", &long));
    assert_eq!(
        p,
        Problem::TooLong {
            key: "package.description".into(),
            len: MAX_DESCRIPTION_LEN + 1,
            max: MAX_DESCRIPTION_LEN
        }
    );
}

#[test]
fn version_too_long() {
    let long = format!("1.2.0-{}", "a".repeat(MAX_REQ_LEN - 5));
    let p = problem(&GOOD.replace("version = \"1.2.0\"", &format!("version = \"{long}\"")));
    assert_eq!(
        p,
        Problem::TooLong {
            key: "package.version".into(),
            len: MAX_REQ_LEN + 1,
            max: MAX_REQ_LEN
        }
    );
}

#[test]
fn wrong_types_and_invalid_values() {
    let p = problem(&GOOD.replace("version = \"1.2.0\"", "version = 1"));
    assert!(
        matches!(&p, Problem::WrongType { key, found: "an integer", .. } if key == "package.version"),
        "{p}"
    );
    let p = problem(&GOOD.replace("\"^1.0\"", "\">>1\""));
    assert!(
        matches!(&p, Problem::InvalidRequirement { key, .. } if key == "dependencies.ci-workflow"),
        "{p}"
    );
    let p = problem(&GOOD.replace("\"clap\"", "\"Clap!\""));
    assert!(
        matches!(&p, Problem::Invalid { key, .. } if key == "package.tags"),
        "{p}"
    );
    let p = problem(&GOOD.replace("https://example.org/rust-cli", "ftp://x"));
    assert!(
        matches!(&p, Problem::Invalid { key, .. } if key == "package.homepage"),
        "{p}"
    );
    let p = problem(&GOOD.replace("\"README.md\"", "\"../README.md\""));
    assert!(
        matches!(&p, Problem::Invalid { key, .. } if key == "package.readme"),
        "{p}"
    );
    let p = problem(&GOOD.replace("ci-workflow", "rust-cli"));
    assert!(p.to_string().contains("itself"), "{p}");
    let p = problem(&GOOD.replace("authors = [\"Ada <ada@example.org>\"]", "authors = []"));
    assert!(
        matches!(&p, Problem::Invalid { key, .. } if key == "package.authors"),
        "{p}"
    );
}

#[test]
fn unreadable_file_names_the_path() {
    let err = Manifest::from_dir(Path::new("/nonexistent/pkg")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/pkg/peerpack.toml"),
        "{err}"
    );
}
