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

/// A row's `at`, an RFC 3339 time.
pub fn at(row: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        row["at"].as_str().expect("the row's time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time")
}
