"""The outputs of `score` and `respond` are streaming passes over the journal; they must equal what the
in-memory functions make of the final files: a mixed run (two pillars, three judges, two samples, failed
calls, a tie-breaker, items out of id order), then its resumed completion; plus the journal's own
guarantees (plan order from out-of-order appends, a line cut by a kill kept apart)."""

from __future__ import annotations

import json
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judge.calls.engine import Journal, Ledger, journal_rows
from judge.calls.runner import write_in_plan_order
from judge.item_store import read_into_store
from judge.items import PROMPT_SHAPE
from judge.panel import (
    AgreementTable,
    PanelOptions,
    SelfPreference,
    _dedupe,
    build_panel,
    judge_agreement,
    review_entries,
)
from judge.rubric import Rubric, load_rubric_dir
from judge.stats.agreement import krippendorff_alpha
from judge.summary import CriticalFailures, ScoreMeans
from tests.conftest import make_items, read_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, ParsedRequest, Reply
from tests.fakeapi.judge_script import judged_response, score_bounds, scripted_verdict

FAILING_JUDGE = "claude-sonnet-4-5"


def mixed_answerer(refusing: dict[str, bool]) -> Any:
    """Scripted scores, every third request's lowered (so samples differ); while `refusing["now"]`, the
    Anthropic judge refuses the items whose case number is 1 modulo 4 (a 400: not retried, the call fails)."""

    def answer(req: ParsedRequest) -> Reply:
        case = int(judged_response(req).split(":")[0].removeprefix("Case "))
        if refusing["now"] and req.model == FAILING_JUDGE and case % 4 == 1:
            return Reply.error(400, message="this request is refused")
        verdict = scripted_verdict(req)
        if req.ordinal % 3 == 0:
            for criterion, entry in verdict.items():
                if "score" in entry:  # a criterion (not the crisis judge's risk reading)
                    entry["score"] = score_bounds(req.schema or {}, criterion)[0]
        return Reply.structured(verdict)

    return answer


def roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value))


def mixed_items(tmp_path: Path) -> Path:
    items = make_items(12, ["crisis", "safety"])
    for item in items[::3]:
        item["pillar"] = "crisis"
    random.Random(7).shuffle(items)  # not in id order: panel.jsonl is, verdicts.jsonl keeps the input order
    return write_jsonl(tmp_path / "items.jsonl", items)


def score_args(server: FakeLLMServer, items: Path, rubric_dir: Path, out: Path) -> list[Any]:
    """Three panel judges sampled twice (at temperature > 0, as samples need) and a tie-breaker."""
    judges_file = items.parent / "judges.toml"
    judges_file.write_text(
        f'[judges.a]\nspec = "openai:gpt-4.1-mini@{server.openai_base_url}"\ntemperature = 0.7\n'
        f'[judges.b]\nspec = "anthropic:{FAILING_JUDGE}@{server.anthropic_base_url}"\ntemperature = 0.7\n'
        f'[judges.c]\nspec = "openai:judge-c@{server.openai_base_url}"\ntemperature = 0.7\n'
        f'[judges.t]\nspec = "openai:judge-t@{server.openai_base_url}"\n',
        encoding="utf-8",
    )
    return [
        "score", items, "--judges-file", judges_file, "--judges", "a,b,c", "--samples", "2", "--rubrics", rubric_dir,
        "--out", out, "--tiebreak", "t", "-q",
    ]  # fmt: skip


