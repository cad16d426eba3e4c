//! The pinned `genai-prices` Python package the differential tests compare flujo with.

use flujo_pricing::genai::GENAI_PRICES_VERSION;

/// The Python that has the package (installed into `.backends/genai-prices/` by
/// `scripts/test.sh`, which sets `FLUJO_TEST_GENAI_PRICES_PYTHON`).
pub fn python() -> String {
    std::env::var("FLUJO_TEST_GENAI_PRICES_PYTHON").unwrap_or_else(|_| {
        panic!(
            "FLUJO_TEST_GENAI_PRICES_PYTHON is not set: run `bash scripts/test.sh`, which installs \
             genai-prices {GENAI_PRICES_VERSION} into .backends/genai-prices/"
        )
    })
}

/// What `scripts/{script}` writes, one JSON object per line, given `input` on its stdin; after
/// checking that the package is the shipped data's version.
pub fn run(script: &str, input: String) -> Vec<serde_json::Value> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let version = Command::new(python())
        .args(["-c", "import genai_prices; print(genai_prices.__version__)"])
        .output()
        .expect("python runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        GENAI_PRICES_VERSION,
        "the package is the version of the shipped data: {version:?}"
    );
    let script = format!("{}/../scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("the script ends");
    writer.join().expect("writer").expect("input written");
    assert!(output.status.success(), "{script}: {output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect()
}

/// A row's `at`, an RFC 3339 time.
pub fn at(row: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        row["at"].as_str().expect("the row's time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time")
}
