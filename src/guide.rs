//! The guide: everything flujo does, page by page. Each code sample on these pages is a
//! doctest, compiled (and, where it needs no server, run) with every feature on.
//!
//! | page | what it covers |
//! |---|---|
//! | [`getting_started`] | installing, the crate features, a first pipeline |
//! | [`steps`] | `#[pipeline_step]`: its arguments, retries, timeouts and fallbacks, the span tree across tasks and threads |
//! | [`cost`] | `#[track_cost]`: model calls, usage, the GenAI attributes, content capture, prices |
//! | [`streaming`] | streamed model calls: usage from chunks, time to first chunk |
//! | [`pipelines`] | `pipeline!` and the `Flujo` runner, hooks, validators, usage limits |
//! | [`export`] | OTLP (gRPC and HTTP, TLS), Prometheus, Logfire; production setup; troubleshooting |
//! | [`opentelemetry`] | flujo inside an application that already runs the OpenTelemetry SDK or `tracing` |
//! | [`settings`] | `init_telemetry`, every setting and environment variable, the guard's lifecycle |
//! | [`ledgers`] | the cost ledger (memory, SQLite, PostgreSQL), reports and the CLI, budgets, many replicas |
//! | [`operations`] | alert and recording rules, the dashboard |
//! | [`logs`] | `flujo::logfire`: structured logs with the step's context |
//! | [`testing`] | `flujo::testing`: capturing spans, metrics and cost in tests, the stub model |
//! | [`reliability`] | each promise under faults, the test that keeps it, and what it measured |

#[doc = include_str!("../docs/guide/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../docs/guide/steps.md")]
pub mod steps {}

#[doc = include_str!("../docs/guide/cost.md")]
pub mod cost {}

#[doc = include_str!("../docs/guide/streaming.md")]
pub mod streaming {}

#[doc = include_str!("../docs/guide/pipelines.md")]
pub mod pipelines {}

#[doc = include_str!("../docs/guide/export.md")]
pub mod export {}

#[doc = include_str!("../docs/guide/opentelemetry.md")]
pub mod opentelemetry {}

#[doc = include_str!("../docs/guide/settings.md")]
pub mod settings {}

#[doc = include_str!("../docs/guide/ledgers.md")]
pub mod ledgers {}

#[doc = include_str!("../docs/guide/operations.md")]
pub mod operations {}

#[doc = include_str!("../docs/guide/logs.md")]
pub mod logs {}

#[doc = include_str!("../docs/guide/testing.md")]
pub mod testing {}

#[doc = include_str!("../docs/guide/reliability.md")]
pub mod reliability {}
