#!/usr/bin/env python3
"""The instruction-count guard: runs `flujo-guard` (benches/guard/main.rs) under Callgrind once
per row of the baseline table in benches/README.md and fails when a count grew past the row's
tolerance. Deterministic (instructions and simulated cache misses, not time), so it runs in CI.

    python3 scripts/perf-guard.py GUARD_BINARY            # check against the baselines
    python3 scripts/perf-guard.py GUARD_BINARY --accept   # write today's counts as baselines
    python3 scripts/perf-guard.py GUARD_BINARY --only step_on

scripts/perf-guard.sh builds the binary and calls this; use that.
"""

import os
import re
import subprocess
import sys
import tempfile

README = os.path.join(os.path.dirname(__file__), "..", "benches", "README.md")
BEGIN, END = "<!-- guard:begin -->", "<!-- guard:end -->"

# The simulated caches, fixed so that counts do not depend on the machine's own.
CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=2097152,16,64"]
# What each measure counts, from Callgrind's event totals.
MEASURES = {
    "instructions": ("hot", ["Ir"]),
    # Data lines only: which code lines a cold call misses depends on what the worker's code
    # evicted from the simulated instruction cache, that is on code layout (step: 0.15 to 8.5
    # lines a call across builds that did not touch it); code size shows in instructions.
    "cold data lines": ("cold", ["DLmr", "DLmw"]),
}


def read_table():
    text = open(README, encoding="utf-8").read()
    start, end = text.index(BEGIN), text.index(END)
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        path, measure, what, baseline, tolerance = cells
        rows.append(
            {
                "path": path.strip("`"),
                "measure": measure,
                "what": what,
                "baseline": float(baseline.replace(",", "")),
                "tolerance": float(tolerance.strip("+%")) / 100,
            }
        )
    return text, start, end, rows


def write_table(text, start, end, rows):
    lines = [
        BEGIN,
        "| path | measure | one unit | baseline | tolerance |",
        "|---|---|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['path']}` | {row['measure']} | {row['what']} | "
            f"{row['baseline']:,.1f} | +{row['tolerance'] * 100:g}% |"
        )
    text = text[:start] + "\n".join(lines) + "\n" + text[end:]
    open(README, "w", encoding="utf-8").write(text)


def callgrind(binary, path, measure):
    """The count per unit of `path` under `measure`."""
    shape, events = MEASURES[measure]
    toggle = "*collect::worker::drain*" if path == "worker" else "*flujo_guard::measured*"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        args = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            f"--toggle-collect={toggle}",
            "--fair-sched=yes",
        ]
        if shape == "cold":
            args += ["--cache-sim=yes"] + CACHES
        run = subprocess.run(
            args + [binary, path, shape],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if run.returncode != 0:
            sys.exit(f"perf-guard: {path} {shape} failed:\n{run.stdout}\n{run.stderr}")
        said = re.search(r"(\d+) measured units, (\d+) spans exported", run.stdout)
        if not said:
            sys.exit(f"perf-guard: {path} {shape} printed no count:\n{run.stdout}")
        units = int(said.group(2) if path == "worker" else said.group(1))
        names, totals = None, None
        for line in open(out, encoding="utf-8"):
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("totals:") or line.startswith("summary:"):
                totals = [int(v) for v in line.split()[1:]]
        counts = dict(zip(names, totals))
        return sum(counts.get(event, 0) for event in events) / units


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    accept = "--accept" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    text, start, end, rows = read_table()
    failed = []
    print(f"{'path':18} {'measure':13} {'baseline':>10} {'now':>10} {'change':>8}")
    for row in rows:
        if only and row["path"] != only:
            continue
        now = callgrind(binary, row["path"], row["measure"])
        change = now / row["baseline"] - 1 if row["baseline"] else 0.0
        verdict = ""
        if change > row["tolerance"]:
            verdict = f"  FAIL (tolerance +{row['tolerance'] * 100:g}%)"
            failed.append(row["path"])
        elif change < -row["tolerance"]:
            verdict = "  lower: accept it (scripts/perf-guard.sh --accept) to keep the gain"
        print(
            f"{row['path']:18} {row['measure']:13} {row['baseline']:10,.1f} {now:10,.1f} "
            f"{change * 100:+7.1f}%{verdict}"
        )
        row["baseline"] = now
    if accept:
        write_table(text, start, end, rows)
        print("perf-guard: baselines written to benches/README.md; commit them with the change")
        return
    if failed:
        sys.exit(
            "perf-guard: a hot path grew past its tolerance: "
            + ", ".join(failed)
            + ". Make it cheaper, or if the cost is intended, run "
            "`bash scripts/perf-guard.sh --accept` and say why in the commit message."
        )
    print("perf-guard: every hot path within its tolerance")


if __name__ == "__main__":
    main()
