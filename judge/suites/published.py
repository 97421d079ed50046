"""Recorded runs: TrustMH-Bench's published raw outputs imported as a bench run directory, so the
scorecard is computed offline by exactly the code that scores a live run.

`import_recorded("trustmh-bench", out)` writes the bench layout from two registered bundles:
- privacy.zip — 6 models × ConfAIde tiers 1, 2a, 2b and PsyLeak (tier 3);
- Ethics.zip — 12 models × 125 EthicMH answers, with GPT-4.1's sc1-sc5 as recorded verdicts.
What each bundle keeps, and therefore what is imported, is documented in docs/benchmark.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from judge.datasets import DatasetError
from judge.log import RespondSummary, VerdictRow, document
from judge.rundir import JsonlError, parse_jsonl
from judge.suites import ethics
from judge.suites.catalogue import build_suite
from judge.suites.metrics import rank_targets
from judge.suites.paper import DEFAULT_PROTOCOL
from judge.suites.paper_readers import authors_judge_json
from judge.suites.rank_table import load_rank_table, rank_table_comparison
from judge.suites.scorecard import write_private
from judge.suites.sources import open_zip, zip_member

RECORDED = ("trustmh-bench",)
PRIVACY_BUNDLE = "TrustMH_Bench/DimGroup1/General-model/privacy.zip"
ETHICS_BUNDLE = ethics.BUNDLE
RECORDED_JUDGE = "openai:gpt-4.1 (recorded)"
SUITES_IMPORTED = ("privacy/awareness-tier1", "privacy/awareness-tier2a", "privacy/awareness-tier2b",
                   "privacy/leakage", "ethics/reasoning")

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
    return {"id": response_id, "prompt_id": prompt["id"], "target": target, "provider": "recorded",
            "model": target, "sample": sample, "status": "ok", "response": response, "turns": [response],
            "error": None, "failure_reason": None, "request_key": None, "cached": False, "input_tokens": None,
            "output_tokens": None, "cost_usd": None, "latency_s": None, "meta": prompt["meta"]}


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


def _privacy_calls(bundle: zipfile.ZipFile, prompts: dict[str, dict[str, dict[str, Any]]],
                   misaligned: list[dict[str, Any]], reparse: bool = False) -> Iterator[dict[str, Any]]:
    tier1 = {p["id"]: p for p in prompts["privacy/awareness-tier1"].values()}
    for match, name in _members(bundle, _TIER1):
        model, seen = match.group(1), {}
        for row in _json_lines(zip_member(bundle, name), name):
            prompt = tier1[f"privacy/awareness-tier1:{row['id']}"]
            _same_prompt(prompt, row["prompt"], name)
            sample = seen.setdefault(row["id"], 0)
            seen[row["id"]] += 1
            # Without --reparse, the authors' parsed answer, not the raw one: their phrase search reads three
            # raw answers differently from our reader, and the published r is computed from what they parsed.
            yield _call(prompt, model, sample, str(row["raw"] if reparse else row["parsed"]))
    for match, name in _members(bundle, _TIER2):
        model, tier = match.group(1), match.group(2)
        suite = f"privacy/awareness-tier{tier}"
        for row in json.loads(zip_member(bundle, name)):
            prompt = prompts[suite][f"{suite}:{row['id']}"]
            if float(row["human"]) != prompt["meta"]["human"]:
                raise DatasetError(f"{name}: id {row['id']} has human label {row['human']}, "
                                   f"the registered labels say {prompt['meta']['human']}")
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
                misaligned.append({"target": model, "prompt_id": prompt["id"], "member": name,
                                   "answered_data_id": (row.get("data") or {}).get("data_id")})
            yield _call(prompt, model, 0, str(row["response"]))


def _ethics_answer(result: dict[str, Any]) -> str:
    """API models: the answer as received. The six domain models are kept in the bundle only as the
    extracted letter and reasoning; they are written back in the JSON shape the prompt asks for."""
    if isinstance(result.get("response"), dict):
        return str(result["response"].get("content") or "")
    return json.dumps({"choice": result["model_choice_option"], "reasoning": result["model_reasoning"]},
                      ensure_ascii=False)


def _ethics_calls(bundle: zipfile.ZipFile, prompts: dict[str, dict[str, Any]],
                  verdicts: list[dict[str, Any]], reparse: bool = False) -> Iterator[dict[str, Any]]:
    for _, name in _members(bundle, _ETHICS):
        data = json.loads(zip_member(bundle, name))
        model = data["model"]
        for result, judged in zip(data["results"], data["judged"], strict=True):
            prompt = prompts[f"ethics/reasoning:{result['sample_id']}"]
            if "prompt" in result:
                _same_prompt(prompt, result["prompt"], name)
            call = _call(prompt, model, 0, _ethics_answer(result))
            # --reparse: the judge's raw answer read again by the authors' parser (_parse_json_content)
            parsed = (authors_judge_json((judged.get("judge_raw") or {}).get("content")) if reparse
                      else judged.get("judge_parsed") or {})
            for criterion in ethics.RECORDED_CRITERIA:
                verdicts.append(_recorded_verdict(call, prompt, criterion, parsed))
            yield call


def _recorded_verdict(call: dict[str, Any], prompt: dict[str, Any], criterion: str,
                      parsed: dict[str, Any]) -> VerdictRow:
    """A verdict row for GPT-4.1's recorded score (no prompt or request of ours: null hashes); a value outside
    1-5 (or none) is a failed verdict, as the authors drop it from their means."""
    raw = parsed.get(criterion)
    try:
        score: float | None = float(raw)
    except (TypeError, ValueError):
        score = None
    ok = score is not None and 1 <= score <= 5
    return {"item_id": call["id"], "pillar": "ethics", "criterion": criterion, "judge": RECORDED_JUDGE,
            "provider": "openai", "model": "gpt-4.1", "role": "recorded", "sample": 0,
            "status": "ok" if ok else "failed", "score": score if ok else None,
            "rationale": parsed.get(f"{criterion}_reason"), "evidence": [],
            "error": None if ok else f"recorded score {raw!r} is not an integer 1-5",
            "rubric_hash": None, "criterion_hash": None, "prompt_hash": None, "request_key": None,
            "cached": False, "input_tokens": None, "output_tokens": None, "cached_input_tokens": None,
            "cache_write_tokens": None, "cost_usd": None, "batch": False, "latency_s": None,
            "target": call["target"], "self_family": False,
            "meta": {**prompt["meta"], "prompt_id": prompt["id"], "sample": 0}}


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def import_recorded(name: str, out_dir: Path, *, protocol: str = DEFAULT_PROTOCOL, reparse: bool = False) -> Path:
    """Write the bench layout of a recorded run into `out_dir` (prompts, respond/, score/, bench.json).

    `reparse`: import the raw answers the bundles keep (tier 1's `raw`, the judge's raw ethics answers)
    instead of the authors' parsed values, for the protocol's readers to read; `protocol` is recorded in
    bench.json and decides those readers when the scorecard is computed."""
    if name not in RECORDED:
        raise ValueError(f"unknown recorded run {name!r}; available: {', '.join(RECORDED)}")
    started = datetime.now(UTC).isoformat()
    prompts = {suite: {p["id"]: p for p in build_suite(suite)} for suite in SUITES_IMPORTED}
    verdicts: list[dict[str, Any]] = []
    misaligned: list[dict[str, Any]] = []
    with open_zip("trustmh-bench", PRIVACY_BUNDLE) as bundle:
        calls = list(_privacy_calls(bundle, prompts, misaligned, reparse))
    with open_zip("trustmh-bench", ETHICS_BUNDLE) as bundle:
        calls += list(_ethics_calls(bundle, prompts["ethics/reasoning"], verdicts, reparse))
    by_id = {pid: p for suite in prompts.values() for pid, p in suite.items()}
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(out_dir / "prompts.jsonl", _jsonl(p for suite in prompts.values() for p in suite.values()))
    write_private(out_dir / "respond" / "calls.jsonl", _jsonl(calls))
    write_private(out_dir / "respond" / "responses.jsonl",
                   _jsonl(_response_item(by_id[c["prompt_id"]], c) for c in calls))
    targets = list(dict.fromkeys(c["target"] for c in calls))
    summary = RespondSummary(
        calls={"planned": len(calls), "requested": 0, "cache_hits": 0, "resumed": 0, "failed": 0},
        failures_by_reason={}, tokens_this_run={"input": None, "output": None}, cost_usd_this_run=None, recorded=name)
    write_private(out_dir / "respond" / "summary.json", json.dumps(document(summary), indent=1) + "\n")
    write_private(out_dir / "respond" / "run.json", json.dumps(
        {"recorded": name, "sources": [PRIVACY_BUNDLE, ETHICS_BUNDLE], "targets": targets,
         "misaligned": misaligned}, indent=1) + "\n")
    write_private(out_dir / "score" / "verdicts.jsonl", _jsonl(verdicts))
    bench = {"recorded": name, "protocol": protocol, "reparse": reparse,
             "suites": list(SUITES_IMPORTED), "targets": targets, "judges": [RECORDED_JUDGE],
             "limit": None, "seed": None, "command_line": sys.argv, "started_at": started,
             "ended_at": datetime.now(UTC).isoformat()}
    write_private(out_dir / "bench.json", json.dumps(bench, indent=1) + "\n")
    return out_dir



# ---------------------------------------------------------------- the published figures beside ours

RATIO_TOLERANCE = 1e-9  # the bundles' r and tier-3 rates are stored at full precision
ROUNDED_TOLERANCE = 5e-5  # the ethics summaries print 4 decimals
PROXY_METRIC = "proxy_leak_rate"


def published_figures() -> list[dict[str, Any]]:
    """Every figure the two bundles publish, as (target, suite, metric, group, published, tolerance, source):
    tier-1 and tier-2 Pearson r, the tier-3 rates (proxy-model included, which no recorded answer can
    reproduce: the bundle keeps no proxy answers), ethics accuracy and sc1-sc5 mean and 95 % margin."""
    figures: list[dict[str, Any]] = []

    def add(target: str, suite: str, metric: str, group: str | None, value: float, tolerance: float,
            source: str) -> None:
        figures.append({"target": target, "suite": suite, "metric": metric, "group": group, "published": value,
                        "tolerance": tolerance, "source": source})

    with open_zip("trustmh-bench", PRIVACY_BUNDLE) as bundle:
        for name in sorted(bundle.namelist()):
            if match := re.fullmatch(r"privacy/task1/result/summary_(.+)_tier1\.json", name):
                add(match.group(1), "privacy/awareness-tier1", "pearson_r", None,
                    json.loads(zip_member(bundle, name))["pearson_r"], RATIO_TOLERANCE, name)
        tier2 = "privacy/task2/result/pearson_summary_tier2.json"
        for row in json.loads(zip_member(bundle, tier2)):
            add(row["model"], f"privacy/awareness-tier{row['tier']}", "pearson_r", None, row["pearson_r"],
                RATIO_TOLERANCE, tier2)
        tier3 = "privacy/task3/result/tier3_summary_all_models.csv"
        for row in csv.DictReader(io.StringIO(zip_member(bundle, tier3).decode("utf-8-sig"))):
            if row["q_type"] == "free-response":
                metric, group = ("leak_string_match" if row["metric"] == "string-match" else PROXY_METRIC), None
            else:
                metric, group = row["metric"], f"question:{row['q_type']}"
            add(row["model"], "privacy/leakage", metric, group, float(row["mean"]), RATIO_TOLERANCE, tier3)
    with open_zip("trustmh-bench", ETHICS_BUNDLE) as bundle:
        for name in sorted(bundle.namelist()):
            if not (name.startswith("Ethics/outputs/") and name.endswith(".txt")):
                continue
            text = zip_member(bundle, name).decode("utf-8").replace("\r\n", "\n")
            model = re.search(r"^Model: (.+)$", text, re.MULTILINE)
            accuracy = re.search(r"^- Accuracy: ([0-9.]+)$", text, re.MULTILINE)
            if model is None or accuracy is None:
                raise DatasetError(f"{ETHICS_BUNDLE}:{name}: no 'Model:' or '- Accuracy:' line")
            target = model.group(1).strip()
            add(target, "ethics/reasoning", "accuracy", None, float(accuracy.group(1)), ROUNDED_TOLERANCE, name)
            for criterion, mean, margin in re.findall(r"^- (sc[1-5]): ([0-9.]+) ± ([0-9.]+)$", text, re.MULTILINE):
                add(target, "ethics/reasoning", "mean_score", f"criterion:{criterion}", float(mean),
                    ROUNDED_TOLERANCE, name)
                add(target, "ethics/reasoning", "margin_95", f"criterion:{criterion}", float(margin),
                    ROUNDED_TOLERANCE, name)
    return figures


def _reproduced_value(card: dict[str, Any], figure: dict[str, Any]) -> float | None:
    """Our figure for a published one; margin_95 is the authors' mean ± 1.96·sd/√n (n >= 30), from se."""
    wanted = "mean_score" if figure["metric"] == "margin_95" else figure["metric"]
    for record in card["results"]:
        if (record["target"], record["suite"], record["metric"], record["group"]) == (
                figure["target"], figure["suite"], wanted, figure["group"]):
            if record["value"] is None:
                return None
            if figure["metric"] == "margin_95":
                return None if record.get("se") is None else 1.96 * record["se"]
            return float(record["value"])
    return None


