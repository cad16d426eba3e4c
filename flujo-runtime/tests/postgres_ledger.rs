//! The PostgreSQL cost ledger against a real server (started here, see
//! `support/postgres_server.rs`): four processes writing at once, the fleet's daily limit
//! honoured by four processes, a server crashed and restarted mid-run, schema migrations
//! from an empty database and from the previous version, and credentials never printed.
//!
//! Scenarios that need processes of their own (several replicas, a log on stderr) re-run
//! this test binary as the child.

#[path = "support/postgres_server.rs"]
mod postgres_server;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use flujo::cost::{CostLedger, Limit, WhenUnreachable, utc_today};
use flujo::testing::Capture;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, Usd, pipeline_step, track_cost};
use postgres_server::Server;

const SCENARIO: &str = "FLUJO_TEST_PG_SCENARIO";
const URL: &str = "FLUJO_TEST_PG_URL";

/// Telemetry is process-wide: the in-process tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[track_cost(model = "gpt-4o-mini")]
fn call(input_tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(input_tokens, 10))
}

#[pipeline_step]
fn summarize(input_tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    call(input_tokens)
}

/// The cost of one `call(1_000)`: the limit test's unit.
fn cost_of_a_call() -> Usd {
    let capture = Capture::start();
    call(1_000).unwrap();
    capture.cost_records()[0].cost.unwrap()
}

