//! A throwaway PostgreSQL server for the ledger's tests: `initdb` into a temporary directory,
//! a free loopback port, password authentication, run as an unprivileged user when the test
//! runs as root (the server refuses root). Binaries from `FLUJO_TEST_POSTGRES_BIN` (set by
//! `scripts/test.sh`, which installs Debian's package when absent) or
//! `/usr/lib/postgresql/*/bin`.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    pub password: String,
    child: Option<Child>,
    /// The unprivileged user the server runs as, when the tests run as root.
    run_as: Option<u32>,
}

fn binaries() -> PathBuf {
    if let Some(bin) = std::env::var_os("FLUJO_TEST_POSTGRES_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    found.sort();
    found.pop().expect(
        "no PostgreSQL server: run the tests with `bash scripts/test.sh`, which installs \
         Debian's postgresql package, or set FLUJO_TEST_POSTGRES_BIN to its bin directory",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The uid of `postgres` (Debian's package makes it), else `nobody`.
fn unprivileged_uid() -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres")).then(|| fields[2].parse().ok())?
        })
        .unwrap_or(65534)
}

impl Server {
    pub fn start(name: &str) -> Server {
        let bin = binaries();
        let dir = std::env::temp_dir().join(format!("flujo-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let run_as = root.then(unprivileged_uid);
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let password_file = dir.join("password");
        std::fs::write(&password_file, &password).unwrap();
        if let Some(uid) = run_as {
            for path in [&dir, &password_file] {
                std::os::unix::fs::chown(path, Some(uid), None).unwrap();
            }
        }
        let mut server = Server {
            bin,
            dir,
            port: free_port(),
            password,
            child: None,
            run_as,
        };
        let data = server.dir.join("data");
        let output = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "flujo",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-N",
            ])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        server.run();
        server
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match self.run_as {
            Some(uid) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Starts the server on its data directory and port, and waits until it takes connections.
    pub fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(_) => return,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => panic!("the server did not start: {error}: {}", self.log()),
            }
        }
    }

    /// Stops the server as a crash does (SIGQUIT: every backend ends at once, no checkpoint;
    /// the next start recovers), and waits until it is gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The URL of `database`, with the password.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://flujo:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn client(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(database), postgres::NoTls).unwrap()
    }

    /// A new empty database; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
