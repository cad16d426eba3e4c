#!/usr/bin/env python3
"""The public items of the `flujo` crate, from rustdoc's `all.html` (stable rustdoc, no JSON).

    python3 scripts/public-api.py target/doc/flujo/all.html --check public-api.txt
    python3 scripts/public-api.py target/doc/flujo/all.html --write public-api.txt

`--check` fails when the items differ from the file (every change to the public surface shows
in review: write the file and commit it with the change) or when more than MAX_CONSTANTS
constants are public (tuning values are private; the docs state them). Items of re-exported
crates (`flujo::export::otel::opentelemetry{,_sdk}`) are not flujo's and are left out.
"""

import html
import re
import sys

MAX_CONSTANTS = 5
FOREIGN = ("export::otel::opentelemetry::", "export::otel::opentelemetry_sdk::")


def items(all_html):
    text = open(all_html, encoding="utf-8").read()
    found = []
    for kind, body in re.findall(
        r'<h3 id="(\w+)">.*?</h3><ul class="all-items">(.*?)</ul>', text, re.S
    ):
        for name in re.findall(r'<a href="[^"]+">([^<]+)</a>', body):
            name = html.unescape(name)
            if not name.startswith(FOREIGN):
                found.append(f"{kind} flujo::{name}")
    return sorted(found)


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("--check", "--write"):
        sys.exit(__doc__)
    all_html, mode, listing = sys.argv[1:]
    current = items(all_html)
    if not current:
        sys.exit(f"public-api: no items found in {all_html}: build it with `cargo doc -p flujo --all-features --no-deps`")
    if mode == "--write":
        open(listing, "w", encoding="utf-8").write("\n".join(current) + "\n")
        print(f"public-api: {len(current)} items written to {listing}")
        return
    recorded = open(listing, encoding="utf-8").read().split("\n")
    recorded = [line for line in recorded if line]
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    constants = [item for item in current if item.startswith("constants ")]
    problems = []
    if added or removed:
        problems.append(
            f"the public items differ from {listing} (write it with --write and commit it):\n"
            + "".join(f"  + {item}\n" for item in added)
            + "".join(f"  - {item}\n" for item in removed)
        )
    if len(constants) > MAX_CONSTANTS:
        problems.append(
            f"{len(constants)} public constants, at most {MAX_CONSTANTS}: "
            + ", ".join(item.split(" ", 1)[1] for item in constants)
        )
    if problems:
        sys.exit("public-api: " + "\n".join(problems))
    print(f"public-api: {len(current)} items, {len(constants)} constants, as {listing} lists them")


if __name__ == "__main__":
    main()
