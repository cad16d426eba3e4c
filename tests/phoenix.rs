//! A real reader of flujo's spans: Arize Phoenix (PyPI `arize-phoenix`, installed by
//! `scripts/test.sh`, started here on loopback with its telemetry off) receives a pipeline's
//! spans over OTLP/HTTP, and its GraphQL API says what it understood: span kinds, model,
//! provider, tokens with their cache and reasoning details, session, tree and status, as
//! flujo recorded them.

mod support;

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flujo::cost::ReportsUsage;
use flujo::pipeline::RunOptions;
use flujo::{Flujo, TelemetryConfig, TokenUsage, pipeline, pipeline_step, track_cost};
use serde_json::Value;
use support::free_port;

struct Answer {
    text: String,
    usage: TokenUsage,
}

impl ReportsUsage for Answer {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(self.usage)
    }
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        vec!["stop".into()]
    }
}

#[pipeline_step(kind = "tool", name = "weather_lookup")]
fn weather_lookup(city: &str) -> String {
    format!("sunny in {city}")
}

#[pipeline_step]
#[track_cost(model = "gpt-4o-mini")]
fn draft(facts: &str) -> Answer {
    Answer {
        text: format!("draft: {facts}"),
        usage: TokenUsage::new(1_200, 300)
            .with_cache_read(1_024)
            .with_reasoning(64),
    }
}

