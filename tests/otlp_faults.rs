//! Fault injection against a real collector (rotel) while a steady load runs: the collector
//! absent at start, killed and restarted, stalled (SIGSTOP); and a graceful shutdown after
//! 100,000 spans. Calls never wait on the collector, memory stays bounded, delivery resumes,
//! and every span is exported or counted. Needs the `otlp` feature and rotel.
#![cfg(feature = "otlp")]

mod support;

use std::time::{Duration, Instant};

use support::{Rotel, free_port, resident_bytes};

use flujo::testing::Capture;
use flujo::{TelemetryConfig, TelemetryGuard, init_telemetry_with, pipeline_step};

/// Telemetry is process-wide: the scenarios take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[pipeline_step(fields(i))]
fn work(i: u64) -> u64 {
    i.wrapping_mul(31)
}

/// What a steady load measured.
struct Load {
    calls: u64,
    longest_call: Duration,
}

/// Makes `rate * duration` calls of `work` from this thread, `rate` a second, in bursts of
/// a millisecond's worth; `at` runs between bursts with the time since the start.
fn steady_load(rate: u64, duration: Duration, mut at: impl FnMut(Duration)) -> Load {
    let total = rate * duration.as_millis() as u64 / 1_000;
    let start = Instant::now();
    let mut load = Load {
        calls: 0,
        longest_call: Duration::ZERO,
    };
    while load.calls < total {
        let due = (start.elapsed().as_micros() as u64 * rate / 1_000_000).min(total);
        while load.calls < due {
            let before = Instant::now();
            work(load.calls);
            load.longest_call = load.longest_call.max(before.elapsed());
            load.calls += 1;
        }
        at(start.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    load
}

fn export_to(grpc: u16) -> TelemetryGuard {
    init_telemetry_with(settings(grpc)).unwrap()
}

fn settings(grpc: u16) -> TelemetryConfig {
    TelemetryConfig::builder()
        .export_otlp(true)
        .otlp_endpoint(format!("http://127.0.0.1:{grpc}"))
        .otlp_timeout(Duration::from_millis(500))
        .shutdown_timeout(Duration::from_secs(5))
}

/// Each span the exporter was given is in exactly one counter; returns (exported, counted
/// as lost or unconfirmed).
fn assert_every_span_accounted(capture: &Capture, calls: u64) -> (u64, u64) {
    let recorded = capture.span_count();
    assert_eq!(recorded, calls, "every call's span reached the exporters");
    let dropped =
        |reason| capture.counter("flujo_telemetry_spans_dropped_total", &[("reason", reason)]);
    let exported = capture.counter("flujo_telemetry_spans_exported_total", &[]);
    let unconfirmed = capture.counter("flujo_telemetry_spans_unconfirmed_total", &[]);
    let lost = dropped("export_failed") + dropped("export_queue_full") + dropped("shutdown");
    println!(
        "recorded {recorded}: exported {exported}, unconfirmed {unconfirmed}, failed {}, \
         queue full {}, shutdown {}",
        dropped("export_failed"),
        dropped("export_queue_full"),
        dropped("shutdown")
    );
    assert_eq!(dropped("queue_full"), 0, "the rings kept up");
    assert_eq!(
        exported + unconfirmed + lost,
        recorded,
        "each span in one counter"
    );
    (exported, unconfirmed + lost)
}

/// A call that waited on the network would take about `otlp_timeout` (500 ms).
const NEVER_WAITS: Duration = Duration::from_millis(250);
/// Memory the fault may cost at most: the export queue (at most 64 MiB of spans; these are
/// small) and the rings, with room for the allocator; spans are not kept (a counting capture).
const RSS_BOUND: u64 = 64 << 20;

#[test]
fn a_collector_killed_and_restarted_mid_run() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (grpc, http) = (free_port(), free_port());
    let mut first = Some(Rotel::start_counting_on(grpc, http));
    let mut first_received = 0;
    let mut second: Option<Rotel> = None;
    let mut restarted_at = None;
    let mut resumed_after = None;
    let capture = Capture::counting();
    let guard = export_to(grpc);
    let rss_before = resident_bytes();
    let load = steady_load(10_000, Duration::from_millis(3_000), |elapsed| {
        if elapsed > Duration::from_millis(800)
            && let Some(rotel) = first.take()
        {
            first_received = rotel.received_spans();
            rotel.kill();
        }
        if elapsed > Duration::from_millis(1_600) && second.is_none() {
            second = Some(Rotel::start_counting_on(grpc, http));
            restarted_at = Some(Instant::now());
        }
        if let (Some(rotel), Some(at), None) = (&second, restarted_at, resumed_after)
            && rotel.received_spans() > 0
        {
            resumed_after = Some(at.elapsed());
        }
    });
    let rss_growth = resident_bytes().saturating_sub(rss_before);
    drop(guard);
    let (exported, _) = assert_every_span_accounted(&capture, load.calls);
    let second = second.expect("restarted");
    let second_received = second.wait_for_received(exported.saturating_sub(first_received));
    println!(
        "{} calls, longest {:?}, RSS +{} KiB; rotel before the kill {first_received}, after \
         the restart {second_received}, first delivery {resumed_after:?} after the restart",
        load.calls,
        load.longest_call,
        rss_growth >> 10
    );
    assert!(first_received > 0, "spans arrived before the kill");
    assert!(second_received > 0, "delivery resumes after the restart");
    assert!(
        resumed_after.is_some_and(|after| after < Duration::from_secs(3)),
        "delivery resumed while the load ran: {resumed_after:?}"
    );
    // The first rotel's log may miss what it answered just before SIGKILL took its
    // unwritten lines: at most the request in flight (a batch of 512).
    assert!(
        first_received + second_received + 512 >= exported,
        "what was exported arrived"
    );
    assert!(load.longest_call < NEVER_WAITS, "{:?}", load.longest_call);
    assert!(rss_growth < RSS_BOUND, "RSS grew {} MiB", rss_growth >> 20);
}

#[test]
fn a_collector_stalled_for_three_seconds_mid_run() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (grpc, http) = (free_port(), free_port());
    let rotel = Rotel::start_counting_on(grpc, http);
    let capture = Capture::counting();
    // OpenTelemetry's default queue, which such a stall overflows: the overflow is counted.
    let guard = init_telemetry_with(settings(grpc).max_queue_size(2_048)).unwrap();
    let rss_before = resident_bytes();
    let (mut paused, mut resumed) = (false, false);
    let mut received_at_resume = 0;
    let load = steady_load(10_000, Duration::from_millis(4_500), |elapsed| {
        if elapsed > Duration::from_millis(500) && !paused {
            rotel.pause();
            paused = true;
        }
        if elapsed > Duration::from_millis(3_500) && !resumed {
            received_at_resume = rotel.received_spans();
            rotel.resume();
            resumed = true;
        }
    });
    let rss_growth = resident_bytes().saturating_sub(rss_before);
    drop(guard);
    let (exported, lost) = assert_every_span_accounted(&capture, load.calls);
    let received = rotel.wait_for_received(exported);
    println!(
        "{} calls, longest {:?}, RSS +{} KiB; rotel received {received_at_resume} before it \
         resumed, {received} in all; stalls {}",
        load.calls,
        load.longest_call,
        rss_growth >> 10,
        capture.counter("flujo_telemetry_export_stalls_total", &[])
    );
    assert!(
        lost > 0,
        "a 3 s stall at 10,000 spans/s overflows a 2,048-span queue"
    );
    assert!(
        received > received_at_resume,
        "delivery resumes after the stall"
    );
    assert!(received >= exported, "what was exported arrived");
    assert!(capture.counter("flujo_telemetry_export_stalls_total", &[]) >= 1);
    assert!(load.longest_call < NEVER_WAITS, "{:?}", load.longest_call);
    assert!(rss_growth < RSS_BOUND, "RSS grew {} MiB", rss_growth >> 20);
}