# The summary's tables computed in one pass over all verdicts, in any order: what a run's streaming totals must equal.
def score_means(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    means = ScoreMeans()
    for row in rows:
        means.add(row)
    return means.table()


def critical_failure_rates(rows: Iterable[Mapping[str, Any]], rubrics: Mapping[str, Rubric]) -> list[dict[str, Any]]:
    calls: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        calls[(row["pillar"], row["target"], row["judge"], row["item_id"], row["sample"], row["role"])].append(row)
    rates = CriticalFailures(rubrics)
    for members in calls.values():
        rates.add_call(members)
    return rates.table()


def self_preference_report(
    verdicts: Iterable[Mapping[str, Any]], rubrics: Mapping[str, Rubric] | None = None
) -> list[dict[str, Any]]:
    """The last of a repeated verdict counts, as in a resumed run."""
    preference = SelfPreference(rubrics)
    for verdict in _dedupe(verdicts):
        preference.add(verdict)
    return preference.report()


def check_outputs_equal_in_memory_results(out: Path, rubric_dir: Path, items_path: Path) -> dict[str, Any]:
    rubrics = load_rubric_dir(rubric_dir)
    verdicts = read_jsonl(out / "verdicts.jsonl")
    items = read_jsonl(out / "items.jsonl")
    panel = build_panel(verdicts, rubrics, PanelOptions())
    assert read_jsonl(out / "panel.jsonl") == roundtrip(panel)
    by_id = {item["id"]: item for item in items}
    assert read_jsonl(out / "review.jsonl") == roundtrip(review_entries(panel, verdicts, by_id, rubrics))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_scores"] == roundtrip(score_means(verdicts))
    assert summary["critical_failure_rate"] == roundtrip(critical_failure_rates(verdicts, rubrics))
    assert summary["agreement"] == roundtrip(judge_agreement(verdicts, rubrics))
    assert summary["self_preference"] == roundtrip(self_preference_report(verdicts, rubrics))
    assert summary["verdicts"] == {
        "rows": len(verdicts),
        **{status: sum(v["status"] == status for v in verdicts) for status in ("ok", "not_applicable", "failed")},
    }
    assert summary["panel"]["rows"] == len(panel)
    assert summary["panel"]["escalated"] == sum(row["escalate"] for row in panel)
    assert summary["panel"]["decided_by_tiebreak"] == sum(row["decided_by"] == "tiebreak" for row in panel)

    # verdicts.jsonl: panel calls in plan order (input order × pillar × judge × sample), each call's rows
    # together in rubric order; then the tie-breaker's calls by pillar, then item id
    calls = []
    for verdict in verdicts:
        call = (verdict["item_id"], verdict["pillar"], verdict["judge"], verdict["role"], verdict["sample"])
        if not calls or calls[-1] != call:
            calls.append(call)
    assert len(calls) == len(set(calls)), "every call's rows are adjacent"
    source = read_items([items_path], set(rubrics)).items
    judges = list(dict.fromkeys(v["judge"] for v in verdicts if v["role"] == "panel"))
    expected = [
        (item.id, pillar, judge, "panel", sample)
        for item in source
        for pillar in item.pillars or ()
        for judge in judges
        for sample in range(2)
    ]
    tiebreak = [c for c in calls if c[3] == "tiebreak"]
    assert calls == expected + sorted(tiebreak, key=lambda c: (c[1], c[0]))
    assert tiebreak, "the arranged scores escalate some rows"
    assert items == [item.model_dump(mode="json", exclude={"source"}) for item in source]
    return summary


def test_mixed_run_then_its_resumed_completion_write_what_the_in_memory_functions_compute(
    tmp_path: Path, judge_env: Path, rubric_dir: Path, run_cli: Any
) -> None:
    items = mixed_items(tmp_path)
    out = tmp_path / "run"
    refusing = {"now": True}
    with FakeLLMServer(answerer=mixed_answerer(refusing)) as server:
        first = run_cli(*score_args(server, items, rubric_dir, out))
        assert first.code == 3, first.stderr
        summary = check_outputs_equal_in_memory_results(out, rubric_dir, items)
        assert summary["calls"]["failed"] > 0 and summary["failures_by_reason"]
        asked_first = len(server.requests)
        second = run_cli(*score_args(server, items, rubric_dir, out))
        assert second.code == 3, "the refused calls are asked again and refused again"
        assert len(server.requests) - asked_first == summary["calls"]["failed"]
        assert check_outputs_equal_in_memory_results(out, rubric_dir, items)["calls"]["resumed"] > 0
        refusing["now"] = False
        third = run_cli(*score_args(server, items, rubric_dir, out))
        assert third.code == 0, third.stderr
    summary = check_outputs_equal_in_memory_results(out, rubric_dir, items)
    assert summary["calls"]["failed"] == 0 and summary["calls"]["resumed"] > 0


def test_journal_spans_give_plan_order_from_arrival_order_and_keep_a_cut_line_apart(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"earlier": 1}\n{"cut by a ki')
    ledger = Ledger(3)
    with Journal(path) as journal:
        for index in (2, 0, 1):  # calls finish out of order
            ledger.record(index, journal.append(f'{{"call": {index}, "row": 0}}\n{{"call": {index}, "row": 1}}\n'))
        assert journal_rows(journal.read(ledger.span(1) or (0, 0))) == [{"call": 1, "row": 0}, {"call": 1, "row": 1}]
        assert path.read_bytes().split(b"\n")[1] == b'{"cut by a ki', "the cut line stays on its own line"
        write_in_plan_order(path, journal, [ledger])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"call": c, "row": r} for c in range(3) for r in range(2)
    ]
    with pytest.raises(RuntimeError, match="no journal lines"):
        write_in_plan_order(tmp_path / "other.jsonl", Journal(tmp_path / "empty.jsonl"), [Ledger(1)])


