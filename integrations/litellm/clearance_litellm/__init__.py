"""Clearance's guard for the LiteLLM proxy: before every call, ask Clearance
whether the model is cleared for the call's context, and refuse it if not.

Name `clearance_litellm.ClearanceGuardrail` in the proxy config's
`guardrails:` (see README.md).
"""

from .client import Client, Decision, InvalidContext, Undecided, Unreachable
from .context import Context, UnmappedModel, Use
from .guard import ClearanceGuardrail

__all__ = [
    "ClearanceGuardrail",
    "Client",
    "Context",
    "Decision",
    "InvalidContext",
    "Undecided",
    "UnmappedModel",
    "Unreachable",
    "Use",
]
