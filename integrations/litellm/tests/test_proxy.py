"""The guard in the real LiteLLM proxy against a real Clearance server.

The proxy (`tests/proxy/config.yaml`) serves three models whose upstreams
answer with LiteLLM's mock responses; its keys (`tests/proxy/test_keys.py`)
carry the call context in key or team metadata. Clearance runs from the
binary named by `GUARD_TEST_CLEARANCE_BINARY` (default `target/debug/clearance`) on a
temporary SQLite folder, with `openai/gpt-4o` approved for support chat in
the EU on public or internal data, and `acme/house-llm` approved outright.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from support import HERE, REPO, Clearance, Proxy, approve, wait_until

# The guard's cache TTL in tests/proxy/config.yaml, and its time-out.
TTL = 2.0
TIMEOUT = 2.0
GATEWAY = "litellm-gateway"
# The context tests/proxy/test_keys.py gives `sk-eu-support`.
EU_SUPPORT = {
    "clearance_use_case": "support-chat",
    "clearance_regions": ["eu"],
    "clearance_data_classes": ["internal"],
}


@dataclass
class Stack:
    clearance: Clearance
    proxy: Proxy
    admin: str = field(repr=False)
    manager: str = field(repr=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    binary = os.environ.get("GUARD_TEST_CLEARANCE_BINARY") or str(REPO / "target" / "debug" / "clearance")
    if not Path(binary).is_file():
        pytest.fail(f"no Clearance binary at {binary} (set GUARD_TEST_CLEARANCE_BINARY or cargo build --bin clearance)")
    folder = tmp_path_factory.mktemp("guard")
    clearance = Clearance(binary, folder)
    clearance.start()
    proxy = None
    try:
        approve(
            clearance,
            "openai",
            "gpt-4o",
            {"use_cases": ["support-chat"], "regions": ["eu"], "data_classes": ["public", "internal"]},
        )
        approve(clearance, "acme", "house-llm")
        proxy = Proxy(
            HERE / "proxy" / "config.yaml",
            {"CLEARANCE_SERVER": clearance.url, "CLEARANCE_TOKEN": clearance.token(GATEWAY, "integrator")},
            folder / "proxy.log",
        )
        proxy.start()
        yield Stack(
            clearance,
            proxy,
            admin=clearance.token("ada", "admin"),
            manager=clearance.token("victor", "vendor_manager"),
        )
    finally:
        if proxy is not None:
            proxy.stop()
        clearance.stop()


def refusal(response: httpx.Response) -> str:
    """The error message the caller reads."""
    return response.json()["error"]["message"]


def poll(call, until, limit: float) -> tuple[httpx.Response, float]:
    """Calls until `until(response)` holds; the response and how long it took."""
    start = time.monotonic()
    while True:
        response = call()
        elapsed = time.monotonic() - start
        if until(response) or elapsed > limit + 5:
            return response, elapsed
        time.sleep(0.1)


def test_a_call_to_an_approved_model_succeeds(stack: Stack):
    response = stack.proxy.chat("sk-eu-support", "support-gpt")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the mock gpt-4o"


def test_a_deployment_names_its_clearance_subject_in_model_info(stack: Stack):
    # house-llm routes to openai/ft-house-2026, reviewed as acme/house-llm.
    response = stack.proxy.chat("sk-plain", "house-llm")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the mock house model"


def test_a_context_the_conditions_forbid_is_refused_with_the_reason(stack: Stack):
    # The team's metadata says the US; the approval allows the EU only.
    response = stack.proxy.chat("sk-us-team", "support-gpt")
    assert response.status_code == 403, response.text
    assert "region_not_allowed:us" in refusal(response)
    assert response.json()["error"]["provider_specific_fields"]["clearance"]["reasons"] == ["region_not_allowed:us"]
    streamed = stack.proxy.chat("sk-us-team", "support-gpt", stream=True)
    assert streamed.status_code == 403, streamed.text
    assert "region_not_allowed:us" in streamed.text


def test_the_request_states_what_its_key_leaves_unsaid_and_no_more(stack: Stack):
    unsaid = stack.proxy.chat("sk-plain", "support-gpt")
    assert unsaid.status_code == 403, unsaid.text
    assert "regions_not_stated" in refusal(unsaid)
    stated = stack.proxy.chat("sk-plain", "support-gpt", metadata=EU_SUPPORT)
    assert stated.status_code == 200, stated.text
    # The key says EU: a request claiming the US changes nothing.
    overridden = stack.proxy.chat("sk-eu-support", "support-gpt", metadata={"clearance_regions": ["us"]})
    assert overridden.status_code == 200, overridden.text
    forbidden = stack.proxy.chat("sk-plain", "support-gpt", metadata={**EU_SUPPORT, "clearance_data_classes": ["personal"]})
    assert forbidden.status_code == 403, forbidden.text
    assert "data_class_not_allowed:personal" in refusal(forbidden)


def test_a_suspension_refuses_calls_within_the_ttl_and_a_resume_lets_them_pass(stack: Stack):
    call = lambda: stack.proxy.chat("sk-eu-support", "support-gpt")  # noqa: E731
    assert call().status_code == 200  # a decision is in the guard's cache
    suspended = stack.clearance.call(
        "POST", "/v1/models/openai/gpt-4o/suspend", stack.admin, {"reason": "Provider incident under investigation"}
    )
    assert suspended.status_code == 200, suspended.text
    try:
        refused, took = poll(call, lambda r: r.status_code == 403, TTL + 1)
        assert refused.status_code == 403, refused.text
        assert "suspended" in refusal(refused)
        assert took <= TTL + 1, f"refused after {took:.1f} s, TTL {TTL} s"
        print(f"suspension reached the proxy after {took:.2f} s (TTL {TTL} s)")
    finally:
        resumed = stack.clearance.call("POST", "/v1/models/openai/gpt-4o/resume", stack.admin, {"reason": "Resolved"})
    assert resumed.status_code == 200, resumed.text
    passed, took = poll(call, lambda r: r.status_code == 200, TTL + 1)
    assert passed.status_code == 200, passed.text
    assert took <= TTL + 1, f"allowed again after {took:.1f} s, TTL {TTL} s"
    print(f"resumption reached the proxy after {took:.2f} s")


def test_a_model_nobody_reviewed_is_refused(stack: Stack):
    response = stack.proxy.chat("sk-eu-support", "mistral-small")
    assert response.status_code == 403, response.text
    assert "mistral/mistral-small-latest is not_reviewed" in refusal(response)
    assert "not_reviewed" in response.json()["error"]["provider_specific_fields"]["clearance"]["reasons"]


def test_a_model_nobody_reviewed_shows_up_in_the_intake(stack: Stack):
    stack.proxy.chat("sk-eu-support", "mistral-small")
    probe = stack.clearance.call("GET", "/v1/intake", stack.manager)
    if probe.status_code == 404:
        print("NOTE: this Clearance answers 404 for GET /v1/intake; the intake assertion is skipped")
        pytest.skip("GET /v1/intake answers 404 (the intake is not in this Clearance yet)")

    def listed():
        response = stack.clearance.call("GET", "/v1/intake", stack.manager)
        assert response.status_code == 200, response.text
        found = [i for i in response.json()["items"] if (i["provider"], i["model"]) == ("mistral", "mistral-small-latest")]
        return found[0] if found else None

    wait_until(lambda: listed() is not None, 15, "mistral/mistral-small-latest in the intake")
    request = listed()
    assert GATEWAY in [a["sub"] for a in request["requested_by"]], request
    assert "support-chat" in request["use_cases"], request


def test_calls_are_refused_while_clearance_cannot_be_reached(stack: Stack):
    call = lambda: stack.proxy.chat("sk-eu-support", "support-gpt")  # noqa: E731
    assert call().status_code == 200
    stack.clearance.stop()
    try:
        refused, took = poll(call, lambda r: r.status_code != 200, TTL + TIMEOUT + 1)
        assert refused.status_code == 503, refused.text
        assert "clearance_unavailable" in refused.text
        assert took <= TTL + TIMEOUT + 1, f"still allowed {took:.1f} s after Clearance stopped"
        for _ in range(3):
            again = call()
            assert again.status_code == 503, again.text
    finally:
        stack.clearance.start()
    back, _ = poll(call, lambda r: r.status_code == 200, TTL + 1)
    assert back.status_code == 200, back.text