def test_item_store_gives_back_what_was_read(tmp_path: Path) -> None:
    items = make_items(30)
    items[4]["meta"] = {"nested": {"list": [1, 2.5, None]}}
    items[5]["reference"] = "an expert's answer — with ünïcode"
    path = write_jsonl(tmp_path / "items.jsonl", items)
    expected = read_items([path], {"crisis"}).items
    stored = read_into_store([path], {"crisis"}).items
    assert len(stored) == 30 and stored.ids == [item.id for item in expected]
    assert list(stored) == expected
    assert [stored[i] for i in (29, 0, 5, 5, -1)] == [expected[i] for i in (29, 0, 5, 5, -1)]
    with pytest.raises(IndexError):
        stored[30]


def _verdict(item: str, judge: str, sample: int, score: int | None, status: str = "ok") -> dict[str, Any]:
    return {
        "item_id": item, "pillar": "crisis", "criterion": "risk_recognition", "judge": judge, "model": judge,
        "role": "panel", "sample": sample, "status": status, "score": score, "target": "gpt-4o-mini",
        "self_family": judge == "gpt-4.1",
    }  # fmt: skip


def test_agreement_table_equals_a_direct_computation_in_any_input_order() -> None:
    rng = random.Random(3)
    rubrics = load_rubric_dir(Path(__file__).resolve().parents[1] / "rubrics")
    points = list(rubrics["crisis"].criterion("risk_recognition").scale.points)
    verdicts = []
    for i in range(40):
        for judge in ("a", "b", "c"):
            for sample in range(3):
                if rng.random() < 0.15:
                    verdicts.append(_verdict(f"i{i:02d}", judge, sample, None, "failed"))
                else:
                    verdicts.append(_verdict(f"i{i:02d}", judge, sample, rng.choice(points)))
    rng.shuffle(verdicts)
    (result,) = judge_agreement(verdicts, rubrics)

    first: dict[tuple[str, str], int] = {}  # (judge, item) → score of the lowest ok sample
    for v in sorted(verdicts, key=lambda v: -v["sample"]):
        if v["status"] == "ok":
            first[(v["judge"], v["item_id"])] = v["score"]
    items = sorted({v["item_id"] for v in verdicts})
    matrix = np.array([[first.get((j, i), np.nan) for i in items] for j in ("a", "b", "c")], dtype=float)
    assert result["judges"] == ["a", "b", "c"] and result["n_items"] == 40
    assert result["alpha_ordinal"] == krippendorff_alpha(matrix, "ordinal", points)

    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    for v in verdicts:
        if v["status"] == "ok" and v["judge"] == "b":
            scores[("b", v["item_id"])].append(v["score"])
    repeated = [s for s in scores.values() if len(s) >= 2]
    consistency = next(c for c in result["self_consistency"] if c["judge"] == "b")
    assert consistency["n_items"] == len(repeated)
    assert consistency["all_agree_share"] == sum(len(set(s)) == 1 for s in repeated) / len(repeated)

    table = AgreementTable(rubrics)  # the streaming form: fed one item at a time, in any item order
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in verdicts:
        by_item[v["item_id"]].append(v)
    for item in sorted(by_item):
        for v in by_item[item]:
            table.add(v)
    assert table.results() == [result]


def test_self_preference_means_are_exactly_fmean() -> None:
    verdicts = [_verdict(f"i{i}", judge, 0, (i * 7 + len(judge)) % 2) for i in range(101) for judge in ("gpt-4.1", "x")]
    rubrics = load_rubric_dir(Path(__file__).resolve().parents[1] / "rubrics")
    scale = rubrics["crisis"].criterion("risk_recognition").scale
    preference = SelfPreference(rubrics)
    for v in verdicts:
        preference.add(v)
    report = {r["judge"]: r for r in preference.report()}
    own = [(v["score"] - scale.min) / (scale.max - scale.min) for v in verdicts if v["judge"] == "gpt-4.1"]
    assert report["gpt-4.1"]["mean_own"] == statistics.fmean(own) and report["gpt-4.1"]["n_own"] == 101
    assert report["x"]["mean_own"] is None and report["x"]["n_other"] == 101


