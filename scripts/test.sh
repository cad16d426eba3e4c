#!/usr/bin/env bash
# The project's test command (README, "Run the tests"). On a fresh machine with the Rust
# toolchain and Python it installs the real back-ends the export tests talk to, then runs
# every test: unit, integration, ui (trybuild) and doc tests, and the export tests against
# the real receivers. A back-end that cannot be installed fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# rotel: an OpenTelemetry collector shipped as a Python wheel, pinned; tests/support/mod.rs
# starts it on free loopback ports and reads what it received from its debug output.
if ! ls .backends/venv/lib/python3*/site-packages/rotel/rotel-agent >/dev/null 2>&1; then
  python3 -m venv .backends/venv
  .backends/venv/bin/pip install --quiet --disable-pip-version-check rotel==0.0.1a15
fi
FLUJO_TEST_ROTEL=$(ls .backends/venv/lib/python3*/site-packages/rotel/rotel-agent | head -n 1)
if ldd "$FLUJO_TEST_ROTEL" | grep -q "not found"; then
  # The binary links libpython; Debian ships it separately.
  apt-get install -y --no-install-recommends libpython3.11 >/dev/null
fi
export FLUJO_TEST_ROTEL="$PWD/$FLUJO_TEST_ROTEL"

# genai-prices, the Python package of the price data flujo ships (pinned to the same
# version): the differential test prices every model with it and with flujo.
if ! .backends/genai-prices/bin/python -c "import genai_prices" >/dev/null 2>&1; then
  python3 -m venv .backends/genai-prices
  .backends/genai-prices/bin/pip install --quiet --disable-pip-version-check genai-prices==0.2.3
fi
export FLUJO_TEST_GENAI_PRICES_PYTHON="$PWD/.backends/genai-prices/bin/python"

# Arize Phoenix, a real reader of OpenInference spans (tests/phoenix.rs starts it on loopback).
if ! .backends/phoenix/bin/python -c "import phoenix" >/dev/null 2>&1; then
  python3 -m venv .backends/phoenix
  .backends/phoenix/bin/pip install --quiet --disable-pip-version-check arize-phoenix==20.26.1