fn run_child(scenario: &str, url: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child", "--test-threads", "1", "--nocapture"])
        .env(SCENARIO, scenario)
        .env(URL, url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// The numbers a child printed after `tag`.
fn numbers(output: &Output, tag: &str) -> Vec<u64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.find(tag).map(|at| &line[at + tag.len()..]))
        .unwrap_or_else(|| {
            panic!(
                "no {tag} line: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    line.split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect()
}

const WRITER_CALLS: u64 = 3_000;

/// The replicas' scenarios, run in child processes with the ledger's URL in `URL`.
#[test]
fn child() {
    let (Ok(scenario), Ok(url)) = (std::env::var(SCENARIO), std::env::var(URL)) else {
        return; // Not a child: the tests below drive this.
    };
    match scenario.as_str() {
        "writer" => {
            let capture = Capture::start();
            let guard =
                flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str()))
                    .unwrap();
            for i in 0..WRITER_CALLS {
                if i % 2 == 0 {
                    summarize(1 + i % 7).unwrap();
                } else {
                    call(1 + i % 11).unwrap();
                }
            }
            drop(guard);
            let records = capture.cost_records();
            let nanos: u64 = records.iter().map(|r| r.cost.unwrap().nanos()).sum();
            let input: u64 = records.iter().map(|r| r.usage.input).sum();
            println!("WROTE {} {nanos} {input}", records.len());
        }
        "limited" => {
            let limit = std::env::var("FLUJO_TEST_LIMIT").unwrap();
            let guard = flujo::init_telemetry_with(
                TelemetryConfig::builder()
                    .cost_ledger(url.as_str())
                    .daily_cost_limit_usd(Usd::parse(&limit).unwrap())
                    .cost_ledger_refresh(REFRESH),
            )
            .unwrap();
            let (mut made, mut refusal) = (0u64, None);
            // Until refused (a bounded number of calls, so that a broken limit fails the
            // test rather than hang it).
            for _ in 0..100_000 {
                match call(1_000) {
                    Ok(_) => made += 1,
                    Err(refused) => {
                        refusal = Some(refused);
                        break;
                    }
                }
                std::thread::sleep(CALL_TIME);
            }
            drop(guard);
            let daily = matches!(refusal.map(|r| r.limit), Some(Limit::DailyCost { .. }));
            println!("MADE {made} {}", u64::from(daily));
        }
        "outage" => outage(&url),
        "stalled" => stalled(&url),
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn four_processes_write_at_once_and_the_report_is_exact_to_the_nano_dollar() {
    let server = Server::start("four-writers");
    // A new database: the four replicas also race to create the schema.
    let url = server.create_database("four_writers");
    let children: Vec<_> = (0..4).map(|_| run_child("writer", &url, &[])).collect();
    let (mut records, mut nanos, mut input) = (0, 0, 0);
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wrote = numbers(&output, "WROTE ");
        records += wrote[0];
        nanos += wrote[1];
        input += wrote[2];
    }
    assert_eq!(records, 4 * WRITER_CALLS);
    let ledger = CostLedger::open(url.as_str()).unwrap();
    let report = ledger.report(utc_today(), utc_today()).unwrap();
    assert_eq!(report.requests, records, "every record of every replica");
    assert_eq!(
        report.total_cost,
        Usd::from_nanos(nanos),
        "exact to the nano-dollar"
    );
    assert_eq!(report.totals().tokens.input, input);
    assert_eq!(report.cost_by_model.len(), 1);
    assert_eq!(report.cost_by_model["gpt-4o-mini"], Usd::from_nanos(nanos));
    let by_step: Usd = report.cost_by_step.values().copied().sum();
    assert_eq!(by_step, report.total_cost);
    let in_step = report.cost_by_step["summarize"];
    assert!(
        in_step < report.total_cost && in_step > Usd::ZERO,
        "{report:?}"
    );
    assert_eq!(
        ledger.records(utc_today(), utc_today()).unwrap().len() as u64,
        records
    );
    // The fleet's spend of the day, which the limits read, agrees with the rows.
    let spend: String = server
        .client("four_writers")
        .query_one("SELECT cost_nano_usd::TEXT FROM flujo_daily_spend", &[])
        .unwrap()
        .get(0);
    assert_eq!(spend, nanos.to_string());
}

/// How often the limited replicas read the fleet's spending, and how long each call takes.
const REFRESH: Duration = Duration::from_millis(200);
const CALL_TIME: Duration = Duration::from_millis(5);

#[test]
fn four_processes_honour_the_fleet_daily_limit_within_the_documented_bound() {
    let server = Server::start("fleet-limit");
    let url = server.create_database("fleet_limit");
    let unit = {
        let _turn = turn();
        cost_of_a_call()
    };
    let limit = Usd::parse("1").unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| run_child("limited", &url, &[("FLUJO_TEST_LIMIT", "1".to_owned())]))
        .collect();
    let mut made = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let numbers = numbers(&output, "MADE ");
        assert_eq!(numbers[1], 1, "each replica was refused by the daily limit");
        made += numbers[0];
    }
    let spent = CostLedger::open(url.as_str())
        .unwrap()
        .report(utc_today(), utc_today())
        .unwrap()
        .total_cost;
    assert_eq!(spent.nanos(), made * unit.nanos());
    // The documented bound: each replica overshoots by at most what it spends in one refresh
    // interval plus the write of a batch (allowed another interval here), and one call in
    // flight. At one call per CALL_TIME each:
    let calls_per_window = (2 * REFRESH.as_millis() / CALL_TIME.as_millis()) as u64 + 1;
    let bound = Usd::from_nanos(limit.nanos() + 4 * calls_per_window * unit.nanos());
    println!(
        "fleet limit {limit}: spent {spent} (over by {}), bound {bound}; without the fleet's \
         totals four replicas could spend {}",
        Usd::from_nanos(spent.nanos().saturating_sub(limit.nanos())),
        Usd::from_nanos(4 * limit.nanos())
    );
    assert!(spent >= limit, "the limit was reached: {spent}");
    assert!(spent <= bound, "spent {spent}, over the bound {bound}");
}

const OUTAGE_BUFFER: usize = 300;
const BEFORE_CRASH: u64 = 100;
const DURING_OUTAGE: u64 = 1_000;

/// In a child: records before a crash of the server, a crash (the parent crashes it when
/// told on stdout, and says on stdin when it restarted), records during the outage, then a
/// shutdown once the server is back.
fn outage(url: &str) {
    let capture = Capture::start();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(url)
            .cost_ledger_buffer(OUTAGE_BUFFER)
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    for _ in 0..BEFORE_CRASH {
        call(1).unwrap();
    }
    // Committed before the crash: a report waits for the writer.
    let before = flujo::cost::get_cost_report(utc_today(), utc_today()).unwrap();
    assert_eq!(before.requests, BEFORE_CRASH);
    use std::io::{BufRead, Write};
    println!("CRASH NOW");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "crashed");
    let started = Instant::now();
    for _ in 0..DURING_OUTAGE {
        call(1).unwrap();
    }
    let calls_took = started.elapsed();
    println!("OUTAGE_CALLS_DONE");
    std::io::stdout().flush().unwrap();
    line.clear();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "restarted");
    drop(guard);
    let dropped = capture.counter(
        "flujo_cost_records_dropped_total",
        &[("reason", "ledger_unreachable")],
    ) + capture.counter(
        "flujo_cost_records_dropped_total",
        &[("reason", "ledger_queue_full")],
    );
    println!(
        "OUTAGE {dropped} {} {}",
        capture.counter("flujo_cost_ledger_write_errors_total", &[]),
        calls_took.as_millis()
    );
}

