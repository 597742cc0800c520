"""The proxy's API keys in the test: LiteLLM's documented custom auth
(`general_settings.custom_auth`) standing in for virtual keys, which need
LiteLLM's database. Each key carries the metadata an administrator would
set on a virtual key or its team, so the guard reads key and team metadata
exactly as it does for real keys."""

from fastapi import Request
from litellm.proxy._types import UserAPIKeyAuth

KEYS = {
    # Key metadata: EU support chat on internal data.
    "sk-eu-support": UserAPIKeyAuth(
        api_key="sk-eu-support",
        key_alias="eu-support",
        metadata={
            "clearance_use_case": "support-chat",
            "clearance_regions": ["eu"],
            "clearance_data_classes": "internal",
        },
    ),
    # Team metadata: the US team, same use and data.
    "sk-us-team": UserAPIKeyAuth(
        api_key="sk-us-team",
        key_alias="us-team",
        team_id="us-support",
        team_metadata={
            "clearance_use_case": "support-chat",
            "clearance_regions": ["us"],
            "clearance_data_classes": ["internal"],
        },
    ),
    # No metadata: the request's own metadata states the context.
    "sk-plain": UserAPIKeyAuth(api_key="sk-plain", key_alias="plain"),
}


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    key = KEYS.get(api_key.removeprefix("Bearer ").strip())
    if key is None:
        raise Exception("unknown key")
    return key
