//! `flujo cost --format html`: the page opened in a real headless browser (Debian's
//! chromium, installed by `scripts/test.sh`) renders without console errors, its charts and
//! tables carry the ledger's exact numbers (read back from the rendered DOM), and
//! screenshots at a phone's and a desktop's width are written for review.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flujo::{
    Flujo, TelemetryConfig, TokenUsage, UsageLimitExceeded, pipeline, pipeline_step, track_cost,
};

#[track_cost(model = "gpt-4o-mini")]
fn mini(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, tokens / 4).with_cache_read(tokens / 2))
}

#[track_cost(model = "claude-haiku-4-5")]
fn haiku(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 300))
}

#[track_cost(model = "acme-in-house", unpriced)]
fn in_house(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 10))
}

#[pipeline_step]
fn retrieve(tokens: u64) -> Result<u64, UsageLimitExceeded> {
    mini(tokens)?;
    Ok(tokens)
}

#[pipeline_step]
fn write(tokens: u64) -> Result<u64, UsageLimitExceeded> {
    haiku(tokens)?;
    in_house(tokens)?;
    Ok(tokens)
}

pipeline! {
    pipeline answer(tokens: u64) -> u64 {
        retrieve? >> write?
    }
}

pipeline! {
    pipeline triage(tokens: u64) -> u64 {
        retrieve?
    }
}