#[test]
fn a_server_crashed_mid_run_gets_every_record_that_fit_the_buffer_and_the_rest_is_counted() {
    use std::io::{BufRead, BufReader, Write};
    let mut server = Server::start("outage");
    let url = server.create_database("outage");
    let mut child = run_child("outage", &url, &[]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut wait_for = |what: &str, seen: &mut String| loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the child ended before {what}: {seen}"
        );
        seen.push_str(&line);
        if line.contains(what) {
            return;
        }
    };
    wait_for("CRASH NOW", &mut seen);
    server.crash();
    writeln!(stdin, "crashed").unwrap();
    wait_for("OUTAGE_CALLS_DONE", &mut seen);
    // Down a while longer: the writer retries with backoff meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    server.run();
    writeln!(stdin, "restarted").unwrap();
    wait_for("OUTAGE ", &mut seen);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    seen.push_str(&rest);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{seen}\n{stderr}");
    let line = seen.lines().find(|l| l.starts_with("OUTAGE ")).unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (dropped, write_errors) = (numbers[0], numbers[1]);
    println!("{line} (dropped, write errors, ms of the outage's calls)");

    let rows: i64 = server
        .client("outage")
        .query_one("SELECT COUNT(*) FROM cost_records", &[])
        .unwrap()
        .get(0);
    let buffered = OUTAGE_BUFFER as u64;
    assert_eq!(
        rows as u64,
        BEFORE_CRASH + buffered,
        "what came before the crash and what fit the buffer arrived: {stderr}"
    );
    assert_eq!(dropped, DURING_OUTAGE - buffered, "the rest is counted");
    assert!(write_errors >= 1);
    assert_eq!(
        stderr.matches("the cost ledger's buffer is full").count(),
        1,
        "the overflow is logged once: {stderr}"
    );
    assert!(
        stderr.contains("could not write cost records; retrying"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cost records are written again"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&server.password) && !seen.contains(&server.password),
        "the password is never printed: {stderr}"
    );
    assert!(
        stderr.contains("postgres://flujo:***@127.0.0.1"),
        "{stderr}"
    );
}

/// What this build's schema holds after `url` was opened by flujo.
fn schema_version(server: &Server, database: &str) -> i32 {
    server
        .client(database)
        .query_one("SELECT version FROM flujo_schema", &[])
        .unwrap()
        .get(0)
}

#[test]
fn an_empty_database_is_migrated_to_the_current_schema() {
    let server = Server::start("migrate-empty");
    let url = server.create_database("empty");
    let _turn = turn();
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str())).unwrap();
    call(5).unwrap();
    drop(guard);
    assert_eq!(
        schema_version(&server, "empty"),
        flujo::cost::POSTGRES_SCHEMA_VERSION
    );
    let report = CostLedger::open(url.as_str())
        .unwrap()
        .report(utc_today(), utc_today())
        .unwrap();
    assert_eq!(report.requests, 1);
    // Opening again leaves it as it is.
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str())).unwrap();
    drop(guard);
    assert_eq!(
        schema_version(&server, "empty"),
        flujo::cost::POSTGRES_SCHEMA_VERSION
    );
}

