//! `flujo prices`: list, look up and check the genai-prices data, as a user runs it.

mod support;

fn flujo_prices(args: &[&str]) -> (bool, String, String) {
    support::flujo(&[&["prices"], args].concat())
}

#[test]
fn lookup_prints_the_prices_in_force_with_their_tiers() {
    let (ok, out, _) = flujo_prices(&["lookup", "gemini-2.5-pro"]);
    assert!(ok);
    assert!(
        out.starts_with("gemini-2.5-pro: google gemini-2.5-pro (genai-prices 0.2.3)"),
        "{out}"
    );
    assert!(
        out.contains("input        $1.25/M tokens, $2.5/M tokens above 200000 input tokens"),
        "{out}"
    );
    let (ok, out, _) = flujo_prices(&["lookup", "us.anthropic.claude-sonnet-4-20250514-v1:0"]);
    assert!(ok, "Bedrock ids resolve");
    assert!(
        out.contains(": aws regional.anthropic.claude-sonnet-4-20250514-v1:0"),
        "{out}"
    );
    let (ok, _, err) = flujo_prices(&["lookup", "acme-unreleased-9000"]);
    assert!(!ok);
    assert!(
        err.contains("no price for \"acme-unreleased-9000\""),
        "{err}"
    );
    assert!(err.contains("unpriced (not $0)"), "{err}");
}

#[test]
fn list_and_check_read_the_shipped_data_or_a_file() {
    let (ok, out, _) = flujo_prices(&["list", "--provider", "deepseek"]);
    assert!(ok);
    assert!(
        out.lines().any(|line| line == "deepseek\tdeepseek-chat"),
        "{out}"
    );
    assert!(out.lines().all(|line| line.starts_with("deepseek\t")));

    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flujo-pricing/genai-prices/data.json"
    );
    let (ok, out, _) = flujo_prices(&["check", shipped]);
    assert!(ok, "{out}");
    assert!(
        out.contains("genai-prices 0.2.3, 47 providers, 2330 models"),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("flujo-prices-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("data.json");
    std::fs::write(
        &broken,
        r#"{"providers": [{"id": "acme", "name": "Acme", "models": [
            {"id": "acme-x", "match": {"regex": "(unclosed"}, "prices": {"input_mtok": 1}}]}]}"#,
    )
    .unwrap();
    let (ok, _, err) = flujo_prices(&["check", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!("price file {}", broken.display())),
        "{err}"
    );
    assert!(
        err.contains("provider acme, model acme-x: match regex"),
        "{err}"
    );
    let (ok, _, err) = flujo_prices(&["check", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
