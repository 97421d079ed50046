"""Replicas of one self-hosted judge or target: which base URL the next request goes to, and which are down.

A judge or target may name several base URLs serving the same model (`openai:MODEL@URL1,URL2`, or
`base_urls = [...]` in its judges or targets file). Each request goes to the least-loaded healthy replica:
the fewest requests in flight for its concurrency, then the fewest sent so far for its concurrency (so a
run that sends one request at a time still takes turns), then the first listed. A replica that cannot be
reached is down for a cooldown; while every replica is down, the one whose cooldown ends first is tried.
`judge.calls.client.Connection` sends the requests and retries them; this module only keeps the counts
and makes the choice (pure, no I/O, no clock of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class ReplicaLoad:
    """One replica as the choice sees it. `down_until` is a time on the caller's clock (0: never down)."""

    capacity: int  # its share of the concurrency (replica_concurrency), at least 1
    in_flight: int = 0
    sent: int = 0
    down_until: float = 0.0

    def healthy(self, now: float) -> bool:
        return self.down_until <= now


def _load_order(load: ReplicaLoad, index: int) -> tuple[float, float, int]:
    return load.in_flight / load.capacity, load.sent / load.capacity, index


def pick_replica(loads: Sequence[ReplicaLoad], now: float, avoid: frozenset[int] = frozenset()) -> int:
    """The index of the replica the next request goes to: among the healthy ones not in `avoid` (those this
    request already tried), the least loaded; with none, the one whose cooldown ends first."""
    if not loads:
        raise ValueError("no replicas to choose from")
    healthy = [i for i, load in enumerate(loads) if load.healthy(now) and i not in avoid]
    if healthy:
        return min(healthy, key=lambda i: _load_order(loads[i], i))
    return min(range(len(loads)), key=lambda i: (loads[i].down_until, i))


@dataclass
class ReplicaCounts:
    """What one replica did in this process, for the run's summary."""

    url: str  # public_url: no credentials
    requests: int = 0
    failures: int = 0  # requests that got no answer (unreachable, timed out, an HTTP error)


class ReplicaPool:
    """The replicas of one connection: their loads, health and counts. One event loop uses it, so a choice
    and the count it changes happen together without a lock."""

    def __init__(self, public_urls: Sequence[str], capacities: Sequence[int], cooldown_s: float) -> None:
        if len(public_urls) != len(capacities) or not public_urls:
            raise ValueError("one capacity per replica URL, and at least one URL")
        self.loads = [ReplicaLoad(capacity) for capacity in capacities]
        self.counts = [ReplicaCounts(url) for url in public_urls]
        self.cooldown_s = cooldown_s

    def __len__(self) -> int:
        return len(self.loads)

    def take(self, now: float, avoid: frozenset[int] = frozenset()) -> int:
        """Choose the replica for one request and count the request as in flight there."""
        index = pick_replica(self.loads, now, avoid)
        self.loads[index].in_flight += 1
        self.loads[index].sent += 1
        self.counts[index].requests += 1
        return index

    def answered(self, index: int) -> None:
        """The request got its answer: the replica is up."""
        self.loads[index].in_flight -= 1
        self.loads[index].down_until = 0.0

    def failed(self, index: int, now: float, *, unreachable: bool) -> None:
        """The request got no answer. An unreachable replica (connection refused or dropped, timed out) is
        down until the cooldown ends; one that answered with an HTTP error is up (overloaded, perhaps, which
        the request's retries and backoff are for)."""
        self.loads[index].in_flight -= 1
        self.counts[index].failures += 1
        self.loads[index].down_until = now + self.cooldown_s if unreachable else 0.0

    def abandoned(self, index: int) -> None:
        """The request was cancelled (the call's deadline, a stopped run): no verdict on the replica."""
        self.loads[index].in_flight -= 1

    def another_healthy(self, now: float, tried: frozenset[int]) -> bool:
        """Whether a healthy replica this request has not tried yet is left."""
        return any(load.healthy(now) and i not in tried for i, load in enumerate(self.loads))