#[test]
fn a_ledger_of_the_previous_schema_version_is_migrated_keeping_its_rows() {
    let server = Server::start("migrate-v1");
    let url = server.create_database("v1");
    // The previous version exactly as it was released: its migration file, never changed.
    let mut client = server.client("v1");
    client
        .batch_execute(include_str!("../src/ledger/postgres/001_cost_records.sql"))
        .unwrap();
    client
        .batch_execute(
            "CREATE TABLE flujo_schema (version INTEGER NOT NULL);
             INSERT INTO flujo_schema VALUES (1);
             INSERT INTO cost_records (timestamp_ns, day, model, provider, operation,
                 input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens,
                 reasoning_output_tokens, cost_nano_usd, price_version)
             VALUES (1700000000000000000, '2023-11-14', 'gpt-4o', 'openai', 'chat',
                     100, 10, 0, 0, 0, 350000, 'v1'),
                    (1700000001000000000, '2023-11-14', 'gpt-4o', 'openai', 'chat',
                     200, 20, 0, 0, 0, 700000, 'v1'),
                    (1700086400000000000, '2023-11-15', 'acme', 'acme', 'chat',
                     5, 5, 0, 0, 0, NULL, 'v1');",
        )
        .unwrap();
    {
        let _turn = turn();
        let guard =
            flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str()))
                .unwrap();
        call(7).unwrap();
        drop(guard);
    }
    assert_eq!(
        schema_version(&server, "v1"),
        flujo::cost::POSTGRES_SCHEMA_VERSION
    );
    let ledger = CostLedger::open(url.as_str()).unwrap();
    let old = ledger.report("2023-11-14", "2023-11-15").unwrap();
    assert_eq!(old.requests, 3);
    assert_eq!(old.total_cost, Usd::from_nanos(1_050_000));
    assert_eq!(old.unpriced_requests.get("acme"), Some(&1));
    assert_eq!(old.totals().tokens.cache_write_1h_input, 0);
    assert_eq!(ledger.records("2023-11-14", "2023-11-14").unwrap().len(), 2);
    assert_eq!(ledger.report(utc_today(), utc_today()).unwrap().requests, 1);
    // The fleet's spend per day was summed from the old rows.
    let spend: String = client
        .query_one(
            "SELECT cost_nano_usd::TEXT FROM flujo_daily_spend WHERE day = '2023-11-14'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(spend, "1050000");
}

#[test]
fn a_wrong_password_is_an_error_at_init_that_never_shows_it() {
    let server = Server::start("credentials");
    let wrong = format!(
        "postgres://flujo:not-{}@127.0.0.1:{}/postgres",
        server.password, server.port
    );
    let _turn = turn();
    let config = TelemetryConfig::builder().cost_ledger(wrong.as_str());
    let shown = format!("{config:?} {:?}", config.resolve().unwrap());
    assert!(!shown.contains(&server.password), "{shown}");
    let error = flujo::init_telemetry_with(config).map(drop).unwrap_err();
    let message = format!("{error} {error:?}");
    assert!(!message.contains(&server.password), "{message}");
    assert!(
        message.contains("postgres://flujo:***@127.0.0.1"),
        "{message}"
    );
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    // A ledger opened for reading names the URL the same way.
    let error = CostLedger::open(wrong.as_str()).unwrap_err().to_string();
    assert!(
        !error.contains(&server.password) && error.contains("***"),
        "{error}"
    );
}

/// A port nothing listens on.
fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://flujo:secret-pw@127.0.0.1:{port}/costs")
}

#[test]
fn an_unreachable_database_fails_closed_only_when_told_and_counts_what_it_let_through() {
    let _turn = turn();
    for when in [WhenUnreachable::Open, WhenUnreachable::Closed] {
        let capture = Capture::start();
        let guard = flujo::init_telemetry_with(
            TelemetryConfig::builder()
                .cost_ledger(unreachable_url().as_str())
                .daily_cost_limit_usd(Usd::parse("100").unwrap())
                .cost_ledger_unreachable(when)
                .shutdown_timeout(Duration::from_millis(100)),
        )
        .expect("a database that cannot be reached does not stop the application");
        let result = call(10);
        match when {
            WhenUnreachable::Open => {
                result.expect("fail open: the call goes on");
                assert_eq!(
                    capture.counter("flujo_budget_unverified_total", &[("limit", "daily_cost")]),
                    1
                );
            }
            _ => {
                let refused = result.unwrap_err();
                assert!(
                    matches!(refused.limit, Limit::LedgerUnreachable { .. }),
                    "{refused}"
                );
                assert!(
                    refused
                        .to_string()
                        .contains("FLUJO_COST_LEDGER_UNREACHABLE=closed")
                );
                assert_eq!(
                    capture.counter(
                        "flujo_budget_exceeded_total",
                        &[("limit", "ledger_unreachable")]
                    ),
                    1
                );
            }
        }
        drop(guard);
    }
}

