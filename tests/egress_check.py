#!/usr/bin/env python3
"""Fails when a Clearance server under test connected anywhere but this machine.

Every connection the server opens to another system (a webhook delivery, an
SMTP server, an OpenID Connect provider) is logged first as one
`clearance::egress` line naming its host and, where known, the addresses.
This reads the log files given (or every file in the folders given) and
checks each such line: every address must be a loopback address, and a host
without addresses must be `localhost` or a loopback address.

usage: tests/egress_check.py PATH...
"""

import ipaddress
import pathlib
import re
import sys

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def loopback(text: str) -> bool:
    text = text.strip()
    if text.lower() in ("localhost", "localhost.") or text.lower().endswith(".localhost"):
        return True
    text = text.strip("[]")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def address_host(address: str) -> str:
    """The host of `127.0.0.1:25` or `[::1]:25`."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0]


def check(line: str) -> str | None:
    fields = {k: v.strip('"') for k, v in FIELD.findall(line.split("clearance::egress", 1)[1])}
    addresses = [a for a in fields.get("addresses", "").split(",") if a]
    host = fields.get("host", "")
    if addresses:
        far = [a for a in addresses if not loopback(address_host(a))]
        return f"{fields.get('kind', '?')} to {host} at {', '.join(far)}" if far else None
    return None if loopback(host) else f"{fields.get('kind', '?')} to {host or '(no host)'}"


def main(paths: list[str]) -> int:
    files: list[pathlib.Path] = []
    for path in map(pathlib.Path, paths):
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    checked, far = 0, []
    for file in files:
        for line in file.read_text(errors="replace").splitlines():
            if "clearance::egress" not in line:
                continue
            checked += 1
            problem = check(line)
            if problem:
                far.append(f"{file.name}: {problem}")
    print(f"egress: {checked} connections in {len(files)} logs, {len(far)} off this machine")
    for problem in far[:50]:
        print(f"  off this machine: {problem}")
    return 1 if far else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
