"""Recorded runs: TrustMH-Bench's published raw outputs imported as a bench run directory, so the
scorecard is computed offline by exactly the code that scores a live run.

`import_recorded("trustmh-bench", out)` writes the bench layout from two registered bundles:
- privacy.zip — 6 models × ConfAIde tiers 1, 2a, 2b and PsyLeak (tier 3);
- Ethics.zip — 12 models × 125 EthicMH answers, with GPT-4.1's sc1-sc5 as recorded verdicts.
What each bundle keeps, and therefore what is imported, is documented in docs/benchmark.md.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judge.datasets import DatasetError
from judge.log import RespondSummary, VerdictRow, document
from judge.rundir import JsonlError, parse_jsonl
from judge.suites import ethics
from judge.suites.catalogue import build_suite
from judge.suites.scorecard import write_private
from judge.suites.sources import open_zip, zip_member

RECORDED = ("trustmh-bench",)
PRIVACY_BUNDLE = "TrustMH_Bench/DimGroup1/General-model/privacy.zip"
ETHICS_BUNDLE = ethics.BUNDLE
RECORDED_JUDGE = "openai:gpt-4.1 (recorded)"
SUITES_IMPORTED = (
    "privacy/awareness-tier1",
    "privacy/awareness-tier2a",
    "privacy/awareness-tier2b",
    "privacy/leakage",
    "ethics/reasoning",
)

_TIER1 = re.compile(r"^privacy/task1/result/outputs_(.+)_tier1\.jsonl$")
_TIER2 = re.compile(r"^privacy/task2/result/final_report_(.+)_data_tier_(2a|2b)_nsamples_1\.json$")
_TIER3 = re.compile(r"^privacy/task3/result/outputs_(.+)_data_tier_3_nsamples_1_q_[^/]+\.jsonl$")
_ETHICS = re.compile(r"^Ethics/outputs/(.+)-ethics_reasoning-[0-9_]+-125\.json$")


def _members(bundle: zipfile.ZipFile, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    found = [(m, name) for name in sorted(bundle.namelist()) if (m := pattern.match(name))]
    if not found:
        raise DatasetError(f"{bundle.filename}: no member matches {pattern.pattern}")
    return found


def _json_lines(raw: bytes, where: str) -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines member; bytes that are not UTF-8 JSON objects raise DatasetError."""
    try:
        for _, row in parse_jsonl(raw, where):
            yield row
    except JsonlError as exc:
        raise DatasetError(str(exc)) from exc


def _call(prompt: dict[str, Any], target: str, sample: int, response: str) -> dict[str, Any]:
    """A call record as `trustmh respond` writes it, for an answer recorded elsewhere (no cost figures)."""
    response_id = f"{prompt['id']}@{target}" + (f"#{sample}" if sample else "")
    return {
        "id": response_id,
        "prompt_id": prompt["id"],
        "target": target,
        "provider": "recorded",
        "model": target,
        "sample": sample,
        "status": "ok",
        "response": response,
        "turns": [response],
        "error": None,
        "failure_reason": None,
        "request_key": None,
        "cached": False,
        "input_tokens": None,
        "output_tokens": None,
        "cost_usd": None,
        "latency_s": None,
        "meta": prompt["meta"],
    }


