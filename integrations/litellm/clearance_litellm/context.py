"""What the guard asks Clearance about: which `provider/model` a proxy model
name stands for, and the context of the call (use case, data classes,
regions, features) read from the key's, the team's and the request's
metadata. Plain functions over plain data: no network, no LiteLLM state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# Metadata keys the guard reads, on a key, a team or a request.
USE_CASE = "clearance_use_case"
DATA_CLASSES = "clearance_data_classes"
REGIONS = "clearance_regions"
FEATURES = "clearance_features"
# On a deployment's `model_info`: the Clearance subject, `provider/model`.
MODEL_INFO_KEY = "clearance_model"


@dataclass(frozen=True)
class Context:
    """The context of a call, as `POST /v1/status/check` reads it."""

    use_case: str | None = None
    data_classes: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Use:
    """One model in one context: an item of a check, and a cache key."""

    provider: str
    model: str
    context: Context

    @property
    def subject(self) -> str:
        return f"{self.provider}/{self.model}"

    def item(self) -> dict[str, object]:
        """The check item; unstated parts are left out, as Clearance expects."""
        item: dict[str, object] = {"provider": self.provider, "model": self.model}
        if self.context.use_case is not None:
            item["use_case"] = self.context.use_case
        if self.context.data_classes is not None:
            item["data_classes"] = list(self.context.data_classes)
        if self.context.regions is not None:
            item["regions"] = list(self.context.regions)
        if self.context.features is not None:
            item["features"] = list(self.context.features)
        return item


class UnmappedModel(Exception):
    """The proxy model name cannot be turned into a `provider/model`."""


def _codes(value: object) -> tuple[str, ...] | None:
    """A list of codes from metadata: a list, or one comma-separated string.
    Sorted and de-duplicated, so equal contexts share one cache entry."""
    if value is None:
        return None
    if isinstance(value, str):
        parts: Iterable[object] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        parts = value
    else:
        return None
    return tuple(sorted({str(p).strip() for p in parts if str(p).strip()}))


def _use_case(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def context_from(layers: Sequence[Mapping[str, object] | None]) -> Context:
    """The context from metadata layers, the first that states a part wins.

    The guard passes the key's metadata, then the team's, then (unless turned
    off) the request's: what an administrator set on a key or team cannot be
    changed by a caller, and a caller can only fill what they leave unsaid.
    """

    def first(key: str, parse: Callable[[object], object]) -> object:
        for layer in layers:
            if isinstance(layer, Mapping) and key in layer:
                parsed = parse(layer[key])
                if parsed is not None:
                    return parsed
        return None

    return Context(
        use_case=first(USE_CASE, _use_case),  # type: ignore[arg-type]
        data_classes=first(DATA_CLASSES, _codes),  # type: ignore[arg-type]
        regions=first(REGIONS, _codes),  # type: ignore[arg-type]
        features=first(FEATURES, _codes),  # type: ignore[arg-type]
    )


def split_subject(subject: str) -> tuple[str, str]:
    """`provider/model` as a pair; the model may itself hold no `/`."""
    provider, sep, model = subject.strip().partition("/")
    if not sep or not provider or not model or "/" in model:
        raise UnmappedModel(f"`{subject}` is not `provider/model`")
    return provider, model


# `(model, custom_llm_provider=..., api_base=...) -> (model, provider, ...)`:
# LiteLLM's own `get_llm_provider`, passed in so this module stays pure.
ProviderOf = Callable[..., tuple]


def _from_litellm_model(
    model: str, params: Mapping[str, object], provider_of: ProviderOf
) -> tuple[str, str]:
    try:
        resolved = provider_of(
            model=model,
            custom_llm_provider=params.get("custom_llm_provider"),
            api_base=params.get("api_base"),
        )
    except Exception as error:  # LiteLLM raises its own BadRequestError here
        raise UnmappedModel(f"LiteLLM names no provider for `{model}`") from error
    name, provider = slug(str(resolved[0] or "")), slug(str(resolved[1] or ""))
    if not provider or not name:
        raise UnmappedModel(f"LiteLLM names no provider for `{model}`")
    return provider, name


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A LiteLLM name as a Clearance slug (1 to 63 lower-case letters, digits
    and hyphens): lower case, every run of other characters one hyphen, e.g.
    `gpt-4.1` → `gpt-4-1`, `anthropic.claude-v2:1` → `anthropic-claude-v2-1`.
    Only derived names are changed; a mapping is used as written."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-")[:63].rstrip("-")


def subjects_for(
    model_name: str,
    deployments: Sequence[Mapping[str, object]],
    overrides: Mapping[str, str],
    provider_of: ProviderOf,
) -> list[tuple[str, str]]:
    """The `(provider, model)` pairs a call to `model_name` may reach.

    In order of precedence: the guard's own mapping (by proxy model name);
    each deployment's `model_info.clearance_model`; each deployment's
    `litellm_params.model` as LiteLLM reads it (`openai/gpt-4o` → `openai`,
    `gpt-4o`; a wildcard route such as `openai/*` → the name asked for),
    made a slug (see `slug`). A
    model group of several deployments yields each distinct pair: the call is
    allowed only if every deployment it could be routed to is.
    """
    if model_name in overrides:
        return [split_subject(overrides[model_name])]
    pairs: list[tuple[str, str]] = []
    for deployment in deployments:
        info = deployment.get("model_info")
        params = deployment.get("litellm_params")
        info = info if isinstance(info, Mapping) else {}
        params = params if isinstance(params, Mapping) else {}
        explicit = info.get(MODEL_INFO_KEY)
        if isinstance(explicit, str) and explicit.strip():
            pair = split_subject(explicit)
        else:
            routed = str(params.get("model") or "")
            if not routed:
                raise UnmappedModel(f"a deployment of `{model_name}` names no model")
            if "*" in routed:
                provider, _ = _from_litellm_model(routed.replace("*", "x"), params, provider_of)
                asked = model_name.split("/", 1)[1] if model_name.startswith(provider + "/") else model_name
                pair = _from_litellm_model(f"{provider}/{asked}", params, provider_of)
            else:
                pair = _from_litellm_model(routed, params, provider_of)
        if pair not in pairs:
            pairs.append(pair)
    if not pairs:
        pairs.append(_from_litellm_model(model_name, {}, provider_of))
    return pairs
