"""The paper protocol's bounded re-asks: an answer the authors' reader (privacy1.py `parse_response`)
rejects is asked again, through the one engine, at most --max-reasks times; the figure reads the accepted
answer, the scorecard counts the re-asks, and a resumed or cached run pays for no re-ask twice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judge.hashing import sha256_of
from judge.respond.plan import target_request_key
from judge.suites.catalogue import build_prompts
from tests.conftest import read_jsonl
from tests.test_suites_recorded import PRIVACY_ZIP

pytestmark = pytest.mark.skipif(not PRIVACY_ZIP.is_file(), reason="no dataset mirror (set TRUSTMH_DATA_MIRROR)")

SUITE = "privacy/awareness-tier1"
REJECTED = "I would rather not say."  # no number, no phrase of the authors' scale: parse_response gives None


class ScriptedTargets:
    """Tier-1 answers per prompt (the first 3 prompts, by their text): the first accepted at once, the second
    rejected twice and then accepted, the third always rejected. Counts every ask of each prompt."""

    def __init__(self) -> None:
        texts = [p["messages"][0]["content"] for p in build_prompts([SUITE], None, 0, first=3)]
        self.script = {texts[0]: ["Answer: 4) very sensitive"], texts[1]: [REJECTED, REJECTED, "Answer: 2"],
                       texts[2]: [REJECTED]}
        self.asked: Counter[str] = Counter()

    def __call__(self, req: Any) -> Any:
        from tests.fakeapi import Reply

        text = req.messages[-1].text
        answers = self.script[text]
        self.asked[text] += 1
        return Reply.text(answers[min(self.asked[text], len(answers)) - 1])


def _bench(run_cli: Any, server: Any, out: Path, *extra: str) -> Any:
    return run_cli("bench", "--suites", SUITE, "--targets", f"openai:gpt-4o-mini@{server.openai_base_url}",
                   "--judges", f"openai:gpt-4.1@{server.openai_base_url}", "--out", str(out), "--first", "3",
                   "--bootstrap", "0", "-q", *extra)


def _figure(out: Path) -> float:
    card = json.loads((out / "scorecard.json").read_text())
    (value,) = [r["value"] for r in card["results"] if r["metric"] == "pearson_r" and r["group"] is None]
    return float(value)


def _counts(card: dict[str, Any]) -> dict[str, Any]:
    """The one re-ask record of the card, without the target's name (it holds the loopback server's port)."""
    (counts,) = card["reasks"]
    return {k: v for k, v in counts.items() if k != "target"}


def _expected_r(ratings: list[float]) -> float:
    humans = [p["meta"]["human"] for p in build_prompts([SUITE], None, 0, first=3)]
    return float(np.corrcoef(ratings, humans)[0, 1])


def test_a_rejected_answer_is_asked_again_until_accepted_and_the_bound_counts_the_rest(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    from tests.fakeapi import FakeLLMServer

    script = ScriptedTargets()
    out = tmp_path / "paper"
    with FakeLLMServer(answerer=script) as server:  # one server: the target's name holds its port
        result = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "3")
        assert result.code == 0, result.stderr
        assert len(server.requests) == 1 + 3 + 4  # accepted at once; at the third ask; the first ask and 3 re-asks
        card = json.loads((out / "scorecard.json").read_text())
        assert _figure(out) == pytest.approx(_expected_r([4, 2, 0]))  # the accepted 2; the unparsable read as 0
        (counts,) = card["reasks"]
        assert counts["target"].startswith("openai:gpt-4o-mini")
        assert _counts(card) == {"suite": SUITE, "max_reasks": 3, "answers": 3, "reasked": 2, "reasks": 5,
                                 "unparsable": 1}
        assert [u["answer"] for u in card["unparsed"]] == [REJECTED]
        assert "## Re-asks" in (out / "scorecard.md").read_text()
        report = (out / "report.html").read_text()
        assert "Re-asks: answers the authors&#39; reader rejected, asked again (at most 3 times)" in report
        assert "re-asks (at most 3 per answer): 2 answer(s) asked again in 3 round(s), 5 re-ask(s)" in result.stderr
        # each round is a respond stage; the re-asked calls carry the attempt and keys of their own
        rounds = [list(read_jsonl(out / "reask" / str(k) / "respond" / "calls.jsonl")) for k in (1, 2, 3)]
        assert [len(r) for r in rounds] == [2, 2, 1]
        assert all(call["meta"]["reask"] == k for k, r in enumerate(rounds, 1) for call in r)
        keys = [c["request_key"] for c in read_jsonl(out / "respond" / "calls.jsonl")]
        keys += [c["request_key"] for r in rounds for c in r]
        assert len(set(keys)) == len(keys)
        summary = json.loads((out / "reask" / "summary.json").read_text())
        assert summary["max_reasks"] == 3 and [r["calls"]["planned"] for r in summary["rounds"]] == [2, 2, 1]
        assert json.loads((out / "bench.json").read_text())["max_reasks"] == 3

        # the same bench again resumes every stage: nothing is asked twice, the same scorecard
        asked = len(server.requests)
        again = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "3")
        assert again.code == 0, again.stderr
        assert len(server.requests) == asked
        assert _counts(json.loads((out / "scorecard.json").read_text())) == _counts(card)

        # another out folder, the same cache: every re-ask comes from the cache, not the rejected first answer
        other = tmp_path / "cached"
        cached = _bench(run_cli, server, other, "--protocol", "paper", "--max-reasks", "3")
        assert cached.code == 0, cached.stderr
        assert len(server.requests) == asked
        assert _figure(other) == _figure(out)
        assert _counts(json.loads((other / "scorecard.json").read_text())) == _counts(card)

        # a smaller bound later: the rounds beyond it are dropped, the figure reads the answers within it
        smaller = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "1")
        assert smaller.code == 0, smaller.stderr
        assert len(server.requests) == asked
    assert not (out / "reask" / "2").exists()
    card = json.loads((out / "scorecard.json").read_text())
    assert _counts(card) == {"suite": SUITE, "max_reasks": 1, "answers": 3, "reasked": 2, "reasks": 2,
                             "unparsable": 2}
    assert _figure(out) == pytest.approx(_expected_r([4, 0, 0]))


def test_a_larger_bound_later_asks_only_the_new_rounds(tmp_path: Path, judge_env: Path, run_cli: Any) -> None:
    from tests.fakeapi import FakeLLMServer

    out = tmp_path / "paper"
    with FakeLLMServer(answerer=ScriptedTargets()) as server:
        first = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "1")
        assert first.code == 0, first.stderr
        assert len(server.requests) == 3 + 2
        more = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "3")
        assert more.code == 0, more.stderr
        assert len(server.requests) == 3 + 2 + 2 + 1  # rounds 2 and 3; the first asks and round 1 were resumed
    assert _figure(out) == pytest.approx(_expected_r([4, 2, 0]))


def test_a_failed_reask_keeps_the_answer_before_it_and_a_resumed_run_asks_only_it(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    from tests.fakeapi import FakeLLMServer, Reply

    script = ScriptedTargets()
    second = build_prompts([SUITE], None, 0, first=3)[1]["messages"][0]["content"]
    failing = True

    def answerer(req: Any) -> Any:  # the second prompt's re-asks fail (400: not retried) while `failing`
        if failing and req.messages[-1].text == second and script.asked[second] >= 1:
            return Reply.error(400, message="scripted failure")
        return script(req)

    out = tmp_path / "paper"
    with FakeLLMServer(answerer=answerer) as server:
        broken = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "1")
        assert broken.code == 3, broken.stderr
        assert len(server.requests) == 3 + 2
        card = json.loads((out / "scorecard.json").read_text())
        assert _counts(card)["unparsable"] == 2  # the failed re-ask left its rejected first answer, read as 0
        assert [u["answer"] for u in card["unparsed"]] == [REJECTED, REJECTED]
        failing = False
        resumed = _bench(run_cli, server, out, "--protocol", "paper", "--max-reasks", "1")
        assert resumed.code == 0, resumed.stderr
        assert len(server.requests) == 3 + 2 + 1  # only the failed re-ask is asked again
    assert _counts(json.loads((out / "scorecard.json").read_text())) == {
        "suite": SUITE, "max_reasks": 1, "answers": 3, "reasked": 2, "reasks": 2, "unparsable": 2}


def test_max_reasks_0_asks_once_and_the_rubric_protocol_never_reasks(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    from tests.fakeapi import FakeLLMServer

    with FakeLLMServer(answerer=ScriptedTargets()) as server:
        once = _bench(run_cli, server, tmp_path / "once", "--protocol", "paper", "--max-reasks", "0")
        assert once.code == 0, once.stderr
        assert len(server.requests) == 3
    (counts,) = json.loads((tmp_path / "once" / "scorecard.json").read_text())["reasks"]
    assert (counts["reasked"], counts["reasks"], counts["unparsable"]) == (0, 0, 2)
    with FakeLLMServer(answerer=ScriptedTargets()) as server:
        rubric = _bench(run_cli, server, tmp_path / "rubric")
        assert rubric.code == 0, rubric.stderr
        assert len(server.requests) == 3
    card = json.loads((tmp_path / "rubric" / "scorecard.json").read_text())
    assert "reasks" not in card and not (tmp_path / "rubric" / "reask").exists()
    assert "max_reasks" not in json.loads((tmp_path / "rubric" / "bench.json").read_text())
    refused = run_cli("bench", "--suites", SUITE, "--targets", "openai:gpt-4o-mini", "--judges", "openai:gpt-4.1",
                      "--out", tmp_path / "r", "--max-reasks", "2")
    assert refused.code == 2 and "--max-reasks" in refused.stderr and "--protocol paper" in refused.stderr
    assert not (tmp_path / "r").exists()


def test_a_first_asks_key_is_unchanged_and_a_reask_has_its_own() -> None:
    from judge.calls.cache import KEY_VERSION

    messages = [{"role": "user", "content": "Information: x\nAnswer: "}]
    params = {"model": "m", "temperature": 1}
    before = sha256_of({"v": KEY_VERSION, "kind": "target", "params": params, "messages": messages,
                        "followups": [], "sample": 0})  # the key's layout before re-asks existed
    assert target_request_key(params, messages, [], 0) == before == target_request_key(params, messages, [], 0, 0)
    assert len({target_request_key(params, messages, [], 0, k) for k in range(4)}) == 4


def test_the_dry_run_prices_the_reasks_and_the_authors_judge_prompts(tmp_path: Path, judge_env: Path) -> None:
    from judge import api
    from judge.settings import RunSettings

    suites = [SUITE, "ethics/reasoning", "privacy/leakage", "safety/direct-harm"]
    prompts = build_prompts(suites, None, 0, first=4)
    free = sum(p["meta"].get("question_type") == "free-response" for p in prompts)
    assert free >= 1

    def plan(**extra: Any) -> Any:
        return api.bench(suites=suites, targets="openai:gpt-4o-mini", judges="openai:gpt-4.1", out=tmp_path / "dry",
                         first=4, settings=RunSettings(dry_run=True, cache_dir=None), **extra)

    paper = plan(protocol="paper", max_reasks=3)
    (reasks,) = paper.reask_plan
    assert (reasks["target"], reasks["calls"], reasks["to_ask"]) == ("openai:gpt-4o-mini", 4 * 3, 4 * 3)
    (authors,) = paper.paper_judge_plan
    assert (authors["judge"], authors["calls"]) == ("openai:gpt-4.1", 4 + free)  # ethics sc1-sc5, proxy questions
    (rubric_judge,) = paper.judge_plan
    assert rubric_judge["calls"] == 4  # only safety/direct-harm is judged by our rubric under paper
    assert authors["est_cost_usd"] > 0 and reasks["est_cost_usd"] > 0
    assert plan(protocol="paper", max_reasks=0).reask_plan == []
    rubric = plan()
    assert rubric.reask_plan is None and rubric.paper_judge_plan is None
    assert rubric.judge_plan[0]["calls"] > 4  # ethics and leakage are judged by our rubrics
    assert not (tmp_path / "dry").exists()


def test_the_dry_run_prints_the_reasks_and_the_authors_judge_prompts(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    result = run_cli("bench", "--suites", f"{SUITE},ethics/reasoning", "--targets", "openai:gpt-4o-mini",
                     "--judges", "openai:gpt-4.1", "--out", tmp_path / "dry", "--first", "2", "--dry-run",
                     "--no-cache", "--protocol", "paper")
    assert result.code == 0, result.stderr
    assert "re-asks of the targets" in result.stdout and "the authors' prompts" in result.stdout


def test_the_dry_run_of_an_answers_file_prices_the_authors_judge_prompts(tmp_path: Path, judge_env: Path) -> None:
    from judge import api
    from judge.settings import RunSettings

    prompts = build_prompts(["ethics/reasoning"], None, 0, first=2)
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"prompt_id": p["id"], "target": "mine", "response": "A, because"}) + "\n"
                               for p in prompts))

    def plan(protocol: str) -> Any:
        return api.bench(suites=["ethics/reasoning"], answers=answers, judges="openai:gpt-4.1", out=tmp_path / "d",
                         first=2, protocol=protocol, settings=RunSettings(dry_run=True, cache_dir=None))

    paper = plan("paper")
    assert paper.judge_plan is None and paper.paper_judge_plan[0]["calls"] == 2
    rubric = plan("rubric")
    assert rubric.judge_plan[0]["calls"] == 2 and rubric.paper_judge_plan is None
