//! The SQLite cost ledger under faults: bad paths and files are errors at init, a full disk
//! loses only what it must (said and counted) and keeps writing what fits, and a writer
//! killed with SIGKILL loses at most the documented window of calls, only at the end.
//!
//! The scenarios that need the operating system's help run in child processes: a read-only
//! file is read-only even to root once the child has no DAC override capability (`setpriv`),
//! and a full disk is a small tmpfs mounted in the child's own mount namespace (`unshare`).
#![cfg(feature = "sqlite")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flujo::testing::Capture;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, track_cost};

/// A SQLite ledger's buffer, in records, as the guide's ledgers page and the settings table
/// document it (FLUJO_COST_LEDGER_BUFFER's default).
const MAX_QUEUED_COST_RECORDS: u64 = 4096;
/// What a killed process may lose of its durable ledger, as the guide's ledgers page promises.
const KILL_LOSS_WINDOW: Duration = Duration::from_millis(300);

/// Which scenario a child process runs, and where (the ledger's directory).
const CHILD: &str = "FLUJO_TEST_LEDGER_FAULT";
const CHILD_DIR: &str = "FLUJO_TEST_LEDGER_DIR";

#[track_cost(model = "gpt-4o-mini")]
fn call(input_tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(input_tokens, 1))
}

/// Telemetry is process-wide: the in-process tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flujo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rows(path: &Path) -> u64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM cost_records", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap() as u64
}

