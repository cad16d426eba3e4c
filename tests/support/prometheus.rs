//! A real Prometheus server for the tests (Debian's package, unpacked into `.backends/` by
//! `scripts/test.sh`), and plain HTTP to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn tool(variable: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(".backends/prometheus/usr/bin")
                .join(name)
        });
    assert!(
        path.exists(),
        "{name} is not installed at {}: run `bash scripts/test.sh`, which unpacks it",
        path.display()
    );
    path
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub fn http_get(address: SocketAddr, path_and_query: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connects");
    write!(
        stream,
        "GET {path_and_query} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // tiny_http answers with chunked encoding for large bodies: undo it.
    if response
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, dechunk(&body));
    }
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

pub struct PrometheusServer {
    child: Child,
    address: SocketAddr,
    dir: PathBuf,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PrometheusServer {
    /// Prometheus scraping `target` every second (job `app`), evaluating `rule_files` every
    /// second.
    pub fn start(target: SocketAddr, rule_files: &[PathBuf]) -> PrometheusServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("flujo-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: [\"{target}\"]}}]\n",
                rule_files
                    .iter()
                    .map(|file| format!("{:?}", file.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(tool("FLUJO_TEST_PROMETHEUS", "prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        PrometheusServer {
            child,
            address,
            dir,
        }
    }

    pub fn api(&self, path_and_query: &str) -> Option<serde_json::Value> {
        let stream_ok = TcpStream::connect(self.address).is_ok();
        if !stream_ok {
            return None;
        }
        let (status, body) = http_get(self.address, path_and_query);
        (status == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// Polls until `check` accepts an answer of the API (never a fixed sleep), at most 60 s.
    pub fn wait_for(
        &self,
        path_and_query: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(answer) = self.api(path_and_query).filter(|a| check(a)) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never answered {path_and_query} as expected; last: {:?}\nlog:\n{}",
                self.api(path_and_query),
                std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub fn query_value(answer: &serde_json::Value) -> Option<f64> {
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// The API path of an instant query of `promql`.
pub fn query(promql: &str) -> String {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/api/v1/query?query={encoded}")
}