fn chromium() -> PathBuf {
    PathBuf::from(
        std::env::var_os("FLUJO_TEST_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    )
}

/// Chromium, headless, with no network of its own and logging the page's console to stderr:
/// in a network namespace with loopback only (`unshare`), and its resolver answering every
/// name with "not found" without a query (the test command checks that no test makes one).
fn browse(page: &Path, args: &[&str], profile: &Path) -> (String, String) {
    let output = Command::new("unshare")
        .args(["--net", "--map-root-user"])
        .arg(chromium())
        .args([
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--log-level=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs: `bash scripts/test.sh` installs Debian's chromium");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The page's console messages that are errors (a blocked fetch, a script error).
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| {
            line.contains("CONSOLE")
                || line.contains("Refused to")
                || line.contains("Uncaught")
                || line.contains("Failed to load resource")
        })
        .collect()
}

/// `name="value"` attributes of each `<tag ...>` in `html` that has `attribute`.
fn elements_with<'a>(html: &'a str, tag: &str, attribute: &str) -> Vec<BTreeMap<&'a str, &'a str>> {
    let open = format!("<{tag} ");
    html.match_indices(&open)
        .filter_map(|(at, _)| {
            let end = html[at..].find('>')? + at;
            let mut attributes = BTreeMap::new();
            let mut rest = &html[at + open.len()..end];
            while let Some(eq) = rest.find("=\"") {
                let name = rest[..eq].trim();
                let value_end = rest[eq + 2..].find('"')? + eq + 2;
                attributes.insert(name, &rest[eq + 2..value_end]);
                rest = &rest[value_end + 1..];
            }
            attributes.contains_key(attribute).then_some(attributes)
        })
        .collect()
}

/// The `data-nanos` of the bars of `chart`, summed by series.
fn chart_sums(dom: &str, chart: &str) -> BTreeMap<String, u64> {
    let start = dom
        .find(&format!("data-chart=\"{chart}\""))
        .unwrap_or_else(|| panic!("no {chart} chart"));
    let end = dom[start..].find("</svg>").unwrap() + start;
    let mut sums = BTreeMap::new();
    for rect in elements_with(&dom[start..end], "rect", "data-nanos") {
        *sums
            .entry(rect["data-key"].replace("&amp;", "&"))
            .or_default() += rect["data-nanos"].parse::<u64>().unwrap();
    }
    sums
}

#[test]
fn the_html_report_renders_in_a_browser_with_the_ledgers_numbers() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flujo-html-report");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = dir.join("costs.sqlite");
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&ledger)).unwrap();
    for i in 0..40 {
        let _ = Flujo::new(answer::new()).run(1_000 + i * 10).output;
    }
    for i in 0..25 {
        let _ = Flujo::new(triage::new()).run(4_000 + i).output;
    }
    mini(777).unwrap();
    drop(guard);

    let today = flujo::cost::utc_today();
    let from = today - time::Duration::days(6);
    let page = dir.join("report.html");
    let (ok, stdout, stderr) = support::flujo(&[
        "cost",
        "--ledger",
        ledger.to_str().unwrap(),
        "--from",
        &from.to_string(),
        "--to",
        &today.to_string(),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty(), "the page goes to the file: {stdout}");
    let html = std::fs::read_to_string(&page).unwrap();
    for forbidden in ["http://", "https://", "<script", "<link"] {
        assert!(
            !html.contains(forbidden),
            "self-contained: {forbidden} in the page"
        );
    }

    let profile = dir.join("profile");
    let (dom, stderr) = browse(&page, &["--dump-dom"], &profile);
    assert!(dom.contains("Model spend"), "the page rendered: {stderr}");
    assert!(
        console_errors(&stderr).is_empty(),
        "console errors: {:?}",
        console_errors(&stderr)
    );

    let report = flujo::cost::CostLedger::open(&ledger)
        .unwrap()
        .report(from, today)
        .unwrap();
    let nanos = |costs: &BTreeMap<String, flujo::Usd>| -> BTreeMap<String, u64> {
        costs
            .iter()
            .filter(|(_, cost)| cost.nanos() > 0)
            .map(|(key, cost)| (key.clone(), cost.nanos()))
            .collect()
    };
    assert_eq!(chart_sums(&dom, "model"), nanos(&report.cost_by_model));
    assert_eq!(
        chart_sums(&dom, "pipeline"),
        nanos(&report.cost_by_pipeline)
    );
    assert_eq!(chart_sums(&dom, "step"), nanos(&report.cost_by_step));
    assert_eq!(report.cost_by_pipeline.len(), 3, "answer, triage and none");
    let total = elements_with(&dom, "b", "data-total-nanos");
    assert_eq!(
        total[0]["data-total-nanos"],
        report.total_cost.nanos().to_string()
    );
    let footer = elements_with(&dom, "td", "data-nanos");
    assert!(
        footer
            .iter()
            .any(|cell| cell["data-nanos"] == report.total_cost.nanos().to_string()),
        "the exact totals table has the total"
    );
    let tokens = elements_with(&dom, "rect", "data-tokens");
    let output = tokens
        .iter()
        .find(|t| t["data-token-type"] == "output")
        .unwrap();
    assert_eq!(
        output["data-tokens"],
        report.totals().tokens.output.to_string()
    );
    let unpriced = elements_with(&dom, "td", "data-calls");
    assert_eq!(unpriced.len(), 1);
    assert_eq!(
        unpriced[0]["data-calls"],
        report.unpriced_requests["acme-in-house"].to_string()
    );
    assert_eq!(report.unpriced_requests["acme-in-house"], 40);
    // Unpriced is unknown, never $0: the model's exact cost cell and the total say so.
    assert!(
        dom.contains(">unknown</td>"),
        "the unpriced model's cost reads unknown"
    );
    assert!(
        dom.contains(" + 40 unpriced calls</b>"),
        "the total says what it leaves out"
    );

    // Screenshots for review, at a phone's width and a desktop's.
    for (name, size) in [("phone", "390,844"), ("desktop", "1280,900")] {
        let shot = dir.join(format!("report-{name}.png"));
        let _ = browse(
            &page,
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={size}"),
            ],
            &profile,
        );
        let bytes = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(bytes > 10_000, "a {name} screenshot at {}", shot.display());
    }
    println!("screenshots: {}", dir.display());
}

#[test]
fn the_console_check_sees_a_page_that_reaches_for_the_network() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flujo-html-console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'\"></head><body><img src=\"https://cdn.invalid/x.png\">\
         </body></html>",
    )
    .unwrap();
    let (_, stderr) = browse(&page, &["--dump-dom"], &dir.join("profile"));
    assert!(!console_errors(&stderr).is_empty(), "{stderr}");
}
