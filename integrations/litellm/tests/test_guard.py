"""The guard's parts without a proxy: the mapping of model names, the context
from metadata, the cache against a scripted Clearance (httpx's mock
transport, a manual clock), and what the hook does when Clearance fails."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import HTTPException

from clearance_litellm import ClearanceGuardrail, Client, Context, Undecided, Unreachable, Use
from clearance_litellm.context import UnmappedModel, context_from, slug, subjects_for


def provider_of(model: str, custom_llm_provider=None, api_base=None):
    provider, _, name = model.partition("/")
    if not name:
        raise ValueError("no provider")
    return name, provider, None, None


class Scripted:
    """A Clearance whose answers the test chooses; it counts what it is sent."""

    def __init__(self) -> None:
        self.status = "approved"
        self.etag = '"v1"'
        self.down = False
        self.answer: int | None = None
        self.checks = 0
        self.lookups = 0
        self.conditional = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.answer is not None:
            return httpx.Response(self.answer, json={"type": "/problems/x", "detail": "no"})
        if request.method == "GET":
            self.lookups += 1
            if request.headers.get("If-None-Match") == self.etag:
                self.conditional += 1
                return httpx.Response(304, headers={"ETag": self.etag})
            return httpx.Response(200, headers={"ETag": self.etag}, json={"status": self.status})
        self.checks += 1
        items = json.loads(request.content)["items"]
        allow = self.status == "approved"
        return httpx.Response(
            200,
            json={
                "results": [
                    {
                        "provider": i["provider"],
                        "model": i["model"],
                        "allow": allow,
                        "status": self.status,
                        "reasons": [] if allow else [self.status],
                        "valid_until": None,
                    }
                    for i in items
                ]
            },
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(server: Scripted, clock: Clock, ttl: float = 5.0) -> Client:
    return Client("http://clearance.test", "t", ttl=ttl, transport=httpx.MockTransport(server), clock=clock)


EU = Use("openai", "gpt-4o", Context(regions=("eu",)))
US = Use("openai", "gpt-4o", Context(regions=("us",)))


def decide(c: Client, *uses: Use):
    return asyncio.run(c.decide(list(uses)))


# -- mapping and context ------------------------------------------------------


def test_the_deployment_model_maps_to_provider_and_model():
    deployments = [{"litellm_params": {"model": "openai/gpt-4o"}}, {"litellm_params": {"model": "openai/gpt-4o"}}]
    assert subjects_for("support-gpt", deployments, {}, provider_of) == [("openai", "gpt-4o")]


def test_a_mapping_wins_over_model_info_which_wins_over_the_deployment():
    deployments = [{"litellm_params": {"model": "openai/ft-1"}, "model_info": {"clearance_model": "acme/house"}}]
    assert subjects_for("house", deployments, {}, provider_of) == [("acme", "house")]
    assert subjects_for("house", deployments, {"house": "acme/other"}, provider_of) == [("acme", "other")]


def test_every_deployment_of_a_group_is_asked_about():
    deployments = [{"litellm_params": {"model": "openai/gpt-4o"}}, {"litellm_params": {"model": "azure/gpt4o-eu"}}]
    assert subjects_for("gpt", deployments, {}, provider_of) == [("openai", "gpt-4o"), ("azure", "gpt4o-eu")]


def test_a_wildcard_route_maps_the_name_asked_for_and_names_become_slugs():
    deployments = [{"litellm_params": {"model": "openai/*"}}]
    assert subjects_for("openai/GPT-4.1", deployments, {}, provider_of) == [("openai", "gpt-4-1")]
    assert slug("anthropic.claude-v2:1") == "anthropic-claude-v2-1"


def test_a_name_without_a_provider_cannot_be_mapped():
    with pytest.raises(UnmappedModel):
        subjects_for("mystery", [], {}, provider_of)
    with pytest.raises(UnmappedModel):
        subjects_for("x", [], {"x": "no-slash"}, provider_of)


def test_the_key_wins_over_the_team_which_wins_over_the_request():
    key = {"clearance_regions": ["eu"]}
    team = {"clearance_regions": "us", "clearance_use_case": "support-chat"}
    request = {"clearance_regions": ["br"], "clearance_use_case": "x", "clearance_data_classes": "internal, public"}
    context = context_from([key, team, request])
    assert context == Context(
        use_case="support-chat", data_classes=("internal", "public"), regions=("eu",), features=None
    )
    assert Use("openai", "gpt-4o", context).item() == {
        "provider": "openai",
        "model": "gpt-4o",
        "use_case": "support-chat",
        "data_classes": ["internal", "public"],
        "regions": ["eu"],
    }


# -- the cache -----------------------------------------------------------------


def test_a_decision_is_reused_within_the_ttl():
    server, clock = Scripted(), Clock()
    c = client(server, clock)
    decide(c, EU)
    clock.now += 4.9
    assert decide(c, EU)[0].allow
    assert (server.lookups, server.checks) == (1, 1)


def test_one_conditional_lookup_renews_every_context_of_an_unchanged_model():
    server, clock = Scripted(), Clock()
    c = client(server, clock)
    decide(c, EU)
    decide(c, US)
    clock.now += 6
    assert [d.allow for d in decide(c, EU, US)] == [True, True]
    assert server.checks == 2, "no check sent again"
    assert server.conditional == 1, "one 304 for both contexts"


def test_a_changed_clearance_is_asked_about_again_after_the_ttl():
    server, clock = Scripted(), Clock()
    c = client(server, clock)
    decide(c, EU)
    server.status, server.etag = "suspended", '"v2"'
    clock.now += 2
    assert decide(c, EU)[0].allow, "within the TTL the kept decision stands"
    clock.now += 4
    decision = decide(c, EU)[0]
    assert (decision.allow, decision.reasons) == (False, ("suspended",))
    assert server.checks == 2


def test_nothing_kept_is_used_past_the_ttl_when_clearance_is_down():
    server, clock = Scripted(), Clock()
    c = client(server, clock)
    decide(c, EU)
    server.down = True
    clock.now += 6
    with pytest.raises(Unreachable):
        decide(c, EU)


def test_a_refused_token_is_undecided_not_unreachable():
    server, clock = Scripted(), Clock()
    server.answer = 401
    with pytest.raises(Undecided) as raised:
        decide(client(server, clock), EU)
    assert not isinstance(raised.value, Unreachable)


def test_a_ttl_of_zero_checks_every_time():
    server, clock = Scripted(), Clock()
    c = client(server, clock, ttl=0)
    decide(c, EU)
    decide(c, EU)
    assert (server.lookups, server.checks) == (0, 2)


# -- the hook ------------------------------------------------------------------


def guard(server: Scripted, **settings) -> ClearanceGuardrail:
    g = ClearanceGuardrail(
        guardrail_name="clearance",
        event_hook="pre_call",
        default_on=True,
        api_base="http://clearance.test",
        api_key="t",
        **settings,
    )
    g.client = Client("http://clearance.test", "t", transport=httpx.MockTransport(server))
    return g


def hook(g: ClearanceGuardrail, data: dict):
    from litellm.proxy._types import UserAPIKeyAuth

    return asyncio.run(g.async_pre_call_hook(UserAPIKeyAuth(), None, data, "completion"))


def test_a_denial_is_a_403_naming_the_reasons():
    server = Scripted()
    server.status = "suspended"
    with pytest.raises(HTTPException) as raised:
        hook(guard(server), {"model": "openai/gpt-4o"})
    assert raised.value.status_code == 403
    assert raised.value.detail["clearance"]["reasons"] == ["suspended"]
    assert "openai/gpt-4o is suspended" in raised.value.detail["error"]


def test_unreachable_clearance_fails_closed_by_default_and_open_when_configured():
    server = Scripted()
    server.down = True
    with pytest.raises(HTTPException) as raised:
        hook(guard(server), {"model": "openai/gpt-4o"})
    assert raised.value.status_code == 503
    assert raised.value.detail["clearance"]["reasons"] == ["clearance_unavailable"]
    data = {"model": "openai/gpt-4o"}
    assert hook(guard(server, unreachable_fallback="fail_open"), data) is data


def test_a_refused_token_is_refused_even_when_failing_open():
    server = Scripted()
    server.answer = 403
    with pytest.raises(HTTPException) as raised:
        hook(guard(server, unreachable_fallback="fail_open"), {"model": "openai/gpt-4o"})
    assert raised.value.status_code == 503