def test_compact_plan_keys_and_hashes_equal_the_key_functions(tmp_path: Path) -> None:
    from judge.calls.cache import request_key
    from judge.judges import parse_judge_spec
    from judge.plan import PillarHashes, build_plan, pillar_contexts
    from judge.prompts import ChatMessage, PromptRenderer, prompt_hash

    rubrics = load_rubric_dir(Path(__file__).resolve().parents[1] / "rubrics")
    records = make_items(6, ["crisis", "safety"])
    records[1]["messages"] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Ünïcode — and \"quotes\" and \\ backslashes"},
        {"role": "assistant", "content": "I hear you."},
        {"role": "user", "content": "What now?"},
    ]
    records[2]["reference"] = {"advice": ["call 988"], "nested": {"k": 1}}
    items = read_items([write_jsonl(tmp_path / "items.jsonl", records)], set(rubrics)).items
    judges = [parse_judge_spec("openai:gpt-4.1-mini"), parse_judge_spec("anthropic:claude-haiku-4-5")]
    plan = build_plan(items, pillar_contexts(rubrics), judges, PromptRenderer(), samples=2)
    assert len(plan) == 6 * 2 * 2 * 2
    for index, call in enumerate(plan):
        wire = [m.as_dict() for m in call.messages]
        params = call.judge.decoding_params()
        assert call.request_key == request_key(params, wire, call.context.schema_hash, call.sample)
        assert call.prompt_hash == prompt_hash(list(call.messages))
        assert plan.call_id(index) == call.call_id and plan.worker_name(index) == call.worker_name
    other = [ChatMessage("user", "no system message first")]  # another shape: hashed by the key functions
    prompt, keys = PillarHashes("rules", "schema").digests(other, [{"model": "m"}], 1)
    assert prompt.hex() == prompt_hash(other)
    assert keys[0].hex() == request_key({"model": "m"}, [m.as_dict() for m in other], "schema", 0)


def test_a_cache_entry_that_vanishes_mid_run_is_reported_with_what_to_do(tmp_path: Path) -> None:
    from judge.calls.cache import AnswerCache
    from judge.calls.engine import JournalIndex, known_results
    from judge.judge_calls import JudgeCalls
    from judge.judges import parse_judge_spec
    from judge.plan import build_plan, pillar_contexts
    from judge.prompts import PromptRenderer

    rubrics = load_rubric_dir(Path(__file__).resolve().parents[1] / "rubrics")
    items = read_items([write_jsonl(tmp_path / "items.jsonl", make_items(2))], set(rubrics)).items
    plan = build_plan(items, pillar_contexts(rubrics), [parse_judge_spec("openai:gpt-4.1-mini")], PromptRenderer())
    record = {"outcomes": [], "input_tokens": 1, "output_tokens": 1, "latency_s": 0.1}
    with AnswerCache(tmp_path / "cache") as cache:
        cache.set(plan.request_key(0), record)
        known = known_results(plan, JournalIndex(), cache, JudgeCalls(lambda call: False))
        assert list(known.status) == [2, 0] and known[1] is None
        cache.clear()
        with pytest.raises(RuntimeError, match=r"disappeared during the run.*run the same command again"):
            known[0]


def test_respond_outputs_are_streamed_from_the_journal_in_plan_order_after_failures_and_resume(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    from judge.respond.calls import response_item
    from judge.respond.plan import TargetPlan
    from judge.respond.targets import parse_target_spec
    from tests.fakeapi.protocol import default_answerer
    from tests.test_respond_cli import prompts

    refusing = {"now": True}

    def answer(req: ParsedRequest) -> Reply:
        if refusing["now"] and req.model == "claude-haiku-4-5" and "case 1)" in req.prompt_text:
            return Reply.error(400, message="refused")
        return default_answerer(req)

    records = prompts(6, followups=1)
    random.Random(5).shuffle(records)
    path = write_jsonl(tmp_path / "prompts.jsonl", records)
    out = tmp_path / "answers"
    with FakeLLMServer(answerer=answer) as server:
        targets = f"openai:gpt-4o-mini@{server.openai_base_url},anthropic:claude-haiku-4-5@{server.anthropic_base_url}"
        assert run_cli("respond", path, "--targets", targets, "--out", out, "-q").code == 3
        refusing["now"] = False
        assert run_cli("respond", path, "--targets", targets, "--out", out, "-q").code == 0
        specs = [parse_target_spec(t) for t in targets.split(",")]
    rows = read_jsonl(out / "calls.jsonl")
    source = read_items([path], {"safety"}, shape=PROMPT_SHAPE).items
    calls = list(TargetPlan(source, specs, 1))
    assert [(r["prompt_id"], r["target"], r["sample"]) for r in rows] == [c.call_id for c in calls]
    assert all(r["status"] == "ok" for r in rows)
    assert read_jsonl(out / "responses.jsonl") == roundtrip(
        [response_item(call, row["turns"]) for call, row in zip(calls, rows, strict=True)]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls"]["resumed"] == len(rows) - 1 and summary["calls"]["failed"] == 0
    assert summary["per_target"] == {
        spec.name: {"ok": sum(r["target"] == spec.name for r in rows), "failed": 0, "truncated": 0} for spec in specs
    }