#[test]
fn the_monthly_limit_counts_the_fleet_month() {
    let server = Server::start("monthly");
    let url = server.create_database("monthly");
    // Another replica spent $2 this month (earlier today, as far as the ledger says).
    {
        let _turn = turn();
        let guard =
            flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str()))
                .unwrap();
        drop(guard);
    }
    server
        .client("monthly")
        .execute(
            "INSERT INTO flujo_daily_spend VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')::date, 2000000000)
             ON CONFLICT (day) DO UPDATE SET cost_nano_usd = flujo_daily_spend.cost_nano_usd + 2000000000",
            &[],
        )
        .unwrap();
    let _turn = turn();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(url.as_str())
            .monthly_cost_limit_usd(Usd::parse("1.50").unwrap()),
    )
    .unwrap();
    let refused = call(10).unwrap_err();
    match refused.limit {
        Limit::MonthlyCost { limit, spent } => {
            assert_eq!(limit, Usd::parse("1.50").unwrap());
            assert!(spent >= Usd::parse("2").unwrap(), "{spent}");
        }
        other => panic!("{other:?}"),
    }
    drop(guard);
}

#[test]
fn calls_never_wait_on_a_database_that_is_stuck() {
    let server = Server::start("stuck");
    let url = server.create_database("stuck");
    let _turn = turn();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(url.as_str())
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    call(1).unwrap();
    flujo::cost::get_cost_report(utc_today(), utc_today()).unwrap();
    // Another session holds the table: every write of the ledger waits on it.
    let mut blocker = server.client("stuck");
    let mut lock = blocker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE cost_records IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (done, calls_done) = std::sync::mpsc::channel();
    let calls = std::thread::spawn(move || {
        for _ in 0..5_000 {
            call(1).unwrap();
        }
        done.send(()).unwrap();
    });
    // Were a call to wait for the database, none would end while the lock is held.
    calls_done
        .recv_timeout(Duration::from_secs(60))
        .expect("calls ended while the database could not take a write");
    calls.join().unwrap();
    lock.rollback().unwrap();
    drop(guard);
    let rows: i64 = server
        .client("stuck")
        .query_one("SELECT COUNT(*) FROM cost_records", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 5_001,
        "everything buffered was written once the database moved"
    );
}

/// A TCP proxy in front of the server that loses acknowledgements: it passes every third
/// `COMMIT` of a batch (not a connection's first, the schema's) to the server, waits for the
/// server's answer (the commit has happened) and closes the connection instead of passing
/// the answer on. The writer cannot know whether its batch was committed, and writes it
/// again on a new connection.
struct LostAcks {
    port: u16,
    lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The simple-query message `COMMIT` (what the driver sends to commit a transaction).
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

impl LostAcks {
    fn start(server_port: u16) -> LostAcks {
        use std::net::{TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lost = Arc::new(AtomicU64::new(0));
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&lost);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let cut = Arc::new(AtomicBool::new(false));
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server);
                let (mut from_server, mut to_client) = (to_server.try_clone().unwrap(), client);
                let (commits, lost, cut_here) =
                    (Arc::clone(&commits), Arc::clone(&counted), Arc::clone(&cut));
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buffer = vec![0u8; 1 << 16];
                    let mut first_commit = true;
                    while let Ok(n) = from_client.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buffer[..n];
                        if chunk.windows(COMMIT.len()).any(|w| w == COMMIT)
                            && !std::mem::replace(&mut first_commit, false)
                            && commits.fetch_add(1, Ordering::SeqCst) % 3 == 0
                        {
                            lost.fetch_add(1, Ordering::SeqCst);
                            cut_here.store(true, Ordering::SeqCst);
                        }
                        if to_server.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buffer = vec![0u8; 1 << 16];
                    while let Ok(n) = from_server.read(&mut buffer) {
                        // The client sends nothing before the answer to its COMMIT: what
                        // arrives once the cut is set is that answer.
                        if n == 0 || cut.load(Ordering::SeqCst) {
                            break;
                        }
                        if to_client.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                    let _ = from_server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        LostAcks { port, lost }
    }

