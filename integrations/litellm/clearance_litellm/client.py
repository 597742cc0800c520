"""Asking Clearance, and remembering its answers briefly.

`POST /v1/status/check` decides a model in a context; it answers
`Cache-Control: no-store` and no `ETag`, so a decision cannot be revalidated
by itself. `GET /v1/status/{provider}/{model}` publishes the model's
clearance with a strong `ETag` that changes whenever anything a decision
depends on changes (status, conditions, `valid_until`, and the lapse to
`expired`, which is computed at query time). The cache is built on that:

- a decision is kept for `ttl` seconds from the moment it was asked for;
- each decision records the clearance `ETag` read *before* the check was
  sent (so a change racing the check can only make the tag look older, never
  newer, than the decision);
- when decisions of a model are older than `ttl`, one conditional
  `GET /v1/status/{provider}/{model}` with `If-None-Match` revalidates all of
  them at once: `304` renews every decision of that model made under that tag
  (whatever their contexts) for another `ttl`; `200` means the clearance
  changed, and the decisions are asked for again;
- nothing is ever used past its `ttl` without Clearance confirming it: when
  Clearance cannot be reached, the caller gets `Unreachable`, not a stale
  answer.

So a suspension reaches the gateway within `ttl` (plus one round trip), and a
gateway serving many contexts of one model sends one small conditional
request per model per `ttl` instead of one check per context. With `ttl` 0
nothing is cached and every call is one check.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from .context import Use

USER_AGENT = "clearance-litellm/0.1"


class Undecided(Exception):
    """Clearance gave no decision: the guard's token was refused, or the
    answer was not one Clearance gives. Always refused, even under
    `fail_open`: a misconfigured guard must not let everything through."""


class Unreachable(Undecided):
    """Clearance could not be reached: connection refused, a time-out, or a
    `5xx`/`429` answer. Refused unless the guard is configured to fail open."""


class InvalidContext(Exception):
    """Clearance refused the context itself (422), e.g. a region or use case
    outside its vocabulary; `detail` is Clearance's own explanation."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Decision:
    """One result of a check."""

    provider: str
    model: str
    allow: bool
    status: str
    reasons: tuple[str, ...]
    valid_until: str | None

    @property
    def subject(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class _Kept:
    decision: Decision
    etag: str | None
    asked_at: float


@dataclass
class _Tag:
    etag: str
    confirmed_at: float


Pair = tuple[str, str]


class Client:
    """A Clearance client for one gateway process (one event loop)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ttl: float = 5.0,
        timeout: float = 2.0,
        max_entries: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError("the cache TTL must be 0 or more seconds")
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self._token = token
        self._timeout = timeout
        self._max_entries = max_entries
        self._transport = transport
        self._clock = clock
        self._http: httpx.AsyncClient | None = None
        self._kept: OrderedDict[Use, _Kept] = OrderedDict()
        self._tags: OrderedDict[Pair, _Tag] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future] = {}
        # Requests sent, by kind: read by tests and useful in a debugger.
        self.sent = {"check": 0, "lookup": 0, "not_modified": 0}

    # -- the one public question -------------------------------------------

    async def decide(self, uses: Sequence[Use]) -> list[Decision]:
        """The decision for each use, in order, from the cache when it may be
        trusted, otherwise from Clearance."""
        if self.ttl == 0:
            return await self._check(list(uses))
        # Models whose kept decisions are old but may be renewed by a 304.
        to_confirm = {
            (u.provider, u.model)
            for u in uses
            if self._fresh(u) is None and self._renewable(u)
        }
        await self._gather(self._confirm_once(pair) for pair in to_confirm)
        missing = [u for u in dict.fromkeys(uses) if self._fresh(u) is None]
        if missing:
            # Tags first, then the check: see the module documentation.
            stale_tags = {
                (u.provider, u.model)
                for u in missing
                if not self._tag_fresh((u.provider, u.model))
            }
            await self._gather(self._confirm_once(pair) for pair in stale_tags)
            tags = {(u.provider, u.model): self._tags.get((u.provider, u.model)) for u in missing}
            asked_at = self._clock()
            decisions = await self._once(("check", tuple(missing)), lambda: self._check(missing))
            for use, decision in zip(missing, decisions):
                tag = tags[(use.provider, use.model)]
                self._keep(use, _Kept(decision, tag.etag if tag else None, asked_at))
            fresh = dict(zip(missing, decisions))
        else:
            fresh = {}
        out = []
        for use in uses:
            decision = fresh.get(use) or self._fresh(use)
            if decision is None:  # evicted between the steps above: ask directly
                decision = (await self._check([use]))[0]
            out.append(decision)
        return out

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- the cache ------------------------------------------------------------

    def _fresh(self, use: Use) -> Decision | None:
        kept = self._kept.get(use)
        if kept is None:
            return None
        now = self._clock()
        if now - kept.asked_at < self.ttl:
            return kept.decision
        tag = self._tags.get((use.provider, use.model))
        if (
            tag is not None
            and kept.etag is not None
            and kept.etag == tag.etag
            and now - tag.confirmed_at < self.ttl
        ):
            return kept.decision
        return None

    def _renewable(self, use: Use) -> bool:
        kept = self._kept.get(use)
        tag = self._tags.get((use.provider, use.model))
        return kept is not None and tag is not None and kept.etag == tag.etag

    def _tag_fresh(self, pair: Pair) -> bool:
        tag = self._tags.get(pair)
        return tag is not None and self._clock() - tag.confirmed_at < self.ttl

    def _keep(self, use: Use, kept: _Kept) -> None:
        self._kept[use] = kept
        self._kept.move_to_end(use)
        while len(self._kept) > self._max_entries:
            self._kept.popitem(last=False)

    def _set_tag(self, pair: Pair, tag: _Tag) -> None:
        self._tags[pair] = tag
        self._tags.move_to_end(pair)
        while len(self._tags) > self._max_entries:
            self._tags.popitem(last=False)

    # -- requests ---------------------------------------------------------------

    async def _once(self, key: Hashable, work: Callable[[], Awaitable]) -> object:
        """Runs `work` once for every caller that asks with the same `key`
        while it runs (a burst of calls at expiry sends one request)."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(work())
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(future)

    @staticmethod
    async def _gather(awaitables) -> None:
        await asyncio.gather(*awaitables)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                transport=self._transport,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
            )
        return self._http

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self._client().request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise Unreachable(f"Clearance at {self.base_url} did not answer in time") from error
        except httpx.TransportError as error:
            raise Unreachable(f"could not reach Clearance at {self.base_url}: {error}") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise Unreachable(f"Clearance answered {response.status_code} to {method} {path}")
        if response.status_code in (401, 403):
            raise Undecided(
                f"Clearance refused the guard's token ({response.status_code}): "
                "check CLEARANCE_TOKEN and its role"
            )
        return response

    async def _confirm_once(self, pair: Pair) -> None:
        await self._once(("confirm", pair), lambda: self._confirm(pair))

    async def _confirm(self, pair: Pair) -> None:
        """Reads the model's clearance tag, conditionally when one is kept."""
        provider, model = pair
        path = f"/v1/status/{quote(provider, safe='')}/{quote(model, safe='')}"
        kept = self._tags.get(pair)
        headers = {"If-None-Match": kept.etag} if kept else {}
        self.sent["lookup"] += 1
        response = await self._send("GET", path, headers=headers)
        now = self._clock()
        if response.status_code == 304 and kept is not None:
            self.sent["not_modified"] += 1
            self._set_tag(pair, _Tag(kept.etag, now))
            return
        etag = response.headers.get("ETag")
        if response.status_code == 200 and etag:
            self._set_tag(pair, _Tag(etag, now))
            return
        if response.status_code == 200:
            self._tags.pop(pair, None)  # no tag offered: decisions live `ttl` only
            return
        raise Undecided(f"Clearance answered {response.status_code} to GET {path}")

    async def _check(self, uses: list[Use]) -> list[Decision]:
        """One `POST /v1/status/check` for `uses`, in order."""
        self.sent["check"] += 1
        response = await self._send(
            "POST", "/v1/status/check", json={"items": [u.item() for u in uses]}
        )
        if response.status_code == 422:
            raise InvalidContext(_problem_detail(response))
        if response.status_code != 200:
            raise Undecided(f"Clearance answered {response.status_code} to a check")
        try:
            results = response.json()["results"]
            decisions = [
                Decision(
                    provider=str(r["provider"]),
                    model=str(r["model"]),
                    allow=r["allow"] is True,
                    status=str(r["status"]),
                    reasons=tuple(str(x) for x in r.get("reasons") or ()),
                    valid_until=r.get("valid_until"),
                )
                for r in results
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise Undecided("Clearance's answer to a check was not understood") from error
        if len(decisions) != len(uses):
            raise Undecided("Clearance answered a check with the wrong number of results")
        return decisions


def _problem_detail(response: httpx.Response) -> str:
    """The `detail` of a problem+json answer, with its field errors."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:500]
    parts = [str(problem.get("detail") or problem.get("title") or "invalid context")]
    for error in problem.get("errors") or ():
        if isinstance(error, dict):
            parts.append(f"{error.get('field')}: {error.get('message')}")
    return "; ".join(parts)