fn init_error(path: &Path) -> String {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    match flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(path)) {
        Ok(_) => panic!("a ledger at {} was accepted", path.display()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_ledger_in_a_missing_directory_is_an_error_naming_it() {
    let dir = fresh_dir("ledger-missing-dir");
    let path = dir.join("no/such/dir/ledger.sqlite");
    let error = init_error(&path);
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("directory") && error.contains("does not exist"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_as_the_ledger_is_an_error_naming_it() {
    let dir = fresh_dir("ledger-is-dir");
    let error = init_error(&dir);
    assert!(error.contains(&dir.display().to_string()), "{error}");
    assert!(error.contains("is a directory"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_that_is_not_sqlite_is_an_error_naming_it() {
    let dir = fresh_dir("ledger-not-sqlite");
    let path = dir.join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    let error = init_error(&path);
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("not a SQLite"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "these are my notes, not a database\n".repeat(200),
        "the file is left as it was"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn child_dir() -> Option<(String, PathBuf)> {
    let scenario = std::env::var(CHILD).ok()?;
    Some((scenario, PathBuf::from(std::env::var_os(CHILD_DIR)?)))
}

/// Runs the test `child` of this binary in a child process with `scenario` and `dir`,
/// through `wrapper` (a command and its arguments, or nothing).
fn run_child(wrapper: &[&str], scenario: &str, dir: &Path) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    let output = command
        .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env(CHILD, scenario)
        .env(CHILD_DIR, dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{scenario} child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
}

/// The scenarios, in a child process started by the tests below.
#[test]
fn child() {
    let Some((scenario, dir)) = child_dir() else {
        return; // Not a child.
    };
    match scenario.as_str() {
        "read-only" => {
            let path = dir.join("ledger.sqlite");
            let Err(error) =
                flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path))
            else {
                panic!("a read-only ledger is refused at init");
            };
            println!("ERROR: {error}");
        }
        "disk-full-recovers" => disk_full_recovers(&dir),
        "disk-full-stays" => disk_full_stays(&dir),
        "killed" => write_until_killed(&dir),
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn a_read_only_ledger_file_is_an_error_at_init_not_lost_records_later() {
    let dir = fresh_dir("ledger-read-only");
    let path = dir.join("ledger.sqlite");
    {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let guard =
            flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap();
        call(1).unwrap();
        drop(guard);
    }
    // A read-only file in a writable directory.
    set_mode(&path, 0o444);
    set_mode(&dir, 0o777);
    // Root writes any file; without the DAC override capability it obeys the mode.
    let wrapper: &[&str] = if is_root() {
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &[]
    };
    let output = run_child(wrapper, "read-only", &dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ERROR: "), "{stdout}");
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    assert!(
        stdout.contains("read-only") || stdout.contains("cannot be written"),
        "{stdout}"
    );
    assert_eq!(rows(&path), 1, "the ledger is untouched");
    set_mode(&path, 0o644);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `scenario` in a child with a `size` tmpfs mounted at `dir` in its own mount namespace.
fn run_on_small_disk(scenario: &str, dir: &Path, size: &str) -> Output {
    let mount = format!("mount -t tmpfs -o size={size} flujo-test \"$0\" && exec \"$@\"");
    let dir_text = dir.display().to_string();
    run_child(
        &[
            "unshare",
            "--mount",
            "--map-root-user",
            "--propagation",
            "private",
            "sh",
            "-c",
            &mount,
            &dir_text,
        ],
        scenario,
        dir,
    )
}

/// The numbers of a full-disk child's `ROWS ...` line (printed), and its stderr.
fn report_of(output: &Output) -> (Vec<u64>, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let line = stdout
        .lines()
        .find_map(|line| line.find("ROWS ").map(|at| &line[at..]))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    println!("{line}");
    let numbers = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers, stderr)
}

/// Fills `dir` with a file of `bytes`, leaving the rest of the small disk free.
fn fill(dir: &Path, bytes: usize) -> PathBuf {
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![7u8; bytes]).unwrap();
    filler
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Telemetry with a ledger in `dir` and a capture: the ledger's path, the capture, the guard.
fn ledger_on(dir: &Path, shutdown: Duration) -> (PathBuf, Capture, flujo::TelemetryGuard) {
    let path = dir.join("ledger.sqlite");
    let capture = Capture::start();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(&path)
            .shutdown_timeout(shutdown),
    )
    .unwrap();
    (path, capture, guard)
}

/// Fewer than the writer holds while it cannot write ([`MAX_QUEUED_COST_RECORDS`]).
const DISK_FULL_CALLS: u64 = 3_000;
const AFTER_RECOVERY_CALLS: u64 = 1_000;

/// The disk fills up while calls go on: writes fail (said, counted, retried); once space is
/// freed the writer commits everything it held, and every call is in the ledger.
fn disk_full_recovers(dir: &Path) {
    let (path, capture, guard) = ledger_on(dir, Duration::from_secs(20));
    let filler = fill(dir, 1_600 << 10);
    for i in 0..DISK_FULL_CALLS {
        call(i).unwrap();
    }
    wait_until("a failed write", Duration::from_secs(20), || {
        capture.counter("flujo_cost_ledger_write_errors_total", &[]) > 0
    });
    std::fs::remove_file(filler).unwrap();
    for i in 0..AFTER_RECOVERY_CALLS {
        call(DISK_FULL_CALLS + i).unwrap();
    }
    drop(guard);
    println!(
        "ROWS {} ERRORS {} REFUSED {}",
        rows(&path),
        capture.counter("flujo_cost_ledger_write_errors_total", &[]),
        capture.counter(
            "flujo_cost_records_dropped_total",
            &[("reason", "ledger_unwritable")]
        )
    );
}

#[test]
fn a_full_disk_delays_records_until_space_is_freed_and_loses_none() {
    let dir = fresh_dir("ledger-disk-full");
    let (numbers, stderr) = report_of(&run_on_small_disk("disk-full-recovers", &dir, "2m"));
    assert_eq!(
        numbers[0],
        DISK_FULL_CALLS + AFTER_RECOVERY_CALLS,
        "every record is in the ledger once space is freed: {stderr}"
    );
    assert!(numbers[1] >= 1, "the full disk made writes fail");
    assert_eq!(numbers[2], 0, "nothing was refused");
    assert!(
        stderr.contains("could not write cost records; retrying"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cost records are written again"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const STAYS_FULL_CALLS: u64 = 40_000;
const STAYS_FULL_SHUTDOWN: Duration = Duration::from_millis(500);

/// The disk stays full: the writer's queue fills, later records are refused (counted), and
/// the shutdown says how many records the ledger did not write.
fn disk_full_stays(dir: &Path) {
    let (path, capture, guard) = ledger_on(dir, STAYS_FULL_SHUTDOWN);
    fill(dir, 1_900 << 10);
    // Calls until a write fails: from then on a full queue refuses rather than waits.
    let mut i = 0;
    wait_until("a failed write", Duration::from_secs(20), || {
        call(i).unwrap();
        i += 1;
        capture.counter("flujo_cost_ledger_write_errors_total", &[]) > 0
    });
    let started = Instant::now();
    for i in i..STAYS_FULL_CALLS {
        call(i).unwrap();
    }
    let calls_took = started.elapsed();
    let dropping = Instant::now();
    drop(guard);
    let drop_took = dropping.elapsed();
    println!(
        "ROWS {} REFUSED {} CALLS_MS {} SHUTDOWN {} DROP_MS {}",
        rows(&path),
        capture.counter(
            "flujo_cost_records_dropped_total",
            &[("reason", "ledger_unwritable")]
        ),
        calls_took.as_millis(),
        capture.counter(
            "flujo_cost_records_dropped_total",
            &[("reason", "shutdown")]
        ),
        drop_took.as_millis()
    );
}

/// The number after `key=` in `line`.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn a_disk_that_stays_full_refuses_beyond_the_queue_and_says_how_many_at_exit() {
    let dir = fresh_dir("ledger-disk-stays-full");
    let (numbers, stderr) = report_of(&run_on_small_disk("disk-full-stays", &dir, "2m"));
    let (stored, refused, calls_ms) = (numbers[0], numbers[1], numbers[2]);
    let (let_go, drop_ms) = (numbers[3], numbers[4]);
    let unwritten_line = stderr
        .lines()
        .find(|line| line.contains("the cost ledger could not write"))
        .unwrap_or_else(|| panic!("the shutdown says what was not written:\n{stderr}"));
    assert_eq!(field(unwritten_line, "cost_records"), refused);
    let shutdown_line = stderr
        .lines()
        .find(|line| line.contains("did not deliver everything"))
        .unwrap_or_else(|| panic!("the shutdown says what was not committed:\n{stderr}"));
    let uncommitted = field(shutdown_line, "cost_records");
    assert!(refused > 0, "records beyond the full queue are refused");
    assert!(
        uncommitted <= MAX_QUEUED_COST_RECORDS * 2,
        "what was held is bounded: {uncommitted}"
    );
    assert_eq!(
        stored + refused + uncommitted,
        STAYS_FULL_CALLS,
        "every record is stored, refused or said uncommitted"
    );
    assert!(
        calls_ms < 10_000,
        "calls never wait on a disk that failed: {calls_ms} ms"
    );
    assert_eq!(
        let_go, uncommitted,
        "what the shutdown let go is counted, as the WARN line says"
    );
    assert!(
        drop_ms < STAYS_FULL_SHUTDOWN.as_millis() as u64 + 300,
        "the shutdown waited {drop_ms} ms, past its timeout of {STAYS_FULL_SHUTDOWN:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Checkpoints a writer prints: every this many calls, its call index and the time.
const CHECKPOINT_EVERY: u64 = 1_000;
/// Threads writing in the killed child; call `i` of thread `t` reports `i * WRITERS + t + 1`
/// input tokens, so that every stored record names its call.
const WRITERS: u64 = 2;

/// Writes cost records as fast as two threads can, printing checkpoints, until killed.
fn write_until_killed(dir: &Path) {
    let path = dir.join("ledger.sqlite");
    let _guard = flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap();
    println!("READY");
    let threads: Vec<_> = (0..WRITERS)
        .map(|thread| {
            std::thread::spawn(move || {
                for i in 0.. {
                    call(i * WRITERS + thread + 1).unwrap();
                    if i % CHECKPOINT_EVERY == 0 {
                        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                        println!("CHECKPOINT {thread} {i} {}", now.as_nanos());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn a_killed_writer_loses_at_most_the_documented_window_and_only_at_the_end() {
    let dir = fresh_dir("ledger-killed");
    let path = dir.join("ledger.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "killed")
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut checkpoints: Vec<Vec<(u64, u128)>> = vec![Vec::new(); WRITERS as usize];
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["CHECKPOINT", thread, i, nanos] = words[..] {
                checkpoints[thread.parse::<usize>().unwrap()]
                    .push((i.parse().unwrap(), nanos.parse().unwrap()));
            }
        }
        checkpoints
    });
    std::thread::sleep(Duration::from_millis(2_500));
    let killed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let checkpoints = reader.join().unwrap();

    // The ledger opens, for flujo and for reports, after the kill.
    {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        drop(flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap());
    }
    let report = flujo::cost::CostLedger::open(&path)
        .unwrap()
        .report(flujo::cost::utc_today(), flujo::cost::utc_today())
        .unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    let mut statement = connection
        .prepare("SELECT input_tokens FROM cost_records")
        .unwrap();
    let mut stored: Vec<Vec<u64>> = vec![Vec::new(); WRITERS as usize];
    for tokens in statement.query_map([], |row| row.get::<_, i64>(0)).unwrap() {
        let tokens = tokens.unwrap() as u64 - 1;
        stored[(tokens % WRITERS) as usize].push(tokens / WRITERS);
    }
    assert_eq!(
        report.requests,
        stored.iter().map(Vec::len).sum::<usize>() as u64
    );

    let mut worst_ms = 0.0f64;
    let mut lost = 0;
    for (thread, (stored, checkpoints)) in stored.iter_mut().zip(&checkpoints).enumerate() {
        stored.sort_unstable();
        let issued = checkpoints.last().expect("the writer made calls").0;
        // Every call before the last checkpoint that is not stored: lost by the kill. It
        // ended no earlier than the checkpoint before it.
        let mut next = 0;
        for i in 0..issued {
            if stored.get(next) == Some(&i) {
                next += 1;
                continue;
            }
            lost += 1;
            let before = checkpoints[(i / CHECKPOINT_EVERY) as usize];
            assert_eq!(before.0, i / CHECKPOINT_EVERY * CHECKPOINT_EVERY);
            let age_ms = (killed_at.saturating_sub(before.1)) as f64 / 1e6;
            worst_ms = worst_ms.max(age_ms);
            assert!(
                age_ms <= KILL_LOSS_WINDOW.as_secs_f64() * 1e3,
                "thread {thread}: call {i} ended {age_ms:.0} ms before the kill and is missing \
                 (window {:?})",
                KILL_LOSS_WINDOW
            );
        }
        assert!(
            stored.len() as u64 >= issued / 2,
            "the ledger kept up: {}",
            stored.len()
        );
    }
    println!(
        "stored {}, lost {lost}, oldest lost call ended {worst_ms:.0} ms before the kill",
        report.requests
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