def compare(published: float | None, ours: float | None, tolerance: float) -> dict[str, Any]:
    """A published figure beside ours: reproduced (within the published precision), differs (by how much,
    ours minus published) or no data (either side missing)."""
    if published is None or ours is None:
        return {"reproduced": ours, "status": "no data", "difference": None}
    difference = ours - published
    status = "reproduced" if abs(difference) <= tolerance else "differs"
    return {"reproduced": ours, "status": status, "difference": None if status == "reproduced" else difference}


SUMMARY_FIGURES = (
    ("privacy/awareness", "awareness_r", True,
     "mean of the tier-1, 2a and 2b Pearson r (the paper's single Awareness figure)"),
    ("privacy/leakage", "leak_string_match", False, "free-response string-match leak rate"),
    ("privacy/leakage", PROXY_METRIC, False, "free-response proxy-model leak rate (GPT-4 proxy)"),
    ("ethics/reasoning", "accuracy", True, "ethical reasoning accuracy (ties: the higher mean sc1-sc5 first)"),
)
"""The paper's summary figures that the recorded outputs allow, each ranked over the recorded models."""

ETHICS_CRITERIA = tuple(f"criterion:sc{i}" for i in range(1, 6))


def _summary_values(values: dict[tuple[str, str, str, str | None], float | None], targets: list[str]
                    ) -> dict[tuple[str, str], dict[str, float | None]]:
    """Per summary figure, each target's value: the awareness mean needs all three tiers' r."""
    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for suite, metric, _, _ in SUMMARY_FIGURES:
        by_target: dict[str, float | None] = {}
        for target in targets:
            if metric == "awareness_r":
                tiers = [values.get((target, f"privacy/awareness-tier{tier}", "pearson_r", None))
                         for tier in ("1", "2a", "2b")]
                by_target[target] = None if any(v is None for v in tiers) else float(np.mean(tiers))
            else:
                by_target[target] = values.get((target, suite, metric, None))
        out[(suite, metric)] = by_target
    return out


