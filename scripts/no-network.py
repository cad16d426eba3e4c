#!/usr/bin/env python3
"""Checks that the test suite reached nothing beyond loopback: no DNS query, no connection to
an address off the machine. Reads the log of `strace -f -e trace=connect,execve,clone,...`
that scripts/test.sh writes while the tests run, and names the program (the test binary) of
each offending connection. Exit status 1 when there is one."""

import ipaddress
import re
import sys

CONNECT = re.compile(r"^(\d+) +connect\(\d+, \{sa_family=(AF_INET6?),(.*?)\}, \d+\) += (.*)$")
# A connect that failed with one of these reached nothing (a process in a network namespace
# of its own, with loopback only, gets them).
UNREACHED = ("EADDRNOTAVAIL", "ENETUNREACH", "EHOSTUNREACH", "EAFNOSUPPORT", "EACCES", "EPERM")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
ADDR4 = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)')
ADDR6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')
EXECVE = re.compile(r'^(\d+) +execve\("([^"]+)", \[(.*?)\]')
SPAWN = re.compile(r"^(\d+) +(?:clone3?|fork|vfork)\(.*\) += (\d+)$")


UNFINISHED = re.compile(r"^(\d+) +(.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^(\d+) +<\.\.\. \w+ resumed>(.*)$")


def calls(path):
    """The log's system calls, each whole (strace splits a call that another thread's
    interrupted into `<unfinished ...>` and `<... resumed>` lines)."""
    pending = {}
    with open(path, errors="replace") as log:
        for line in log:
            line = line.rstrip("\n")
            if m := UNFINISHED.match(line):
                pending[m.group(1)] = f"{m.group(1)} {m.group(2)}"
            elif m := RESUMED.match(line):
                yield pending.pop(m.group(1), m.group(1) + " ?") + m.group(2)
            else:
                yield line


def main(paths):
    program, parent, offending = {}, {}, []
    for line in (line for path in paths for line in calls(path)):
        if m := EXECVE.match(line):
            if re.search(r"\) += 0$", line):
                args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3))
                program[m.group(1)] = " ".join([m.group(2)] + args[1:4])
            continue
        if m := SPAWN.match(line):
            parent[m.group(2)] = m.group(1)
            continue
        m = CONNECT.match(line)
        if not m:
            continue
        port = PORT.search(m.group(3))
        address = (ADDR4 if m.group(2) == "AF_INET" else ADDR6).search(m.group(3))
        if not port or not address:
            continue
        ip = ipaddress.ip_address(address.group(1))
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if m.group(4).startswith("-1 ") and m.group(4).split()[1] in UNREACHED:
            continue
        if int(port.group(1)) == 53 or not ip.is_loopback:
            offending.append((m.group(1), line))

    def owner(tid):
        seen = set()
        while tid not in program and tid in parent and tid not in seen:
            seen.add(tid)
            tid = parent[tid]
        return program.get(tid, "(unknown program)")

    if not offending:
        print("no-network: no DNS query, no connection beyond loopback")
        return 0
    print("no-network: tests reached beyond loopback (a DNS query, or an address off the machine):")
    for tid, line in offending:
        print(f"  {owner(tid)}\n    {line}")
    print("use 127.0.0.1 literals in tests: a name, even one ending in .invalid, is a DNS query")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
