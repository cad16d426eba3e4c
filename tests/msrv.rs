//! The `rust-version` the crates declare is true: no dependency a user's build compiles (normal
//! and build dependencies of the published crates, every feature on) needs a newer Rust, but
//! for the features listed in [`NEWER_RUST`], whose dependencies are held to the version each
//! states (and the README says). Reads `cargo metadata` of the workspace, resolved from
//! `Cargo.lock`.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use serde_json::Value;

/// The crates published to crates.io.
const PUBLISHED: [&str; 5] = [
    "flujo",
    "flujo-macros",
    "flujo-runtime",
    "flujo-pricing",
    "flujo-cli",
];

/// Features that need a newer Rust than the crates' `rust-version`: the dependency each
/// enables, and the Rust it needs (its own `rust-version`).
const NEWER_RUST: [(&str, &str, &str); 1] = [("rig", "rig-core", "1.95")];

/// `1.89` and `1.89.0` alike.
fn version(text: &str) -> [u64; 3] {
    let mut parts = text.split('.').map(|part| part.parse().unwrap_or(0));
    [(); 3].map(|()| parts.next().unwrap_or(0))
}

#[test]
fn no_dependency_needs_a_newer_rust_than_the_declared_rust_version() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--all-features",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| (package["id"].as_str().unwrap(), package))
        .collect();
    let declared = env!("CARGO_PKG_RUST_VERSION");
    for name in PUBLISHED {
        let package = packages.values().find(|p| p["name"] == name).unwrap();
        assert_eq!(
            package["rust_version"].as_str(),
            Some(declared),
            "{name} declares the workspace's rust-version"
        );
    }
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap(), node))
        .collect();
    let by_name = |name: &str| -> Vec<&str> {
        packages
            .iter()
            .filter(|(_, package)| package["name"] == name)
            .map(|(id, _)| *id)
            .collect()
    };
    let mut too_new = Vec::new();
    // The crates and what they pull, but for the newer-Rust features' dependencies; then
    // each of those, against its own version.
    let boundaries: Vec<&str> = NEWER_RUST
        .iter()
        .flat_map(|(_, dependency, _)| by_name(dependency))
        .collect();
    let crates: Vec<&str> = PUBLISHED.iter().flat_map(|name| by_name(name)).collect();
    let mut seen = HashSet::new();
    check(
        &crates,
        declared,
        &boundaries,
        &packages,
        &nodes,
        &mut seen,
        &mut too_new,
    );
    for (feature, dependency, needs) in NEWER_RUST {
        let roots = by_name(dependency);
        assert!(!roots.is_empty(), "feature {feature} enables {dependency}");
        check(
            &roots,
            needs,
            &[],
            &packages,
            &nodes,
            &mut seen,
            &mut too_new,
        );
    }
    assert!(
        too_new.is_empty(),
        "rust-version = {declared:?} in Cargo.toml, but: {too_new:?}"
    );
}

/// Every package reachable from `roots` (normal and build dependencies, not past
/// `boundaries`) and not yet `seen` needs at most Rust `allowed`; those that need more go to
/// `too_new`.
fn check<'a>(
    roots: &[&'a str],
    allowed: &str,
    boundaries: &[&str],
    packages: &HashMap<&'a str, &'a Value>,
    nodes: &HashMap<&'a str, &'a Value>,
    seen: &mut HashSet<&'a str>,
    too_new: &mut Vec<String>,
) {
    let mut stack: Vec<&str> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if boundaries.contains(&id) || !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        if let Some(needs) = package["rust_version"].as_str()
            && version(needs) > version(allowed)
        {
            too_new.push(format!(
                "{} {} needs {needs} (allowed: {allowed})",
                package["name"], package["version"]
            ));
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let used = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].is_null() || kind["kind"] == "build");
            if used {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
}
