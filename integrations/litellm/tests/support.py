"""What the proxy test runs against: a real Clearance server (the binary, on a
temporary SQLite data folder) with its tokens and a review driven to approval
through the API, and the real LiteLLM proxy (its `litellm` command).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent  # integrations/litellm
REPO = PACKAGE_ROOT.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Clearance:
    """A Clearance server of its own: the binary, a temporary data folder,
    SQLite, a fixed port (kept across a stop and start) and an HS256 secret,
    so `clearance token issue` mints tokens it accepts."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "clearance.log"
        # Clearance refuses a `CLEARANCE_*` variable it does not know: start
        # from an environment without any.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CLEARANCE_")}
        self.env = {
            **inherited,
            "CLEARANCE_DATA_DIR": str(data_dir),
            "CLEARANCE_BIND": f"127.0.0.1:{self.port}",
            "CLEARANCE_JWT_SECRET": "litellm-guard-test-secret-0123456789",
            "CLEARANCE_WORKFLOWS": str(REPO / "workflows"),
            "CLEARANCE_OUTBOX_INTERVAL_MS": "0",
            "CLEARANCE_SCHEDULER": "false",
            "CLEARANCE_FAILED_AUTH_PER_MINUTE": "0",
            # Webhooks only to this machine; every connection the server
            # opens is logged, and copied for CI's check when it stops.
            "CLEARANCE_WEBHOOK_TARGETS": "loopback",
            "RUST_LOG": "warn,clearance::egress=info",
        }
        self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve"], env=self.env, cwd=self.data_dir, stdout=log, stderr=log
            )
        try:
            wait_until(lambda: _answers(f"{self.url}/readyz"), 60, "Clearance ready")
        except TimeoutError:
            raise RuntimeError(f"Clearance did not start; its log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        egress = REPO / "target" / "egress"
        egress.mkdir(parents=True, exist_ok=True)
        lines = [l for l in self.log.read_text(errors="replace").splitlines() if "clearance::egress" in l]
        with open(egress / "litellm-guard.log", "a") as out:
            out.writelines(f"{l}\n" for l in lines)

    def token(self, sub: str, *roles: str) -> str:
        args = [self.binary, "token", "issue", "--sub", sub, "--email", f"{sub}@example.com", "--ttl", "2h"]
        for role in roles:
            args += ["--role", role]
        out = subprocess.run(args, env=self.env, cwd=self.data_dir, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def call(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def ok(self, method: str, path: str, token: str, body: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        response = self.call(method, path, token, body)
        if response.status_code not in expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None


# -- driving a review to approval, as tests/api/flow.rs does -------------------


def _meets(condition: dict, answer: Any) -> bool:
    def contains(wanted: Any) -> bool:
        return wanted in answer if isinstance(answer, list) else answer == wanted

    if "equals" in condition:
        return contains(condition["equals"])
    if "any_of" in condition:
        return any(contains(v) for v in condition["any_of"])
    if condition.get("above") is not None:
        return isinstance(answer, (int, float)) and answer > condition["above"]
    if condition.get("below") is not None:
        return isinstance(answer, (int, float)) and answer < condition["below"]
    return False


def _candidates(question: dict) -> list[Any]:
    options = [o["value"] for o in question.get("options") or []]
    kind = question["type"]
    if kind == "yes_no":
        return [True, False]
    if kind == "single_choice":
        return options
    if kind == "multi_choice":
        return [[o] for o in options]
    if kind == "text":
        return ["Documented in the supplier's trust centre."]
    if kind == "number":
        return [question["min"] if question.get("min") is not None else 1]
    if kind == "date":
        return ["2026-06-01"]
    if kind == "url":
        return ["https://trust.supplier.example/evidence.pdf"]
    raise ValueError(f"unknown question type {kind}")


def fill(stage: dict) -> dict[str, Any]:
    """Answers every shown question of a stage, avoiding its risk rules."""
    answers: dict[str, Any] = {}
    for section in stage["questionnaire"]["sections"]:
        for question in section["questions"]:
            shown = question.get("shown_when")
            if shown and not (shown["question"] in answers and _meets(shown, answers[shown["question"]])):
                continue
            rules = question.get("risk") or []
            options = _candidates(question)
            answers[question["id"]] = next(
                (c for c in options if not any(_meets(r["when"], c) for r in rules)), options[0]
            )
    return answers


def approve(clearance: Clearance, provider: str, model: str, conditions: dict | None = None) -> str:
    """Registers `provider/model` and approves a low-tier review of it, with
    `conditions` on the security approval: a vendor manager starts it and
    answers for the supplier, a second one confirms the intake, a security
    and a privacy reviewer approve (segregation of duties holds)."""
    victor = clearance.token("victor", "vendor_manager")
    vera = clearance.token("vera", "vendor_manager")
    sam = clearance.token("sam", "security_reviewer")
    pia = clearance.token("pia", "privacy_reviewer")
    if clearance.call("GET", f"/v1/providers/{provider}", victor).status_code == 404:
        clearance.ok("POST", "/v1/providers", victor, {"slug": provider, "name": provider.title()})
    if clearance.call("GET", f"/v1/providers/{provider}/models/{model}", victor).status_code == 404:
        clearance.ok("POST", f"/v1/providers/{provider}/models", victor, {"slug": model, "name": model})
    workflow = clearance.ok("GET", "/v1/workflows/model-provider", victor)
    stages = {s["key"]: s for s in workflow["stages"]}
    review = clearance.ok("POST", "/v1/reviews", victor, {"provider": provider, "model": model})
    path = f"/v1/reviews/{review['id']}"

    def answer(stage: str) -> None:
        clearance.ok("PUT", f"{path}/stages/{stage}/answers", victor, {"answers": fill(stages[stage])})
        clearance.ok("POST", f"{path}/stages/{stage}/submit", victor, {})

    answer("intake")
    clearance.ok("POST", f"{path}/stages/intake/decisions", vera, {"decision": "approve"})
    answer("security")
    answer("privacy")
    decision: dict[str, Any] = {"decision": "approve"}
    if conditions:
        decision["conditions"] = conditions
    clearance.ok("POST", f"{path}/stages/security/decisions", sam, decision)
    clearance.ok("POST", f"{path}/stages/privacy/decisions", pia, {"decision": "approve"})
    state = clearance.ok("GET", path, victor)["state"]
    if state not in ("approved", "approved_with_conditions"):
        raise AssertionError(f"the review of {provider}/{model} ended {state}")
    return review["id"]


# -- the LiteLLM proxy -----------------------------------------------------------


class Proxy:
    """The real LiteLLM proxy (`litellm --config …`) with the guard on its
    Python path."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        python_path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), str(HERE), os.environ.get("PYTHONPATH")]))
        self.env = {
            **os.environ,
            "PYTHONPATH": python_path,
            # No fetch of the model price list from the Internet at start-up.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            # The proxy refuses to start without one; custom auth answers first.
            "LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(32),
            **env,
        }
        self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        litellm = shutil.which("litellm", path=os.path.dirname(sys.executable)) or shutil.which("litellm")
        if litellm is None:
            raise RuntimeError("the `litellm` command is not installed (pip install 'litellm[proxy]')")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [litellm, "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited; its log:\n{self.log.read_text()[-5000:]}")
            return _answers(f"{self.url}/health/liveliness")

        try:
            wait_until(up, 180, "LiteLLM proxy up", interval=0.5)
        except TimeoutError:
            raise RuntimeError(f"the LiteLLM proxy did not start; its log:\n{self.log.read_text()[-5000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def chat(self, key: str, model: str, metadata: dict | None = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hello"}], **extra}
        if metadata is not None:
            body["metadata"] = metadata
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
