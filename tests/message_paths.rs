//! Every `flujo::...` path that a message names (a log line, an error, a compile-time
//! diagnostic, a metric's help text) is one a user can write: the table below compiles each
//! path it lists, and a scan of the crates' string literals finds no path outside the table.
//! A hint that names a path which does not exist (E0425 when followed) fails here.

use std::path::Path;

/// The named paths, each used in code so that this file compiles only while every one exists.
macro_rules! named_paths {
    ($($kind:ident $path:path $(, $method:ident)?;)*) => {
        const NAMED: &[&str] = &[$(concat!(stringify!($path) $(, "::", stringify!($method))?)),*];

        #[allow(dead_code, unused_must_use, clippy::no_effect)]
        fn each_named_path_resolves() {
            $(named_paths!(@use $kind $path $(, $method)?);)*
        }
    };
    (@use value $path:path) => {
        let _ = $path;
    };
    (@use type $path:path) => {
        let _ = std::any::type_name::<$path>();
    };
    (@use trait $path:path) => {{
        fn bound<T: ?Sized + $path>() {}
    }};
    (@use method $path:path, $method:ident) => {{
        fn call<T: $path>(value: &T) {
            let _ = <T as $path>::$method(value);
        }
    }};
}

named_paths! {
    value flujo::init_telemetry;
    value flujo::cost::set_model_price;
    value flujo_pricing::genai::ROUNDED_PRICES;
    value flujo::cost::MAX_TOKENS_PER_CALL;
    value flujo::quality::record_score;
    value flujo::testing::Capture::start;
    value flujo::TokenUsage::new;
    type flujo::testing::Capture;
    type flujo::TokenUsage;
    type flujo::StepTimeout;
    type flujo::UsageLimitExceeded;
    type flujo::pipeline::PipelineError;
    type flujo::quality::ValidationError;
    trait flujo::cost::ReportsUsage;
    trait flujo::cost::StreamChunk;
    method flujo::cost::StreamChunk, chunk_usage;
}

/// The string literals of a Rust source file, outside comments (`"..."` with escapes, and raw
/// strings `r"..."`, `r#"..."#`).
fn string_literals(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut literals = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            // A char literal such as '"' must not open a string; a lifetime has no closing quote.
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 3,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let body = &source[open + 1..];
                let end = body.find(&close).expect("a raw string is closed");
                literals.push(body[..end].to_owned());
                i = open + 1 + end + close.len();
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                literals.push(source[start..i].to_owned());
                i += 1;
            }
            _ => i += 1,
        }
    }
    literals
}

/// The `flujo::a::b` paths in `text` (a trailing `::` or punctuation is not part of one).
fn flujo_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("flujo::") {
        let boundary = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let path = tail[..len].trim_end_matches(':');
        if boundary && path.len() > "flujo::".len() {
            paths.push(path.to_owned());
        }
        rest = &tail[len.max(1)..];
    }
    paths
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder reads") {
        let path = entry.expect("entry reads").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_path_a_message_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let named: Vec<String> = NAMED.iter().map(|p| p.replace(' ', "")).collect();
    let mut files = Vec::new();
    for crate_src in [
        "src",
        "flujo-runtime/src",
        "flujo-macros/src",
        "flujo-pricing/src",
        "flujo-cli/src",
    ] {
        rust_files(&root.join(crate_src), &mut files);
    }
    let mut missing = Vec::new();
    let mut found = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).expect("source reads");
        for literal in string_literals(&source) {
            for path in flujo_paths(&literal) {
                found += 1;
                if !named.contains(&path) {
                    missing.push(format!("{}: {path}", file.display()));
                }
            }
        }
    }
    assert!(found > 10, "the scan finds the messages' paths ({found})");
    assert!(
        missing.is_empty(),
        "messages name flujo paths that this test does not compile (add them to the table if \
         they exist, or correct the message):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scanner_reads_literals_not_comments() {
    let source = r####"
        // flujo::in_a_comment
        let a = "see flujo::cost::set_model_price, then";
        let b = '"'; let c = r#"flujo::raw::Path"#;
        /* flujo::block */ let d = "escaped \" flujo::after_escape::";
    "####;
    let paths: Vec<String> = string_literals(source)
        .iter()
        .flat_map(|l| flujo_paths(l))
        .collect();
    assert_eq!(
        paths,
        [
            "flujo::cost::set_model_price",
            "flujo::raw::Path",
            "flujo::after_escape"
        ]
    );
}
