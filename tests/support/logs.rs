//! flujo's log lines, captured on the test's thread: `(level, message)` of every event with
//! target `flujo` while the guard of [`capture_logs`] lives.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::{Context, SubscriberExt};

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Logs {
    pub fn lines(&self) -> Vec<(tracing::Level, String)> {
        self.0.lock().unwrap().clone()
    }

    /// How many lines at `level` have exactly `message`.
    pub fn count(&self, level: tracing::Level, message: &str) -> usize {
        self.lines()
            .iter()
            .filter(|(l, m)| *l == level && m == message)
            .count()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() == "flujo" {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), message.0));
        }
    }
}

/// Captures flujo's log lines on this thread while the guard lives.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::registry().with(logs.clone());
    (logs, tracing::subscriber::set_default(subscriber))
}