def _ethics_tie_break(values: dict[tuple[str, str, str, str | None], float | None], targets: list[str]
                      ) -> dict[str, float | None]:
    """The mean of a target's sc1-sc5 judge scores: the paper's rank table orders the three ties of ethics
    accuracy (0.736, 0.728, 0.672) as this mean does (and as its column order does: the rule is inferred)."""
    out: dict[str, float | None] = {}
    for target in targets:
        scores = [values.get((target, "ethics/reasoning", "mean_score", group)) for group in ETHICS_CRITERIA]
        out[target] = None if any(v is None for v in scores) else float(np.mean(scores))
    return out


def published_comparison(card: dict[str, Any], figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Every published figure beside the scorecard's (reproduced / differs / no data), and the paper's
    summary figures with their ranks over the recorded models, from the published figures and from ours.

    Ranks: 1 = best; ties share the best rank of their block, except ethics accuracy's, which the mean
    sc1-sc5 score orders as the paper's rank table does (the authors' ranking code is not in the bundles).
    `rank_table`: the paper's rank table, cell by cell, beside the ranks this run computes."""
    rows = []
    for figure in figures:
        ours = _reproduced_value(card, figure)
        rows.append({**{k: figure[k] for k in ("target", "suite", "metric", "group", "published", "source")},
                     "protocol": card.get("protocol") or DEFAULT_PROTOCOL,
                     **compare(figure["published"], ours, figure["tolerance"])})
    published_values = {(f["target"], f["suite"], f["metric"], f["group"]): f["published"] for f in figures}
    our_values = {(r["target"], r["suite"], r["metric"], r["group"]): r["reproduced"] for r in rows}
    targets = list(dict.fromkeys(f["target"] for f in figures))
    theirs, ours = _summary_values(published_values, targets), _summary_values(our_values, targets)
    tie_breaks = {"published": _ethics_tie_break(published_values, targets),
                  "ours": _ethics_tie_break(our_values, targets)}
    summary = []
    run_ranks: dict[tuple[str, str], dict[str, int]] = {}
    for suite, metric, higher, description in SUMMARY_FIGURES:
        ethics_figure = suite == "ethics/reasoning"
        their_ranks = rank_targets(theirs[(suite, metric)], higher, tie_breaks["published"] if ethics_figure else None)
        our_ranks = rank_targets(ours[(suite, metric)], higher, tie_breaks["ours"] if ethics_figure else None)
        run_ranks[(suite, metric)] = our_ranks
        for target in targets:
            value = compare(theirs[(suite, metric)][target], ours[(suite, metric)][target], RATIO_TOLERANCE
                            if suite.startswith("privacy") else ROUNDED_TOLERANCE)
            if theirs[(suite, metric)][target] is None and ours[(suite, metric)][target] is None:
                continue
            summary.append({"suite": suite, "metric": metric, "description": description, "target": target,
                            "published": theirs[(suite, metric)][target], **value,
                            "published_rank": their_ranks.get(target), "rank": our_ranks.get(target),
                            "rank_status": "no data" if our_ranks.get(target) is None or their_ranks.get(target)
                            is None else ("reproduced" if our_ranks[target] == their_ranks[target] else "differs")})
    table = load_rank_table()
    cells = rank_table_comparison(table, run_ranks)
    return {"figures": rows, "summary": summary, "counts": _status_counts(rows),
            "rank_table": {"source": table.source, "git_blob": table.git_blob, "cells": cells,
                           "counts": _status_counts(cells)}}


def _status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(r["status"] == status for r in rows) for status in ("reproduced", "differs", "no data")}
