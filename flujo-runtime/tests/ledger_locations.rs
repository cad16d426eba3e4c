//! Ledger locations are parsed, never guessed: every form of connection string a user may
//! paste into `FLUJO_COST_LEDGER` (or `cost_ledger`) is either read as what it is or refused
//! with an error naming its form, and its secret is never shown: not in stdout or stderr
//! (errors, WARN lines, `Debug` of the configuration), not in the name of a file created,
//! and no form makes flujo panic.
//!
//! Each form runs in a child process of its own (this test binary again), in an empty
//! working directory, through both doors: the environment variable and the builder. The
//! databases named are on a closed loopback port: a form read as PostgreSQL starts (an
//! unreachable database buffers) and says so, without the password.

use std::path::{Path, PathBuf};
use std::process::Command;

use flujo::TelemetryConfig;
use flujo::cost::{CostLedger, LedgerLocation};

const SECRET: &str = "Sw0rdf1sh";
const FORM: &str = "FLUJO_TEST_LEDGER_FORM";

/// Each form, and what flujo makes of it: `Some(true)` a database, `Some(false)` a file,
/// `None` refused.
fn forms() -> Vec<(String, Option<bool>)> {
    let s = SECRET;
    let db = "127.0.0.1:1";
    vec![
        (format!("postgres://flujo:{s}@{db}/costs"), Some(true)),
        (format!("postgresql://flujo:{s}@{db}/costs"), Some(true)),
        (format!("POSTGRES://flujo:{s}@{db}/costs"), Some(true)),
        (format!("  postgres://flujo:{s}@{db}/costs  "), Some(true)),
        (format!("postgres://:{s}@{db}/costs"), Some(true)),
        (format!("postgres://flujo:{s}%40x@{db}/costs"), Some(true)),
        (format!("postgres://flujo:{s}%2Fx@{db}/costs"), Some(true)),
        (format!("postgres://flujo:{s}/x@{db}/costs"), Some(true)),
        (
            format!("postgres://{db}/costs?user=flujo&password={s}"),
            Some(true),
        ),
        (format!("postgres://flujo:{s}@[::1]:1/costs"), Some(true)),
        (
            format!("postgres://flujo:{s}@{db}/costs?sslmode=require"),
            None,
        ),
        (
            format!("postgres://flujo:{s}@127.0.0.1:notaport/costs"),
            None,
        ),
        (
            format!("postgres://flujo:{s}@{db}/costs?connect_timeout=soon"),
            None,
        ),
        (format!("postgres://flujo:{s}@x@{db}/costs"), None),
        (
            format!("host=127.0.0.1 port=1 user=flujo password={s} dbname=costs"),
            Some(true),
        ),
        (
            format!("host=127.0.0.1 port=1 user=flujo password='{s} x' dbname=costs"),
            Some(true),
        ),
        (
            format!("dbname=costs password={s} host=127.0.0.1 port=1"),
            Some(true),
        ),
        (format!("postgresql+psycopg2://flujo:{s}@{db}/costs"), None),
        (format!("postgresql+asyncpg://flujo:{s}@{db}/costs"), None),
        (
            format!("jdbc:postgresql://{db}/costs?user=flujo&password={s}"),
            None,
        ),
        (format!("mysql://flujo:{s}@{db}/costs"), None),
        (format!("sqlite:///tmp/costs.sqlite?password={s}"), None),
        (format!("flujo:{s}@{db}/costs"), None),
        (
            format!("Server=127.0.0.1;Port=1;Database=costs;User Id=flujo;Password={s};"),
            None,
        ),
        (format!("Host=127.0.0.1;Username=flujo;Pwd={s}"), None),
        ("costs.sqlite".to_owned(), Some(false)),
    ]
}

/// The child: what a user's program would print of the form, through every door.
#[test]
fn child() {
    let Ok(form) = std::env::var(FORM) else {
        return; // Not a child: the test below drives this.
    };
    let location = LedgerLocation::parse(&form);
    println!("parsed: {location} {location:?}");
    let config = TelemetryConfig::builder().cost_ledger(form.as_str());
    println!("config: {config:?}");
    match flujo::init_telemetry_with(config) {
        Ok(guard) => {
            println!("builder: started");
            drop(guard);
        }
        Err(error) => println!("builder: {error} / {error:?}"),
    }
    // The environment's door (FLUJO_COST_LEDGER is set to the form by the parent).
    match flujo::init_telemetry() {
        Ok(guard) => {
            println!("env: started");
            drop(guard);
        }
        Err(error) => println!("env: {error} / {error:?}"),
    }
    match CostLedger::open(form.as_str()) {
        Ok(_) => println!("reader: opened"),
        Err(error) => println!("reader: {error} / {error:?}"),
    }
}

fn fresh_dir(i: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flujo-ledger-form-{}-{i}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every path under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        }
        found.push(path);
    }
    found
}

#[test]
fn no_form_of_ledger_location_shows_its_secret_or_becomes_a_file() {
    let forms = forms();
    assert!(forms.len() >= 20);
    for (i, (form, read_as)) in forms.iter().enumerate() {
        let dir = fresh_dir(i);
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
            .current_dir(&dir)
            .env(FORM, form)
            .env("FLUJO_COST_LEDGER", form)
            .env("FLUJO_SHUTDOWN_TIMEOUT_MS", "1000")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!("{stdout}\n{stderr}");
        assert!(
            output.status.success(),
            "form {i} ({read_as:?}) made the child fail: {shown}"
        );
        assert!(
            !shown.contains(SECRET),
            "form {i}: its secret was shown:\n{shown}"
        );
        for path in files_under(&dir) {
            assert!(
                !path.to_string_lossy().contains(SECRET),
                "form {i}: a file was named after it: {}",
                path.display()
            );
        }
        // What the child printed after `tag` (the harness may print before it on its line).
        let printed = |tag: &str| {
            shown
                .lines()
                .find_map(|line| line.find(tag).map(|at| &line[at..]))
                .unwrap_or_else(|| panic!("form {i}: no {tag:?} line:\n{shown}"))
                .to_owned()
        };
        let (parsed, builder, env) = (printed("parsed: "), printed("builder: "), printed("env: "));
        match read_as {
            Some(true) => {
                assert!(parsed.contains("Postgres("), "form {i}: {parsed}");
                assert_eq!(builder, "builder: started", "form {i}: {shown}");
                assert_eq!(env, "env: started", "form {i}: {shown}");
                assert!(
                    stderr.contains("cannot be reached"),
                    "form {i}: the unreachable database is said: {stderr}"
                );
            }
            Some(false) => {
                assert!(parsed.contains("File("), "form {i}: {parsed}");
                assert_eq!(builder, "builder: started", "form {i}: {shown}");
                assert!(dir.join("costs.sqlite").exists());
            }
            None => {
                assert!(builder.contains("cost ledger"), "form {i}: {builder}");
                assert!(env.contains("cost ledger"), "form {i}: {env}");
                assert!(
                    files_under(&dir).is_empty(),
                    "form {i}: a refused form created files: {:?}",
                    files_under(&dir)
                );
            }
        }
        println!("form {i}: {}", parsed.trim_start_matches("parsed: "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
