//! flujo's log lines, captured on the test's thread: the level, message and fields of every
//! event with target `flujo` while the guard of [`capture_logs`] lives.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::{Context, SubscriberExt};

/// One line: its level, message and other fields (as `Debug` writes them; a string without
/// quotes).
type Line = (tracing::Level, String, BTreeMap<String, String>);

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<Line>>>);

impl Logs {
    pub fn lines(&self) -> Vec<(tracing::Level, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(level, message, _)| (*level, message.clone()))
            .collect()
    }

    /// How many lines at `level` have exactly `message`.
    pub fn count(&self, level: tracing::Level, message: &str) -> usize {
        self.lines()
            .iter()
            .filter(|(l, m)| *l == level && m == message)
            .count()
    }

    /// The fields of each line with exactly `message`, in order.
    pub fn fields(&self, message: &str) -> Vec<BTreeMap<String, String>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m, _)| m == message)
            .map(|(_, _, fields)| fields.clone())
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        #[derive(Default)]
        struct Visitor(String, BTreeMap<String, String>);
        impl tracing::field::Visit for Visitor {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.1.insert(field.name().to_owned(), value.to_owned());
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                } else {
                    self.1.insert(field.name().to_owned(), format!("{value:?}"));
                }
            }
        }
        if event.metadata().target() == "flujo" {
            let mut visitor = Visitor::default();
            event.record(&mut visitor);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), visitor.0, visitor.1));
        }
    }
}

thread_local! {
    /// The capture of this thread, while its guard lives.
    static CURRENT: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// The one subscriber of the test binary: it hands each line to the capture of the thread it
/// was logged on. (A subscriber per thread, `set_default`, races with `tracing`'s cache of
/// each log line's interest: a line first logged on a thread without one could stay unseen.)
struct ToCurrent;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ToCurrent {
    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        CURRENT.with(|current| {
            if let Some(logs) = current.borrow().as_ref() {
                logs.on_event(event, context);
            }
        });
    }
}

/// Ends the capture of its thread.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

/// Captures flujo's log lines on this thread while the guard lives.
pub fn capture_logs() -> (Logs, CaptureGuard) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(ToCurrent))
            .expect("no other global subscriber in a test that captures logs");
    });
    let logs = Logs::default();
    CURRENT.with(|current| *current.borrow_mut() = Some(logs.clone()));
    (logs, CaptureGuard)
}