#[test]
fn a_collector_absent_at_start_gets_spans_once_it_listens() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (grpc, http) = (free_port(), free_port());
    let capture = Capture::counting();
    let guard = export_to(grpc);
    let mut rotel: Option<Rotel> = None;
    let load = steady_load(10_000, Duration::from_millis(2_500), |elapsed| {
        if elapsed > Duration::from_millis(1_000) && rotel.is_none() {
            rotel = Some(Rotel::start_counting_on(grpc, http));
        }
    });
    drop(guard);
    let (exported, lost) = assert_every_span_accounted(&capture, load.calls);
    let received = rotel.expect("started").wait_for_received(exported);
    println!(
        "{} calls, longest {:?}; rotel received {received}",
        load.calls, load.longest_call
    );
    assert!(
        lost > 0,
        "spans sent before it listened are counted as failed"
    );
    assert!(
        received > 0 && received >= exported,
        "delivery starts once it listens"
    );
    assert!(load.longest_call < NEVER_WAITS, "{:?}", load.longest_call);
}

#[test]
fn a_graceful_shutdown_delivers_every_one_of_100k_spans() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (grpc, http) = (free_port(), free_port());
    let rotel = Rotel::start_counting_on(grpc, http);
    let capture = Capture::counting();
    let guard = export_to(grpc);
    let load = steady_load(20_000, Duration::from_millis(5_000), |_| {});
    drop(guard);
    let (exported, lost) = assert_every_span_accounted(&capture, load.calls);
    let received = rotel.wait_for_received(exported);
    println!(
        "{} calls; exported {exported}; rotel received {received}",
        load.calls
    );
    assert_eq!(load.calls, 100_000);
    assert_eq!(lost, 0, "nothing lost");
    assert_eq!(exported, load.calls, "every span exported");
    assert!(received >= exported, "and received");
}

/// The default queue rides out a 5 s collector outage at 20,000 spans/s: nothing dropped,
/// within 64 MiB, everything delivered once the collector answers again.
#[test]
fn the_default_queue_survives_a_five_second_outage_at_20k_spans_per_second() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (grpc, http) = (free_port(), free_port());
    let rotel = Rotel::start_counting_on(grpc, http);
    let capture = Capture::counting();
    // Only the endpoint is set: the queue and the 10 s export timeout are the defaults.
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{grpc}"))
            .shutdown_timeout(Duration::from_secs(15)),
    )
    .unwrap();
    let rss_before = resident_bytes();
    let mut peak = 0;
    let (mut paused, mut resumed) = (false, false);
    let load = steady_load(20_000, Duration::from_millis(6_000), |elapsed| {
        if !paused {
            rotel.pause();
            paused = true;
        }
        if elapsed > Duration::from_millis(5_000) && !resumed {
            rotel.resume();
            resumed = true;
        }
        peak = peak.max(resident_bytes());
    });
    drop(guard);
    let (exported, lost) = assert_every_span_accounted(&capture, load.calls);
    let growth = peak.saturating_sub(rss_before);
    println!(
        "{} calls; exported {exported}, lost {lost}; peak RSS +{} MiB",
        load.calls,
        growth >> 20
    );
    assert_eq!(lost, 0, "no span dropped");
    assert_eq!(exported, load.calls);
    assert!(growth <= 64 << 20, "RSS grew {} MiB", growth >> 20);
}