fi
export FLUJO_TEST_PHOENIX_PYTHON="$PWD/.backends/phoenix/bin/python"
# Prometheus server and promtool: Debian's package, unpacked into .backends/ (not installed
# system-wide, so no daemon is started).
if [ ! -x .backends/prometheus/usr/bin/prometheus ]; then
  mkdir -p .backends/deb
  if ! (cd .backends/deb && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -q >/dev/null
    (cd .backends/deb && apt-get download prometheus >/dev/null)
  fi
  dpkg -x .backends/deb/prometheus_*.deb .backends/prometheus
fi
# socat terminates TLS in front of rotel for the https/TLS tests (Debian's socat and the
# libwrap it links, unpacked into .backends/); openssl makes the test certificates.
if [ ! -x .backends/socat/usr/bin/socat ]; then
  mkdir -p .backends/deb
  if ! (cd .backends/deb && apt-get download socat libwrap0 >/dev/null 2>&1); then
    apt-get update -q >/dev/null
    (cd .backends/deb && apt-get download socat libwrap0 >/dev/null)
  fi
  for package in .backends/deb/socat_*.deb .backends/deb/libwrap0_*.deb; do
    dpkg -x "$package" .backends/socat
  done
fi
command -v openssl >/dev/null || apt-get install -y --no-install-recommends openssl >/dev/null
# PostgreSQL, for the PostgreSQL cost ledger's tests: Debian's server package when absent. The
# tests start throwaway servers from its binaries (initdb into a temporary directory, a free
# loopback port, an unprivileged user when run as root) and stop them when done; see
# flujo-runtime/tests/support/postgres_server.rs.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if ! apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y --no-install-recommends postgresql >/dev/null
  fi
fi
FLUJO_TEST_POSTGRES_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export FLUJO_TEST_POSTGRES_BIN
# Chromium (Debian's), headless, opens the HTML cost report (flujo-cli/tests/html_report.rs).
if ! command -v chromium >/dev/null 2>&1; then
  if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y --no-install-recommends chromium >/dev/null
  fi
fi
FLUJO_TEST_CHROMIUM=$(command -v chromium)
export FLUJO_TEST_CHROMIUM
export FLUJO_TEST_PROMETHEUS="$PWD/.backends/prometheus/usr/bin/prometheus"
export FLUJO_TEST_PROMTOOL="$PWD/.backends/prometheus/usr/bin/promtool"

# Nothing reaches beyond loopback: the tests run under strace, which logs each `connect`
# (filtered in the kernel with seccomp: every other system call runs untouched), and
# scripts/no-network.py fails the run on a DNS query or a connection off the machine.
# Dependencies are downloaded before, outside the watch.
command -v strace >/dev/null || apt-get install -y --no-install-recommends strace >/dev/null
cargo fetch --locked
# The tests' temporary files go to a directory of this run's own, removed when it ends; a file
# or directory a test made (named flujo-*) and left there fails the run below: runs repeat on
# the same machine, and a ledger test's leftovers are tens of megabytes each.
TMPDIR=$(mktemp -d)
# Open as /tmp is: the PostgreSQL tests run the server as an unprivileged user when root.
chmod 1777 "$TMPDIR"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
mkdir -p target
CONNECTS=target/connects.log
rm -f "$CONNECTS"
watched() {
  strace --seccomp-bpf -f -qq -A -o "$CONNECTS" -e signal=none \
    -e trace=connect,execve,clone,clone3,fork,vfork "$@"
}

# The one case that bounds a time window on a busy process runs outside the watch (strace's
# seccomp filter and ptrace make a process about 3x slower): a SQLite writer killed with
# SIGKILL, which opens no socket.
KILL_CASE=a_killed_writer_loses_at_most_the_documented_window_and_only_at_the_end

watched cargo test --workspace --locked -- --skip "$KILL_CASE"
# The export build: exporter unit tests, the durable ledgers (SQLite, and PostgreSQL against
# real servers), the client integrations' usage (async-openai, genai, ollama-rs, rig), and the
# tests against rotel and Prometheus.
watched cargo test --locked --features otlp,prometheus,logfire,sqlite,postgres,async-openai,async-openai-client,reqwest,genai,ollama,rig \
  -p flujo-runtime -- --skip "$KILL_CASE"
cargo test --locked --features otlp,prometheus,logfire,sqlite,postgres,async-openai,async-openai-client,reqwest,genai,ollama,rig \
  -p flujo-runtime --test ledger_faults -- --exact "$KILL_CASE"
watched cargo test --locked --features otlp,prometheus,logfire,sqlite \
  --test otlp_export --test otlp_faults --test prometheus_export --test logfire_export \
  --test otel_interop --test operations --test cardinality --test otel_env --test phoenix
# The guide's samples (docs/guide/, the `flujo` crate's `guide` module), with the features
# they use.
watched cargo test --locked --doc -p flujo \
  --features otlp,prometheus,logfire,sqlite,postgres,async-openai
# The client integrations' example, offline: each client's recorded answer read and priced.
watched cargo run --locked --quiet -p flujo-examples --example clients --features clients
# The public surface: the `flujo` crate's items as rustdoc lists them, against public-api.txt
# (a change to the surface is a change to that file, seen in review), at most 5 constants.
cargo doc --locked --quiet -p flujo --all-features --no-deps
python3 scripts/public-api.py target/doc/flujo/all.html --check public-api.txt
python3 scripts/no-network.py "$CONNECTS"
leftovers=$(find "$TMPDIR" -maxdepth 1 -name 'flujo-*')
if [ -n "$leftovers" ]; then
  echo "tests left these behind in the temporary directory (remove them when the test ends):" >&2
  echo "$leftovers" >&2
  exit 1
fi
# The instruction-count guard: the hot paths' counts under Callgrind (valgrind, Debian's,
# installed when absent) against the baselines in benches/README.md.
bash scripts/perf-guard.sh
