//! What a setting is: one declaration holding its field, its environment variables in
//! precedence order, its parser and accepted values, its default and one line of
//! documentation. Resolution, errors, redaction and the docs table all read declarations.

use std::cell::RefCell;
use std::fmt::Debug;

use super::super::error::TelemetryError;

/// The parts of a declaration that do not depend on its value's type: what the docs table
/// and the unknown-variable check read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    /// The [`TelemetryConfig`](super::TelemetryConfig) field that sets it in code (code
    /// wins), if any.
    pub(crate) field: Option<&'static str>,
    /// Its variables, the first found wins (the more specific, or the standard's, first).
    pub(crate) env: &'static [&'static str],
    /// What it accepts, as errors and the docs say it.
    pub(crate) accepts: &'static str,
    /// One line for the docs table.
    pub(crate) doc: &'static str,
    /// Its values are never shown: an error gives their length.
    pub(crate) secret: bool,
}

/// A setting whose value is a `T` once resolved (an optional one has `T = Option<_>`).
pub(crate) struct Setting<T: 'static> {
    pub(crate) meta: Meta,
    /// Reads a variable's value; `None` when it is not accepted.
    pub(crate) parse: fn(&str) -> Option<T>,
    /// Whether a value from code is accepted (a parsed one already was).
    pub(crate) valid: fn(&T) -> bool,
    pub(crate) default: fn() -> T,
    /// The default as the docs table says it.
    pub(crate) default_text: &'static str,
}

/// A setting of each OTLP signal: the signal's own variable first, then the generic ones.
pub(crate) struct SignalSetting<T: 'static> {
    pub(crate) setting: Setting<T>,
    /// The variables of traces, metrics and logs, in that order.
    pub(crate) signals: [&'static str; 3],
}

/// Something the docs table and the unknown-variable check can list.
pub(crate) trait Declared: Sync {
    fn meta(&self) -> &Meta;
    fn default_text(&self) -> &'static str;
    /// The per-signal variables, which come before [`Meta::env`].
    fn signal_env(&self) -> &[&'static str] {
        &[]
    }
}

impl<T> Declared for Setting<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn default_text(&self) -> &'static str {
        self.default_text
    }
}

impl<T> Declared for SignalSetting<T> {
    fn meta(&self) -> &Meta {
        &self.setting.meta
    }

    fn default_text(&self) -> &'static str {
        self.setting.default_text
    }

    fn signal_env(&self) -> &[&'static str] {
        &self.signals
    }
}

impl<T: Clone + Debug> Setting<T> {
    /// Code, else the first variable set, else the default.
    pub(crate) fn get(&self, code: Option<T>, env: &Env<'_>) -> Result<T, TelemetryError> {
        Ok(match self.lookup(code, self.meta.env, env)? {
            Some(value) => value,
            None => (self.default)(),
        })
    }

    /// Code, else the first of `variables` set (`None` when neither).
    pub(crate) fn lookup(
        &self,
        code: Option<T>,
        variables: &[&'static str],
        env: &Env<'_>,
    ) -> Result<Option<T>, TelemetryError> {
        if let Some(value) = code {
            if (self.valid)(&value) {
                return Ok(Some(value));
            }
            return Err(TelemetryError::InvalidSetting {
                // A setting without a field is never given a code value.
                field: self.meta.field.unwrap_or_default(),
                value: shown(&value),
                expected: self.meta.accepts,
            });
        }
        for &variable in variables {
            if let Some(value) = env.get(variable) {
                return match (self.parse)(&value) {
                    Some(parsed) => Ok(Some(parsed)),
                    None => Err(TelemetryError::InvalidEnvVar {
                        variable,
                        value: if self.meta.secret {
                            format!("<redacted: {} bytes>", value.len())
                        } else {
                            value
                        },
                        expected: self.meta.accepts,
                    }),
                };
            }
        }
        Ok(None)
    }
}

/// The OTLP signals, in the order of [`SignalSetting::signals`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignalIndex {
    Traces = 0,
    Metrics = 1,
    Logs = 2,
}

impl<T: Clone + Debug> SignalSetting<T> {
    /// Code (every signal's), else the signal's variable, else the generic ones, else the
    /// default.
    pub(crate) fn get(
        &self,
        code: Option<T>,
        signal: SignalIndex,
        env: &Env<'_>,
    ) -> Result<T, TelemetryError> {
        let own = [self.signals[signal as usize]];
        Ok(match self.setting.lookup(code, &own, env)? {
            Some(value) => value,
            None => self.setting.get(None, env)?,
        })
    }
}

/// A line that resolving the settings has for the log, written once the log is set up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Notice {
    pub(crate) warn: bool,
    pub(crate) text: String,
}

/// The environment being read (unset and empty both mean "not set"), and what reading it
/// found worth saying.
pub(crate) struct Env<'a> {
    read: &'a dyn Fn(&str) -> Option<String>,
    notices: RefCell<Vec<Notice>>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(read: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env {
            read,
            notices: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn get(&self, variable: &str) -> Option<String> {
        (self.read)(variable).filter(|value| !value.trim().is_empty())
    }

    pub(crate) fn warn(&self, text: String) {
        self.notices.borrow_mut().push(Notice { warn: true, text });
    }

    pub(crate) fn info(&self, text: String) {
        self.notices.borrow_mut().push(Notice { warn: false, text });
    }

    pub(crate) fn into_notices(self) -> Vec<Notice> {
        self.notices.into_inner()
    }
}

/// A value from code as an error shows it: `Debug`, without the `Some(..)` of an optional
/// setting (a secret's `Debug` is `<redacted>`).
fn shown<T: Debug>(value: &T) -> String {
    let debug = format!("{value:?}");
    match debug
        .strip_prefix("Some(")
        .and_then(|v| v.strip_suffix(')'))
    {
        Some(inner) => inner.to_owned(),
        None => debug,
    }
}
