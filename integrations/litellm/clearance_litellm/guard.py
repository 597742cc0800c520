"""The LiteLLM guardrail: before every call through the proxy, ask Clearance
whether the model the call would reach is cleared for the call's context.

Plugged in through LiteLLM's custom guardrail interface (a `CustomGuardrail`
subclass named in the proxy config's `guardrails:` with `mode: pre_call`);
LiteLLM calls `async_pre_call_hook` before the request is routed. The hook
maps the proxy model name to Clearance subjects (`context.subjects_for`),
reads the context from metadata (`context.context_from`), asks the client
(`client.Client`), and either returns the request untouched or raises an
`HTTPException` the proxy hands to the caller.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.guardrails import GuardrailEventHooks

from .client import Client, Decision, InvalidContext, Undecided, Unreachable
from .context import Context, UnmappedModel, Use, context_from, split_subject, subjects_for

log = logging.getLogger("clearance_litellm")

DEFAULT_TTL = 5.0
DEFAULT_TIMEOUT = 2.0


def _flag(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _number(value: object, default: float, name: str) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: `{value}` is not a number of seconds") from error
    if number < 0:
        raise ValueError(f"{name}: must be 0 or more seconds")
    return number


class ClearanceGuardrail(CustomGuardrail):
    """Refuses calls to models Clearance does not allow in the call's context.

    Settings, from the guardrail's `litellm_params` (see README.md):

    - `api_base`, else `CLEARANCE_SERVER`: Clearance's base URL (required);
    - `api_key`, else `CLEARANCE_TOKEN`: a bearer token with any Clearance
      role, usually `integrator` (required). The same variables as the
      `clearance check` gate, and the only `CLEARANCE_*` names a Clearance
      server sharing the environment accepts;
    - `clearance_cache_ttl`: seconds a decision is trusted without Clearance
      confirming it (default 5; 0 turns the cache off);
    - `timeout`: seconds to wait for Clearance (default 2);
    - `unreachable_fallback`: `fail_closed` (default) refuses calls while
      Clearance cannot be reached, `fail_open` lets them through with a
      logged error;
    - `clearance_models`: `{proxy model name: "provider/model"}`, which wins
      over each deployment's `model_info.clearance_model`, which wins over
      the deployment's `litellm_params.model`;
    - `clearance_request_context` (default true): whether a request's own
      `metadata` may state what its key and team leave unsaid.
    """

    def __init__(self, **kwargs: Any) -> None:
        api_base = kwargs.pop("api_base", None) or os.environ.get("CLEARANCE_SERVER")
        api_key = kwargs.pop("api_key", None) or os.environ.get("CLEARANCE_TOKEN")
        ttl = _number(kwargs.pop("clearance_cache_ttl", None), DEFAULT_TTL, "clearance_cache_ttl")
        timeout = _number(kwargs.pop("timeout", None), DEFAULT_TIMEOUT, "timeout")
        fallback = str(kwargs.pop("unreachable_fallback", None) or "fail_closed").lower()
        if fallback not in ("fail_closed", "fail_open"):
            raise ValueError("unreachable_fallback: must be `fail_closed` or `fail_open`")
        models = kwargs.pop("clearance_models", None) or {}
        if not isinstance(models, Mapping):
            raise ValueError("clearance_models: must map proxy model names to `provider/model`")
        for subject in models.values():
            split_subject(str(subject))  # refuse a bad mapping at start-up
        self.request_context = _flag(kwargs.pop("clearance_request_context", None), True)
        if not api_base:
            raise ValueError("the Clearance guard needs `api_base` or CLEARANCE_SERVER")
        if not api_key:
            raise ValueError("the Clearance guard needs `api_key` or CLEARANCE_TOKEN")
        self.fail_open = fallback == "fail_open"
        self.models: dict[str, str] = {str(k): str(v) for k, v in models.items()}
        self.client = Client(str(api_base), str(api_key), ttl=ttl, timeout=timeout)
        kwargs.setdefault("supported_event_hooks", [GuardrailEventHooks.pre_call])
        super().__init__(timeout=timeout, **kwargs)

    # -- the hook -------------------------------------------------------------

    async def async_pre_call_hook(
        self,
        user_api_key_dict: Any,
        cache: Any,
        data: dict,
        call_type: Any,
    ) -> dict | None:
        model_name = data.get("model")
        if not isinstance(model_name, str) or not model_name:
            return data  # a route that calls no model (files, batches' status, …)
        try:
            subjects = subjects_for(
                model_name,
                _deployments(model_name, getattr(user_api_key_dict, "team_id", None)),
                self.models,
                _provider_of,
            )
        except UnmappedModel as error:
            raise _refusal(403, model_name, ["unmapped_model"], str(error)) from error
        context = self.context_of(user_api_key_dict, data)
        uses = [Use(provider, model, context) for provider, model in subjects]
        try:
            decisions = await self.client.decide(uses)
        except InvalidContext as error:
            raise _refusal(
                403, model_name, ["invalid_context"], f"Clearance refused the context: {error.detail}"
            ) from error
        except Unreachable as error:
            if self.fail_open:
                log.error("Clearance unreachable, letting %s through (fail_open): %s", model_name, error)
                return data
            raise _refusal(503, model_name, ["clearance_unavailable"], str(error)) from error
        except Undecided as error:
            log.error("Clearance gave no decision for %s: %s", model_name, error)
            raise _refusal(503, model_name, ["clearance_unavailable"], str(error)) from error
        denied = [d for d in decisions if not d.allow]
        if denied:
            raise _denial(model_name, denied)
        return data

    def context_of(self, user_api_key_dict: Any, data: Mapping[str, Any]) -> Context:
        """The call's context: key metadata, then team metadata, then the
        request's metadata (unless `clearance_request_context` is off)."""
        layers: list[Mapping[str, Any] | None] = [
            getattr(user_api_key_dict, "metadata", None),
            getattr(user_api_key_dict, "team_metadata", None),
        ]
        if self.request_context:
            layers += [data.get("metadata"), data.get("litellm_metadata")]
        return context_from(layers)


def _deployments(model_name: str, team_id: str | None) -> list[Mapping[str, Any]]:
    """The deployments the proxy's router may send `model_name` to."""
    from litellm.proxy import proxy_server  # the module holds the live router

    router = getattr(proxy_server, "llm_router", None)
    if router is None:
        return []
    return list(router.get_model_list(model_name=model_name, team_id=team_id) or [])


def _provider_of(**kwargs: Any) -> tuple:
    import litellm

    return litellm.get_llm_provider(**kwargs)


def _refusal(status: int, model_name: str, reasons: list[str], message: str) -> HTTPException:
    return HTTPException(
        status_code=status,
        detail={
            "error": f"Clearance guard refused `{model_name}`: {message}",
            "clearance": {"model": model_name, "allow": False, "reasons": reasons},
        },
    )


def _denial(model_name: str, denied: list[Decision]) -> HTTPException:
    """403 naming each refused subject with its status and reasons."""
    said = "; ".join(f"{d.subject} is {d.status} ({', '.join(d.reasons)})" for d in denied)
    reasons = list(dict.fromkeys(r for d in denied for r in d.reasons))
    return HTTPException(
        status_code=403,
        detail={
            "error": f"Clearance guard refused `{model_name}`: {said}",
            "clearance": {
                "model": model_name,
                "allow": False,
                "reasons": reasons,
                "results": [
                    {"provider": d.provider, "model": d.model, "status": d.status, "reasons": list(d.reasons)}
                    for d in denied
                ],
            },
        },
    )
