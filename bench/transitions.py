"""Driver of the review transitions benchmark (bench/transitions.sh): seeds
reviews through the HTTP API, then walks them through their stages with a
number of concurrent clients, each on its own keep-alive connection, and
measures every change. Standard library only (asyncio and a minimal
HTTP/1.1 client), so that it runs from a clean clone.

The walk of one review (the shipped workflow at its default tier: intake,
then security and privacy), 13 changes, each one transaction with its audit
event and, where someone is to be told, its emails:

  intake      answers (victor), submit (victor), approve (vera)
  security    assign sam (vera)          privacy   assign pia (vera)
  security    answers, submit (victor), request changes (sam),
              submit again (victor), approve (sam)
  privacy     answers, submit (victor), approve (pia): the review is decided

usage:
  transitions.py seed URL REVIEWS IDS_FILE
      registers REVIEWS models (100 per provider) and starts a review of each
  transitions.py run URL IDS_FILE FIRST COUNT CLIENTS LABEL RESULTS_FILE [SERVER_PID]
      walks reviews FIRST .. FIRST+COUNT-1 of IDS_FILE with CLIENTS clients;
      prints one line and appends its figures (JSON) to RESULTS_FILE
  transitions.py summary RESULTS_FILE
      the median and range over rounds of each backend and client count

Tokens come from the environment: VICTOR and VERA (vendor managers), SAM
(security reviewer), PIA (privacy reviewer), each with an email address.
"""

import asyncio
import json
import os
import statistics
import sys
import time
from urllib.parse import urlsplit


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.reader = self.writer = None

    async def request(self, method, path, token, body=None):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        status = int((await self.reader.readline()).split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            payload = b""
            while size := int((await self.reader.readline()).strip(), 16):
                payload += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            payload = b""
        if headers.get("connection") == "close":
            await self.close()
        return status, payload

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def tokens():
    return {who: os.environ[who.upper()] for who in ("victor", "vera", "sam", "pia")}


# Answers that meet no risk rule, as the integration tests' `fill` chooses
# them (tests/api/flow.rs): the review stays at its default tier.

def meets(condition, answer):
    def contains(wanted):
        return wanted in answer if isinstance(answer, list) else answer == wanted

    if "equals" in condition:
        return contains(condition["equals"])
    if "any_of" in condition:
        return any(contains(v) for v in condition["any_of"])
    number = isinstance(answer, (int, float)) and not isinstance(answer, bool)
    if "above" in condition:
        return number and answer > condition["above"]
    if "below" in condition:
        return number and answer < condition["below"]
    return False


def candidates(question):
    options = [o["value"] for o in question.get("options") or []]
    kind = question["type"]
    if kind == "yes_no":
        return [True, False]
    if kind == "single_choice":
        return options
    if kind == "multi_choice":
        return [[o] for o in options]
    if kind == "number":
        return [question.get("min") if question.get("min") is not None else 1]
    return {
        "text": ["Documented in the supplier's trust centre."],
        "date": ["2026-06-01"],
        "url": ["https://trust.supplier.example/evidence.pdf"],
    }[kind]


def fill(stage):
    answers = {}
    for section in stage["questionnaire"]["sections"]:
        for question in section["questions"]:
            shown = question.get("shown_when")
            if shown and not (shown["question"] in answers and meets(shown, answers[shown["question"]])):
                continue
            rules = question.get("risk") or []
            every = candidates(question)
            answers[question["id"]] = next(
                (c for c in every if not any(meets(r["when"], c) for r in rules)), every[0]
            )
    return answers


def walk(workflow):
    """The 13 changes of one review: (kind, method, path under the review, who, body)."""
    stages = {s["key"]: s for s in workflow["stages"]}
    answers = {key: {"answers": fill(stages[key])} for key in ("intake", "security", "privacy")}
    approve = {"decision": "approve"}
    changes = {"decision": "request_changes", "comment": "Please attach the latest penetration test report."}
    return [
        ("save answers", "PUT", "/stages/intake/answers", "victor", answers["intake"]),
        ("submit", "POST", "/stages/intake/submit", "victor", {}),
        ("approve a stage", "POST", "/stages/intake/decisions", "vera", approve),
        ("assign", "POST", "/stages/security/assign", "vera", {"assignee": "sam"}),
        ("assign", "POST", "/stages/privacy/assign", "vera", {"assignee": "pia"}),
        ("save answers", "PUT", "/stages/security/answers", "victor", answers["security"]),
        ("submit", "POST", "/stages/security/submit", "victor", {}),
        ("request changes", "POST", "/stages/security/decisions", "sam", changes),
        ("submit", "POST", "/stages/security/submit", "victor", {}),
        ("approve a stage", "POST", "/stages/security/decisions", "sam", approve),
        ("save answers", "PUT", "/stages/privacy/answers", "victor", answers["privacy"]),
        ("submit", "POST", "/stages/privacy/submit", "victor", {}),
        ("approve, review decided", "POST", "/stages/privacy/decisions", "pia", approve),
    ]


async def seed(url, count, ids_file):
    who = tokens()
    conn = Connection(url)
    # Everyone is seen once, so that the directory knows their addresses.
    for token in who.values():
        status, _ = await conn.request("GET", "/v1/reviews?limit=1", token)
        assert status == 200, status
    providers = (count + 99) // 100
    for p in range(providers):
        status, body = await conn.request(
            "POST", "/v1/providers", who["victor"], {"slug": f"bench-{p}", "name": f"Bench {p}"}
        )
        assert status == 201, body
    await conn.close()
    ids = [None] * count
    queue = iter(range(count))

    async def client():
        conn = Connection(url)
        for i in queue:
            provider, model = f"bench-{i // 100}", f"model-{i % 100}"
            status, body = await conn.request(
                "POST", f"/v1/providers/{provider}/models", who["victor"], {"slug": model, "name": model}
            )
            assert status == 201, body
            status, body = await conn.request(
                "POST", "/v1/reviews", who["victor"], {"provider": provider, "model": model}
            )
            assert status == 201, body
            ids[i] = json.loads(body)["id"]
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(8)))
    elapsed = time.perf_counter() - started
    with open(ids_file, "w") as f:
        f.write("\n".join(ids) + "\n")
    print(f"seeded {count} models and reviews in {elapsed:.1f}s ({count / elapsed:.0f} starts/s)")


