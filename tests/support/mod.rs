//! Real receivers for the export tests: rotel (an OpenTelemetry collector), and socat as a
//! TLS front or a transparent proxy that logs the requests it forwards.
#![allow(dead_code)] // each test binary uses a part

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This process's resident memory now, in bytes.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `text` without terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            clean.push(c);
        }
    }
    clean
}

/// A rotel collector on free loopback ports, logging every span it receives to a file.
pub struct Rotel {
    child: Child,
    pub grpc: u16,
    pub http: u16,
    log: PathBuf,
}

impl Rotel {
    pub fn start() -> Rotel {
        Rotel::start_logging(&["traces"])
    }

    /// Starts rotel dumping the given signals (`traces`, `logs`, `metrics`) to its log.
    pub fn start_logging(signals: &[&str]) -> Rotel {
        Rotel::launch(free_port(), free_port(), signals, "detailed")
    }

    /// Starts rotel on these ports logging one line per request with its span count (for
    /// runs with too many spans to dump): read with [`Rotel::received_spans`].
    pub fn start_counting_on(grpc: u16, http: u16) -> Rotel {
        Rotel::launch(grpc, http, &["traces"], "basic")
    }

    fn launch(grpc: u16, http: u16, signals: &[&str], verbosity: &str) -> Rotel {
        let binary = std::env::var_os("FLUJO_TEST_ROTEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join(".backends/venv/lib/python3.11/site-packages/rotel/rotel-agent")
            });
        assert!(
            binary.exists(),
            "rotel is not installed at {}: run `bash scripts/test.sh`, which installs it",
            binary.display()
        );
        let log = std::env::temp_dir().join(format!(
            "flujo-rotel-{}-{grpc}-{}.log",
            std::process::id(),
            LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let out = std::fs::File::create(&log).expect("rotel log file");
        let child = Command::new(&binary)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
            ])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--exporter", "blackhole"])
            .args(signals.iter().flat_map(|signal| ["--debug-log", signal]))
            .args(["--debug-log-verbosity", verbosity, "--disable-batching"])
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("rotel starts");
        let rotel = Rotel {
            child,
            grpc,
            http,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while [grpc, http]
            .iter()
            .any(|port| TcpStream::connect(("127.0.0.1", *port)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "rotel did not listen: {}",
                rotel.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        rotel
    }

    /// The spans a [`Rotel::start_counting_on`] collector received, resent ones included.
    pub fn received_spans(&self) -> u64 {
        self.output()
            .lines()
            .filter(|line| line.contains("Received traces"))
            .filter_map(|line| {
                let clean = strip_ansi(line);
                let count = clean.rsplit_once("spans=")?.1;
                count.trim().parse::<u64>().ok()
            })
            .sum()
    }

    /// Waits (at most 10 s) until rotel has logged `spans` received spans; what it logged.
    pub fn wait_for_received(&self, spans: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received_spans();
            if received >= spans || Instant::now() > deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port that takes OTLP over `protocol`.
    pub fn port(&self, protocol: flujo::config::OtlpProtocol) -> u16 {
        match protocol {
            flujo::config::OtlpProtocol::Grpc => self.grpc,
            _ => self.http,
        }
    }

    /// Kills the collector (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the collector's process (SIGSTOP): it keeps its sockets, accepts nothing and
    /// answers nothing until [`Rotel::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused collector go on (SIGCONT): it then reads what waited in its sockets.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} rotel");
    }

    pub fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits (at most 20 s) until rotel's log holds `needle`, returning its output.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.output();
            if output.contains(needle) || Instant::now() > deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until rotel has logged `spans` spans, returning its output.
    pub fn wait_for_spans(&self, spans: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.output();
            if output.matches("Span #").count() >= spans || Instant::now() > deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One span as rotel printed it.
#[derive(Debug, Default)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub parent_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub trace_state: String,
    pub status: String,
    pub status_message: String,
    pub attributes: Vec<(String, String)>,
    /// Resource attributes of the batch the span came in.
    pub resource: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses rotel's `--debug-log-verbosity detailed` dump.
pub fn parse_spans(output: &str) -> Vec<ReceivedSpan> {
    let mut spans: Vec<ReceivedSpan> = Vec::new();
    let mut resource: Vec<(String, String)> = Vec::new();
    let mut in_resource = false;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("ResourceSpans #") {
            resource.clear();
        } else if line == "Resource attributes:" {
            in_resource = true;
        } else if line.starts_with("Span #") {
            in_resource = false;
            spans.push(ReceivedSpan {
                resource: resource.clone(),
                ..ReceivedSpan::default()
            });
        } else if let Some(attribute) = line.strip_prefix("-> ") {
            let (key, value) = attribute.split_once(": ").unwrap_or((attribute, ""));
            let pair = (key.to_owned(), value.to_owned());
            match (in_resource, spans.last_mut()) {
                (true, _) => resource.push(pair),
                (false, Some(span)) => span.attributes.push(pair),
                (false, None) => {}
            }
        } else if let (Some((key, value)), Some(span)) = (line.split_once(" : "), spans.last_mut())
        {
            let value = value.trim().to_owned();
            match key.trim() {
                "Trace ID" => span.trace_id = value,
                "Parent ID" => span.parent_id = value,
                "ID" => span.id = value,
                "Name" => span.name = value,
                "Kind" => span.kind = value,
                "TraceState" | "Trace State" | "Trace state" => span.trace_state = value,
                "Status code" => span.status = value,
                "Status message" => span.status_message = value,
                _ => {}
            }
        }
    }
    spans
}

/// socat terminating TLS in front of a rotel port, with a certificate signed by a throwaway
/// CA made with the openssl command-line tool.
pub struct TlsFront {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl TlsFront {
    pub fn start(target: u16) -> TlsFront {
        TlsFront::launch(target, false)
    }

    /// A front that asks for a client certificate signed by its CA (mutual TLS): see
    /// [`TlsFront::client_key`] and [`TlsFront::client_certificate`].
    pub fn start_mutual(target: u16) -> TlsFront {
        TlsFront::launch(target, true)
    }

    fn launch(target: u16, mutual: bool) -> TlsFront {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("flujo-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=flujo test CA",
        ]);
        // A key and a certificate signed by the CA: `{name}.key`, `{name}.pem`.
        let signed = |name: &str, subject: &str, extensions: &str| {
            let file = |suffix: &str| format!("{name}.{suffix}");
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &file("key"),
                "-out",
                &file("csr"),
                "-subj",
                subject,
            ]);
            std::fs::write(dir.join(file("ext")), extensions).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &file("csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &file("pem"),
                "-days",
                "1",
                "-extfile",
                &file("ext"),
            ]);
        };
        signed(
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        );
        if mutual {
            signed(
                "client",
                "/CN=flujo test client",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            );
        }
        let verify = if mutual {
            format!("verify=1,cafile={}", dir.join("ca.pem").display())
        } else {
            "verify=0".to_owned()
        };

        let backends = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".backends/socat");
        let socat = std::env::var_os("FLUJO_TEST_SOCAT")
            .map(PathBuf::from)
            .unwrap_or_else(|| backends.join("usr/bin/socat"));
        assert!(
            socat.exists(),
            "socat is not installed at {}: run `bash scripts/test.sh`",
            socat.display()
        );
        let child = Command::new(&socat)
            .env("LD_LIBRARY_PATH", backends.join("usr/lib/x86_64-linux-gnu"))
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},{verify}",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ))
            .arg(format!("TCP:127.0.0.1:{target}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("socat starts");
        wait_listening(port, "socat");
        TlsFront { child, port, dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The client's key of a [`TlsFront::start_mutual`] front.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// The client's certificate of a [`TlsFront::start_mutual`] front.
    pub fn client_certificate(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A command running Debian's socat as unpacked into `.backends/` by `scripts/test.sh`.
fn socat() -> Command {
    let backends = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".backends/socat");
    let binary = std::env::var_os("FLUJO_TEST_SOCAT")
        .map(PathBuf::from)
        .unwrap_or_else(|| backends.join("usr/bin/socat"));
    assert!(
        binary.exists(),
        "socat is not installed at {}: run `bash scripts/test.sh`",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .env("LD_LIBRARY_PATH", backends.join("usr/lib/x86_64-linux-gnu"))
        .stdin(Stdio::null());
    command
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// socat forwarding plain TCP to a rotel port and logging every byte it forwards (`-v`):
/// shows the request headers a receiver does not print.
pub struct WireLog {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl WireLog {
    pub fn start(target: u16) -> WireLog {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("flujo-wire-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("wire log file");
        let child = socat()
            .arg("-v")
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
            .arg(format!("TCP:127.0.0.1:{target}"))
            .stderr(file)
            .spawn()
            .expect("socat starts");
        wait_listening(port, "socat");
        WireLog { child, port, log }
    }

    pub fn text(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for WireLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