#[pipeline_step]
#[track_cost(model = "gemini-1.5-flash")]
fn polish(text: &str) -> Answer {
    Answer {
        text: text.to_uppercase(),
        usage: TokenUsage::new(400, 90),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the answer is empty")]
struct Empty;

#[pipeline_step(kind = "agent")]
fn forecaster(city: String) -> Result<String, Empty> {
    let facts = weather_lookup(&city);
    let text = polish(&draft(&facts).text).text;
    if text.is_empty() {
        Err(Empty)
    } else {
        Ok(text)
    }
}

pipeline! {
    pub pipeline forecast(city: String) -> String {
        forecaster?
    }
}

/// Phoenix, serving on loopback ports, deleted with its working directory when dropped.
struct Phoenix {
    child: Child,
    http: u16,
    dir: PathBuf,
}

impl Phoenix {
    fn start() -> Phoenix {
        let python = std::env::var_os("FLUJO_TEST_PHOENIX_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".backends/phoenix/bin/python")
            });
        assert!(
            python.exists(),
            "Arize Phoenix is not installed at {}: run `bash scripts/test.sh`, which installs it",
            python.display()
        );
        let (http, grpc) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("flujo-phoenix-{}-{http}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("phoenix.log")).unwrap();
        let child = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/phoenix_serve.py"
            ))
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", http.to_string())
            .env("PHOENIX_GRPC_PORT", grpc.to_string())
            .env("PHOENIX_WORKING_DIR", &dir)
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .env("PHOENIX_ALLOW_EXTERNAL_RESOURCES", "false")
            .env("PHOENIX_ENABLE_MCP_SERVER", "false")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("phoenix starts");
        let phoenix = Phoenix { child, http, dir };
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !client
            .get(format!("http://127.0.0.1:{http}/healthz"))
            .send()
            .is_ok_and(|response| response.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "phoenix did not answer: {}",
                std::fs::read_to_string(phoenix.dir.join("phoenix.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        phoenix
    }

    fn graphql(&self, query: &str) -> Value {
        let response = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{}/graphql", self.http))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "query": query }).to_string())
            .send()
            .expect("graphql answers");
        let body: Value =
            serde_json::from_str(&response.text().expect("graphql answers")).expect("JSON");
        assert!(body.get("errors").is_none(), "{body}");
        body
    }

    /// Every listening TCP socket of the machine on Phoenix's process is on loopback.
    fn listens_on_loopback_only(&self) -> Vec<String> {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .filter_map(|link| {
                        let link = link.to_string_lossy().into_owned();
                        Some(
                            link.strip_prefix("socket:[")?
                                .trim_end_matches(']')
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut wide = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // State 0A is LISTEN; field 9 is the socket's inode.
                if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                    let local = fields[1];
                    // 127.0.0.1, ::1, and 127.0.0.1 mapped into IPv6.
                    let loopback = local.starts_with("0100007F:")
                        || local.starts_with("00000000000000000000000001000000:")
                        || local.starts_with("0000000000000000FFFF00000100007F:");
                    if !loopback {
                        wide.push(format!("{table} {local}"));
                    }
                }
            }
        }
        wide
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn arize_phoenix_reads_a_pipelines_spans_as_flujo_recorded_them() {
    let phoenix = Phoenix::start();
    assert_eq!(phoenix.listens_on_loopback_only(), Vec::<String>::new());
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .service_name("weather-service")
            .project_name("weather-bot")
            .export_otlp(true)
            .otlp_protocol(flujo::config::OtlpProtocol::HttpProtobuf)
            .otlp_endpoint(format!("http://127.0.0.1:{}", phoenix.http)),
    )
    .unwrap();
    let result = Flujo::new(forecast::new()).run_with(
        "Oslo".to_owned(),
        RunOptions::new().conversation_id("session-7"),
    );
    assert_eq!(result.output.unwrap(), "DRAFT: SUNNY IN OSLO");
    drop(guard);

    let query = r#"{ projects { edges { node { name spans(first: 50) { edges { node {
        name spanKind statusCode parentId context { spanId traceId }
        tokenCountPrompt tokenCountCompletion tokenCountTotal
        tokenPromptDetails { cacheRead cacheWrite }
        attributes trace { session { sessionId } } } } } } } } }"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let body = phoenix.graphql(query);
        let project = body["data"]["projects"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|edge| edge["node"]["name"] == "weather-bot")
            .map(|edge| edge["node"]["spans"]["edges"].as_array().unwrap().clone());
        match project {
            Some(spans) if spans.len() >= 7 => break spans,
            _ if Instant::now() > deadline => panic!("phoenix has not filed the spans: {body}"),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    let spans: Vec<&Value> = spans.iter().map(|edge| &edge["node"]).collect();
    let named = |prefix: &str| {
        spans
            .iter()
            .copied()
            .find(|span| span["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {spans:#?}"))
    };
    let attributes = |span: &Value| -> Value {
        serde_json::from_str(span["attributes"].as_str().unwrap()).unwrap()
    };
    let id = |span: &Value| span["context"]["spanId"].as_str().unwrap().to_owned();
    let parent = |span: &Value| span["parentId"].as_str().map(str::to_owned);

    // Kinds: the run and plain steps are chains, the tool and the agent keep theirs, the
    // model calls are LLM spans.
    let run = named("invoke_workflow forecast");
    let agent = named("invoke_agent forecaster");
    let tool = named("execute_tool weather_lookup");
    let draft_step = named("draft");
    let polish_step = named("polish");
    let draft_call = named("chat gpt-4o-mini");
    let polish_call = named("chat gemini-1.5-flash");
    for (span, kind) in [
        (run, "CHAIN"),
        (agent, "AGENT"),
        (tool, "TOOL"),
        (draft_step, "CHAIN"),
        (polish_step, "CHAIN"),
        (draft_call, "LLM"),
        (polish_call, "LLM"),
    ] {
        assert_eq!(
            span["spanKind"].as_str().unwrap().to_uppercase(),
            kind,
            "{span}"
        );
        assert_eq!(span["statusCode"], "OK", "{span}");
    }
    // The tree: the run is the root, the agent under it, the tool and the steps under the
    // agent, each model call under its step; one trace.
    assert_eq!(parent(run), None);
    assert_eq!(parent(agent), Some(id(run)));
    for child in [tool, draft_step, polish_step] {
        assert_eq!(parent(child), Some(id(agent)), "{child}");
    }
    assert_eq!(parent(draft_call), Some(id(draft_step)));
    assert_eq!(parent(polish_call), Some(id(polish_step)));
    let trace = run["context"]["traceId"].as_str().unwrap();
    assert!(spans.iter().all(|span| span["context"]["traceId"] == trace));
    // Model, provider in OpenInference's spelling, tokens with their details.
    let draft_attributes = attributes(draft_call);
    assert_eq!(
        draft_attributes["llm"]["model_name"], "gpt-4o-mini",
        "{draft_attributes}"
    );
    assert_eq!(
        draft_attributes["llm"]["provider"], "openai",
        "{draft_attributes}"
    );
    assert_eq!(draft_call["tokenCountPrompt"], 1_200);
    assert_eq!(draft_call["tokenCountCompletion"], 300);
    assert_eq!(draft_call["tokenCountTotal"], 1_500);
    assert_eq!(draft_call["tokenPromptDetails"]["cacheRead"], 1_024);
    assert_eq!(
        draft_attributes["llm"]["token_count"]["completion_details"]["reasoning"], 64,
        "{draft_attributes}"
    );
    let polish_attributes = attributes(polish_call);
    assert_eq!(
        polish_attributes["llm"]["provider"], "google",
        "{polish_attributes}"
    );
    assert_eq!(polish_call["tokenCountPrompt"], 400);
    assert_eq!(polish_call["tokenCountCompletion"], 90);
    // The session Phoenix groups the trace by.
    assert_eq!(run["trace"]["session"]["sessionId"], "session-7", "{run}");
    assert_eq!(
        draft_attributes["session"]["id"], "session-7",
        "{draft_attributes}"
    );
}
