//! Every `docs:` line redcloak can print points to a section that exists: each
//! `docs/<file>.md#<anchor>` string in the crates' sources, and each `*.md#anchor` link in
//! README.md and docs/, must name a heading of that file (GitHub's anchor rules).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// GitHub's heading anchor: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(markdown)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", markdown.display()));
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") {
                files(&path, ext, out);
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// `docs/x.md#anchor` occurrences in `text`.
fn doc_refs(text: &str) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("docs/") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-#".contains(c)))
            .unwrap_or(tail.len());
        if let Some((file, anchor)) = tail[..end].split_once(".md#") {
            refs.push((format!("{file}.md"), anchor.to_owned()));
        }
        rest = &tail[end.max(1)..];
    }
    refs
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug(" Plaintext listener"), "plaintext-listener");
    assert_eq!(slug("REDIS_URL"), "redis_url");
    assert_eq!(slug("TLS versions (1.2 / 1.3)"), "tls-versions-12--13");
    assert_eq!(
        doc_refs(r#"x "docs/security.md#mtls", docs/configuration.md#redis_url) docs/x.md"#),
        [
            ("docs/security.md".to_owned(), "mtls".to_owned()),
            ("docs/configuration.md".to_owned(), "redis_url".to_owned()),
        ]
    );
}

#[test]
fn every_docs_anchor_in_the_sources_exists() {
    let root = root();
    let mut sources = Vec::new();
    files(&root.join("crates"), "rs", &mut sources);
    let mut checked = 0;
    let mut missing = Vec::new();
    for src in &sources {
        let text = std::fs::read_to_string(src).unwrap();
        for (file, anchor) in doc_refs(&text) {
            let md = root.join(&file);
            if !anchors(&md).contains(&anchor) {
                missing.push(format!("{}: {file}#{anchor}", src.display()));
            }
            checked += 1;
        }
    }
    assert!(
        checked > 40,
        "only {checked} docs references found; is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "anchors that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_markdown_link_to_an_anchor_exists() {
    let root = root();
    let mut docs = vec![root.join("README.md")];
    files(&root.join("docs"), "md", &mut docs);
    let mut missing = Vec::new();
    for md in &docs {
        let text = std::fs::read_to_string(md).unwrap();
        for link in text.split("](").skip(1) {
            let target = &link[..link.find(')').unwrap_or(link.len())];
            let Some((file, anchor)) = target.split_once('#') else {
                continue;
            };
            if file.starts_with("http") {
                continue;
            }
            let path = if file.is_empty() {
                md.clone()
            } else {
                md.parent().unwrap().join(file)
            };
            if !path.is_file() || !anchors(&path).contains(anchor) {
                missing.push(format!("{}: {target}", md.display()));
            }
        }
    }
    assert!(missing.is_empty(), "broken links:\n{}", missing.join("\n"));
}