def cpu_seconds(pid):
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def run(url, ids_file, first, count, clients, label, results_file, server_pid):
    who = tokens()
    ids = open(ids_file).read().split()[first : first + count]
    assert len(ids) == count, f"{ids_file} holds {first + len(ids)} reviews, {first + count} needed"
    probe = Connection(url)
    status, body = await probe.request("GET", "/v1/workflows/model-provider", who["victor"])
    assert status == 200, body
    await probe.close()
    steps = walk(json.loads(body))
    latencies = {}
    errors = []
    queue = iter(ids)

    async def client():
        conn = Connection(url)
        for review in queue:
            for kind, method, path, person, payload in steps:
                began = time.perf_counter()
                status, answer = await conn.request(method, f"/v1/reviews/{review}{path}", who[person], payload)
                latencies.setdefault(kind, []).append(time.perf_counter() - began)
                if status != 200:
                    errors.append(f"{method} {path}: {status} {answer[:300].decode(errors='replace')}")
                    break
        await conn.close()

    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    server_cpu, client_cpu = cpu_seconds(server_pid) - server_before, time.process_time() - client_before
    every = [v for values in latencies.values() for v in values]
    done = len(every) - len(errors)
    result = {
        "label": label,
        "clients": clients,
        "transitions": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "p50": percentile(every, 50) * 1e3,
        "p99": percentile(every, 99) * 1e3,
        "errors": len(errors),
        "server_cpu_ms": server_cpu * 1e3 / max(done, 1),
        "client_cpu_ms": client_cpu * 1e3 / max(done, 1),
        "kinds": {
            kind: {"n": len(v), "p50": percentile(v, 50) * 1e3, "p99": percentile(v, 99) * 1e3}
            for kind, v in latencies.items()
        },
    }
    with open(results_file, "a") as f:
        f.write(json.dumps(result) + "\n")
    print(
        f"{label:<11} {clients:>7} {done:>11} {result['rate']:>13.0f} {result['p50']:>8.1f} ms"
        f" {result['p99']:>8.1f} ms {len(errors):>6} {result['server_cpu_ms']:>9.2f} ms"
        f" {result['client_cpu_ms']:>9.2f} ms"
    )
    for error in errors[:5]:
        print(f"  error: {error}")


def summary(results_file):
    runs = [json.loads(line) for line in open(results_file)]
    groups = {}
    for r in runs:
        groups.setdefault((r["label"], r["clients"]), []).append(r)

    def spread(values, unit=""):
        return f"{statistics.median(values):.0f}{unit} ({min(values):.0f}-{max(values):.0f})"

    def spread1(values):
        return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    print("median (range) over rounds:")
    for (label, clients), group in groups.items():
        print(
            f"  {label}, {clients} clients: {spread([r['rate'] for r in group])} transitions/s,"
            f" p50 {spread1([r['p50'] for r in group])} ms, p99 {spread1([r['p99'] for r in group])} ms,"
            f" errors {sum(r['errors'] for r in group)},"
            f" server CPU {spread1([r['server_cpu_ms'] for r in group])} ms per transition"
        )
        kinds = {}
        for r in group:
            for kind, k in r["kinds"].items():
                kinds.setdefault(kind, []).append(k)
        print(
            "    by kind, p50/p99 ms: "
            + "; ".join(
                f"{kind} {statistics.median(k['p50'] for k in ks):.1f}/{statistics.median(k['p99'] for k in ks):.1f}"
                for kind, ks in kinds.items()
            )
        )


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "seed":
        asyncio.run(seed(args[0], int(args[1]), args[2]))
    elif command == "run":
        url, ids_file, first, count, clients, label, results_file = args[:7]
        pid = args[7] if len(args) > 7 else None
        asyncio.run(run(url, ids_file, int(first), int(count), int(clients), label, results_file, pid))
    elif command == "summary":
        summary(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
