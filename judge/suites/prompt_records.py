"""Prompt records (what `trustmh suites build` writes) and the seeded sample behind `--limit`."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def prompt_record(
    suite: str,
    local_id: str | int,
    content: str,
    meta: dict[str, Any],
    *,
    pillar: str | list[str] | None = None,
    reference: str | None = None,
    dataset: str = "trustmh-bench",
    history: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """One prompt: `content` is the last user turn, after the earlier turns in `history` (none for a
    single-turn prompt); `pillar` (one rubric name or several) only when the suite's metric needs a judge."""
    record: dict[str, Any] = {"id": f"{suite}:{local_id}"}
    if pillar is not None:
        record["pillar"] = pillar
    record["messages"] = [*(dict(m) for m in history), {"role": "user", "content": content}]
    if reference is not None:
        record["reference"] = reference
    record["meta"] = {"suite": suite, "dataset": dataset, **meta}
    return record


def sample_prompts(prompts: Sequence[dict[str, Any]], limit: int | None, seed: int, suite: str) -> list[dict[str, Any]]:
    """`limit` prompts drawn without replacement, in their original order.

    The draw depends only on the seed, the suite id and the suite's size, so the same arguments give
    the same prompts every time, and adding another suite to a build never changes this one's sample.
    """
    if limit is None or limit >= len(prompts):
        return list(prompts)
    if limit < 0:
        raise ValueError("limit must be at least 0")
    rng = np.random.default_rng([seed, zlib.crc32(suite.encode("utf-8"))])
    chosen = np.sort(rng.choice(len(prompts), size=limit, replace=False))
    return [prompts[int(i)] for i in chosen]
