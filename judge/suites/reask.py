"""The paper protocol's re-asks: the authors of ConfAIde tiers 1 and 2 (privacy1.py, privacy2.py
`model_inference`) ask the target again, without bound, until their `parse_response` accepts the answer.
Here the answers their reader rejects are asked again after the first pass, at most `max_reasks` times,
each round a respond stage of its own (OUT/reask/<attempt>/) through the one engine: its calls have keys of
their own (the attempt number), so the cache never hands back the rejected answer and a resumed or re-run
bench pays for no re-ask twice. The scorecard reads each call's last answered re-ask
(judge.suites.scorecard.final_calls) and counts the re-asks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from judge.errors import ExitCode
from judge.respond.pipeline import RespondOptions, execute_responses, prepare_responses, respond_dry_run
from judge.rundir import make_private_dir, write_json_atomic, write_jsonl_atomic
from judge.suites.catalogue import SUITES
from judge.suites.paper import REASK_DIR, REASK_SUMMARY, reader_for, reasks
from judge.suites.scorecard import final_calls, iter_jsonl


def rejected(call: Mapping[str, Any]) -> bool:
    """An answered call of a re-asking suite whose answer the authors' reader does not accept."""
    suite = (call.get("meta") or {}).get("suite")
    if call.get("status") != "ok" or not reasks(suite):
        return False
    read = reader_for(suite, "paper", SUITES[suite].read)
    return read is not None and read(call).unparsed


def rejected_pairs(run_dir: Path, rounds: int) -> dict[str, set[str]]:
    """Prompt id → the targets whose answer, after `rounds` re-ask rounds, the authors' reader still rejects."""
    pairs: dict[str, set[str]] = {}
    for _, call in final_calls(run_dir, rounds):
        if rejected(call):
            pairs.setdefault(str(call["prompt_id"]), set()).add(str(call["target"]))
    return pairs


def reask_prompts(prompts: Path, chosen: set[str] | None, attempt: int) -> Iterator[dict[str, Any]]:
    """The bench's prompt records (in their order) of the `chosen` ids (None: of every re-asking suite), with
    the attempt in `meta.reask`, so each call's row says which attempt it is."""
    for _, prompt in iter_jsonl(prompts):
        meta = prompt.get("meta") or {}
        if (prompt["id"] in chosen) if chosen is not None else reasks(meta.get("suite")):
            yield {**prompt, "meta": {**meta, "reask": attempt}}


def run_reasks(respond: RespondOptions, run_dir: Path, max_reasks: int) -> tuple[ExitCode, dict[str, Any]]:
    """Ask again, round after round, the answers the authors' reader rejects, until it accepts them all or
    `max_reasks` rounds were asked; OUT/reask/summary.json holds the bound and each round's call counts.
    Rounds left over from an earlier run with a larger bound (or other answers) are removed."""
    root = run_dir / REASK_DIR
    make_private_dir(root)
    code, rounds = ExitCode.OK, []
    for attempt in range(1, max_reasks + 1):
        pairs = rejected_pairs(run_dir, attempt - 1)
        if not pairs:
            break
        stage = root / str(attempt)
        make_private_dir(stage)
        write_jsonl_atomic(stage / "prompts.jsonl", reask_prompts(respond.prompts[0], set(pairs), attempt))
        stage_code, summary = execute_responses(prepare_responses(replace(
            respond, prompts=[stage / "prompts.jsonl"], out=stage / "respond", only=pairs, attempt=attempt)))
        code = ExitCode.FAILED_VERDICTS if stage_code == ExitCode.FAILED_VERDICTS else code
        rounds.append({"attempt": attempt, "calls": summary["calls"], "cost_usd_this_run": summary.get(
            "cost_usd_this_run"), "tokens_this_run": summary.get("tokens_this_run")})
    stale = len(rounds) + 1
    while (root / str(stale)).is_dir():
        shutil.rmtree(root / str(stale))
        stale += 1
    write_json_atomic(root / REASK_SUMMARY, {"max_reasks": max_reasks, "rounds": rounds})
    return code, {"max_reasks": max_reasks, "rounds": rounds}


def reask_dry_run(respond: RespondOptions, prompts: Path, scratch: Path, max_reasks: int) -> list[dict[str, Any]]:
    """The most the re-asks can cost: every call of a re-asking suite asked again `max_reasks` times (as
    target calls; a re-ask already in the cache or an earlier run's journal is counted as known)."""
    path = scratch / "reask-prompts.jsonl"
    write_jsonl_atomic(path, reask_prompts(prompts, None, 1))
    if max_reasks == 0 or path.stat().st_size == 0:
        return []
    totals: dict[str, dict[str, Any]] = {}
    for attempt in range(1, max_reasks + 1):
        out = respond.out.parent / REASK_DIR / str(attempt) / "respond"
        plan = respond_dry_run(prepare_responses(replace(respond, prompts=[path], out=out, attempt=attempt)))
        for row in plan:
            total = totals.setdefault(row["target"], {**row, **dict.fromkeys(
                ("calls", "cached", "resumed", "to_ask", "est_input_tokens", "est_output_tokens"), 0),
                "est_cost_usd": 0.0})
            for key in ("calls", "cached", "resumed", "to_ask", "est_input_tokens", "est_output_tokens"):
                total[key] += row[key]
            total["est_cost_usd"] = None if total["est_cost_usd"] is None or row["est_cost_usd"] is None \
                else total["est_cost_usd"] + row["est_cost_usd"]
    return list(totals.values())