    fn lost(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const LOST_ACK_RUNS: u32 = 5;
const LOST_ACK_CALLS: u64 = 2_000;

#[test]
fn a_batch_whose_commit_was_not_acknowledged_is_stored_once_exact_to_the_nano_dollar() {
    let server = Server::start("lost-acks");
    let proxy = LostAcks::start(server.port);
    let _turn = turn();
    for run in 0..LOST_ACK_RUNS {
        let database = format!("lost_acks_{run}");
        let url = server
            .create_database(&database)
            .replace(&format!(":{}/", server.port), &format!(":{}/", proxy.port));
        let lost_before = proxy.lost();
        let capture = Capture::start();
        let guard = flujo::init_telemetry_with(
            TelemetryConfig::builder()
                .cost_ledger(url.as_str())
                .shutdown_timeout(Duration::from_secs(60)),
        )
        .unwrap();
        // In bursts, so that the writer commits many batches.
        for i in 0..LOST_ACK_CALLS {
            call(1 + i % 13).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(15));
            }
        }
        drop(guard);
        let nanos: u64 = capture
            .cost_records()
            .iter()
            .map(|r| r.cost.unwrap().nanos())
            .sum();
        assert_eq!(capture.cost_records().len() as u64, LOST_ACK_CALLS);
        let mut client = server.client(&database);
        let row = client
            .query_one(
                "SELECT COUNT(*), SUM(cost_nano_usd)::TEXT, COUNT(DISTINCT record_id) \
                 FROM cost_records",
                &[],
            )
            .unwrap();
        let (rows, stored, distinct): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
        let spend: String = client
            .query_one(
                "SELECT SUM(cost_nano_usd)::TEXT FROM flujo_daily_spend",
                &[],
            )
            .unwrap()
            .get(0);
        let lost = proxy.lost() - lost_before;
        println!("run {run}: {lost} acknowledgements lost, {rows} rows for {LOST_ACK_CALLS} calls");
        assert!(lost >= 1, "run {run}: the proxy lost no acknowledgement");
        assert_eq!(rows as u64, LOST_ACK_CALLS, "run {run}: one row per call");
        assert_eq!(distinct, rows, "run {run}: every row has its own identity");
        assert_eq!(stored, nanos.to_string(), "run {run}: the stored total");
        assert_eq!(
            spend,
            nanos.to_string(),
            "run {run}: the fleet's daily spend"
        );
    }
}

const STALLED_CALLS: u64 = 3_000;
const STALLED_SHUTDOWN: Duration = Duration::from_millis(800);

/// In a child: the ledger's table is locked by another session (every write waits), calls
/// go on, and the guard is dropped with a short shutdown timeout.
fn stalled(url: &str) {
    let capture = Capture::start();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(url)
            .shutdown_timeout(STALLED_SHUTDOWN),
    )
    .unwrap();
    call(1).unwrap();
    flujo::cost::get_cost_report(utc_today(), utc_today()).unwrap();
    let mut blocker = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut lock = blocker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE cost_records IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    for _ in 0..STALLED_CALLS {
        call(1).unwrap();
    }
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    let dropped = capture.counter(
        "flujo_cost_records_dropped_total",
        &[("reason", "shutdown")],
    );
    println!("STALLED {dropped} {}", took.as_millis());
    lock.rollback().unwrap();
}

#[test]
fn a_shutdown_with_the_database_stalled_waits_its_timeout_and_counts_what_it_let_go() {
    let server = Server::start("stalled");
    let url = server.create_database("stalled");
    let child = run_child("stalled", &url, &[]);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let numbers = numbers(&output, "STALLED ");
    let (dropped, took_ms) = (numbers[0], numbers[1]);
    let warning = stderr
        .lines()
        .find(|line| line.contains("did not deliver everything"))
        .unwrap_or_else(|| panic!("the shutdown says what it let go:\n{stderr}"));
    let said: u64 = warning
        .split_whitespace()
        .find_map(|word| word.strip_prefix("cost_records=")?.parse().ok())
        .unwrap_or_else(|| panic!("{warning}"));
    println!("stalled database: {dropped} records let go, shutdown took {took_ms} ms");
    assert_eq!(
        said, STALLED_CALLS,
        "nothing of the stalled calls was written"
    );
    assert_eq!(dropped, said, "the WARN line and the counter agree");
    assert!(
        took_ms < STALLED_SHUTDOWN.as_millis() as u64 + 300,
        "the shutdown waited {took_ms} ms, past its timeout of {STALLED_SHUTDOWN:?}"
    );
    let rows: i64 = server
        .client("stalled")
        .query_one("SELECT COUNT(*) FROM cost_records", &[])
        .unwrap()
        .get(0);
    assert!(
        rows as u64 <= 1 + STALLED_CALLS,
        "nothing is written twice: {rows}"
    );
}