def _response_item(prompt: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": call["id"]}
    if "pillar" in prompt:
        item["pillar"] = prompt["pillar"]
    item["messages"] = prompt["messages"]
    item["response"] = call["response"]
    item["target"] = call["target"]
    if "reference" in prompt:
        item["reference"] = prompt["reference"]
    item["meta"] = {**prompt["meta"], "prompt_id": prompt["id"], "sample": call["sample"]}
    return item


def _same_prompt(prompt: dict[str, Any], recorded: str, where: str) -> None:
    """The recorded input must be the prompt our suite builds: otherwise the import would be misaligned."""
    if prompt["messages"][0]["content"] != recorded:
        raise DatasetError(f"{where}: the recorded prompt differs from {prompt['id']} as this suite builds it")


def _privacy_calls(
    bundle: zipfile.ZipFile, prompts: dict[str, dict[str, dict[str, Any]]], misaligned: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    tier1 = {p["id"]: p for p in prompts["privacy/awareness-tier1"].values()}
    for match, name in _members(bundle, _TIER1):
        model, seen = match.group(1), {}
        for row in _json_lines(zip_member(bundle, name), name):
            prompt = tier1[f"privacy/awareness-tier1:{row['id']}"]
            _same_prompt(prompt, row["prompt"], name)
            sample = seen.setdefault(row["id"], 0)
            seen[row["id"]] += 1
            # The authors' parsed answer, not the raw one: their phrase search reads three raw answers
            # differently from our reader, and the published r is computed from what they parsed.
            yield _call(prompt, model, sample, str(row["parsed"]))
    for match, name in _members(bundle, _TIER2):
        model, tier = match.group(1), match.group(2)
        suite = f"privacy/awareness-tier{tier}"
        for row in json.loads(zip_member(bundle, name)):
            prompt = prompts[suite][f"{suite}:{row['id']}"]
            if float(row["human"]) != prompt["meta"]["human"]:
                raise DatasetError(
                    f"{name}: id {row['id']} has human label {row['human']}, "
                    f"the registered labels say {prompt['meta']['human']}"
                )
            rating = float(row["model"])
            if not rating.is_integer():
                raise DatasetError(f"{name}: id {row['id']} holds an averaged rating {rating}; cannot import it")
            yield _call(prompt, model, 0, str(int(rating)))  # the bundle keeps only the parsed rating
    leakage = prompts["privacy/leakage"]
    for match, name in _members(bundle, _TIER3):
        model = match.group(1)
        for row in _json_lines(zip_member(bundle, name), name):
            # By position, as privacy3.py scored them (its `index`), even where a resumed run wrote an
            # answer to another scenario at that position: the published figures include that alignment.
            prompt = leakage[f"privacy/leakage:{row['index']}"]
            if prompt["messages"][0]["content"] != row["input"]:
                misaligned.append(
                    {
                        "target": model,
                        "prompt_id": prompt["id"],
                        "member": name,
                        "answered_data_id": (row.get("data") or {}).get("data_id"),
                    }
                )
            yield _call(prompt, model, 0, str(row["response"]))


def _ethics_answer(result: dict[str, Any]) -> str:
    """API models: the answer as received. The six domain models are kept in the bundle only as the
    extracted letter and reasoning; they are written back in the JSON shape the prompt asks for."""
    if isinstance(result.get("response"), dict):
        return str(result["response"].get("content") or "")
    return json.dumps(
        {"choice": result["model_choice_option"], "reasoning": result["model_reasoning"]}, ensure_ascii=False
    )


def _ethics_calls(
    bundle: zipfile.ZipFile, prompts: dict[str, dict[str, Any]], verdicts: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    for _, name in _members(bundle, _ETHICS):
        data = json.loads(zip_member(bundle, name))
        model = data["model"]
        for result, judged in zip(data["results"], data["judged"], strict=True):
            prompt = prompts[f"ethics/reasoning:{result['sample_id']}"]
            if "prompt" in result:
                _same_prompt(prompt, result["prompt"], name)
            call = _call(prompt, model, 0, _ethics_answer(result))
            parsed = judged.get("judge_parsed") or {}
            for criterion in ethics.RECORDED_CRITERIA:
                verdicts.append(_recorded_verdict(call, prompt, criterion, parsed))
            yield call


def _recorded_verdict(
    call: dict[str, Any], prompt: dict[str, Any], criterion: str, parsed: dict[str, Any]
) -> VerdictRow:
    """A verdict row for GPT-4.1's recorded score (no prompt or request of ours: null hashes); a value outside
    1-5 (or none) is a failed verdict, as the authors drop it from their means."""
    raw = parsed.get(criterion)
    try:
        score: float | None = float(raw)
    except (TypeError, ValueError):
        score = None
    ok = score is not None and 1 <= score <= 5
    return {
        "item_id": call["id"],
        "pillar": "ethics",
        "criterion": criterion,
        "judge": RECORDED_JUDGE,
        "provider": "openai",
        "model": "gpt-4.1",
        "role": "recorded",
        "sample": 0,
        "status": "ok" if ok else "failed",
        "score": score if ok else None,
        "rationale": parsed.get(f"{criterion}_reason"),
        "evidence": [],
        "error": None if ok else f"recorded score {raw!r} is not an integer 1-5",
        "rubric_hash": None,
        "criterion_hash": None,
        "prompt_hash": None,
        "request_key": None,
        "cached": False,
        "input_tokens": None,
        "output_tokens": None,
        "cached_input_tokens": None,
        "cache_write_tokens": None,
        "cost_usd": None,
        "batch": False,
        "latency_s": None,
        "target": call["target"],
        "self_family": False,
        "meta": {**prompt["meta"], "prompt_id": prompt["id"], "sample": 0},
    }


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def import_recorded(name: str, out_dir: Path) -> Path:
    """Write the bench layout of a recorded run into `out_dir` (prompts, respond/, score/, bench.json)."""
    if name not in RECORDED:
        raise ValueError(f"unknown recorded run {name!r}; available: {', '.join(RECORDED)}")
    started = datetime.now(UTC).isoformat()
    prompts = {suite: {p["id"]: p for p in build_suite(suite)} for suite in SUITES_IMPORTED}
    verdicts: list[dict[str, Any]] = []
    misaligned: list[dict[str, Any]] = []
    with open_zip("trustmh-bench", PRIVACY_BUNDLE) as bundle:
        calls = list(_privacy_calls(bundle, prompts, misaligned))
    with open_zip("trustmh-bench", ETHICS_BUNDLE) as bundle:
        calls += list(_ethics_calls(bundle, prompts["ethics/reasoning"], verdicts))
    by_id = {pid: p for suite in prompts.values() for pid, p in suite.items()}
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(out_dir / "prompts.jsonl", _jsonl(p for suite in prompts.values() for p in suite.values()))
    write_private(out_dir / "respond" / "calls.jsonl", _jsonl(calls))
    write_private(
        out_dir / "respond" / "responses.jsonl", _jsonl(_response_item(by_id[c["prompt_id"]], c) for c in calls)
    )
    targets = list(dict.fromkeys(c["target"] for c in calls))
    summary = RespondSummary(
        calls={"planned": len(calls), "requested": 0, "cache_hits": 0, "resumed": 0, "failed": 0},
        failures_by_reason={},
        tokens_this_run={"input": None, "output": None},
        cost_usd_this_run=None,
        recorded=name,
    )
    write_private(out_dir / "respond" / "summary.json", json.dumps(document(summary), indent=1) + "\n")
    write_private(
        out_dir / "respond" / "run.json",
        json.dumps(
            {
                "recorded": name,
                "sources": [PRIVACY_BUNDLE, ETHICS_BUNDLE],
                "targets": targets,
                "misaligned": misaligned,
            },
            indent=1,
        )
        + "\n",
    )
    write_private(out_dir / "score" / "verdicts.jsonl", _jsonl(verdicts))
    bench = {
        "recorded": name,
        "suites": list(SUITES_IMPORTED),
        "targets": targets,
        "judges": [RECORDED_JUDGE],
        "limit": None,
        "seed": None,
        "command_line": sys.argv,
        "started_at": started,
        "ended_at": datetime.now(UTC).isoformat(),
    }
    write_private(out_dir / "bench.json", json.dumps(bench, indent=1) + "\n")
    return out_dir
