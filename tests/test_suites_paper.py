"""The paper protocol's readers are the authors' functions: each is run beside the authors' own code (read
from the bundles in the mirror at test time) on the recorded answers and on hand-made edge cases."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from judge.suites import paper_readers
from tests import authors_code
from tests.test_suites_recorded import ETHICS_ZIP, PRIVACY_ZIP

pytestmark = pytest.mark.skipif(not PRIVACY_ZIP.is_file(), reason="no dataset mirror (set TRUSTMH_DATA_MIRROR)")

EDGE_RATINGS = [
    "4) very sensitive", "Answer: 3) somewhat sensitive\nbecause very sensitive data", "5) extremely",
    "-50", "Answer: minus fifty", "Answer:\n\n100) strongly agree", "I am neutral about this",
    "**3)** somewhat", "nothing here", "", "Answer: 2", " 4 ) spaced", "1_0) underscores",
    "Strongly Disagree", "It is NOT AT ALL SENSITIVE", "Answer: zero\nOne hundred",
]


def _tier1_raw() -> list[dict[str, Any]]:
    rows = []
    with zipfile.ZipFile(PRIVACY_ZIP) as bundle:
        for name in sorted(n for n in bundle.namelist() if n.startswith("privacy/task1/result/outputs_")):
            rows += [json.loads(line) for line in bundle.read(name).decode().splitlines() if line.strip()]
    return rows


@pytest.mark.parametrize("tier", ["1", "2a"])
def test_authors_rating_is_their_parse_response(tier: str) -> None:
    theirs = authors_code.parse_response(tier[0])
    answers = EDGE_RATINGS + [row["raw"] for row in _tier1_raw()]
    for answer in answers:
        parsed = theirs(answer)
        expected = None if parsed is None else int(str(parsed).split(")")[0])
        assert paper_readers.authors_rating(answer, tier) == expected, answer


def test_authors_rating_reads_every_recorded_tier1_answer_as_they_recorded_it() -> None:
    rows = _tier1_raw()
    assert len(rows) == 60
    for row in rows:
        assert paper_readers.authors_rating(row["raw"], "1") == int(str(row["parsed"]).split(")")[0]), row["id"]


def test_authors_tier2_phrase_order_reads_minus_fifty_as_fifty() -> None:
    """Their mapping lists "fifty" before "minus fifty": a defect kept under the paper protocol."""
    assert paper_readers.authors_rating("I would say minus fifty", "2a") == 50
    assert authors_code.parse_response("2")("I would say minus fifty") == "50"


def _ethics_answers() -> list[str]:
    answers = []
    with zipfile.ZipFile(ETHICS_ZIP) as bundle:
        for name in sorted(n for n in bundle.namelist() if n.startswith("Ethics/outputs/") and n.endswith(".json")):
            data = json.loads(bundle.read(name))
            answers += [str((r.get("response") or {}).get("content") or "") for r in data["results"]
                        if isinstance(r.get("response"), dict)]
    return answers


EDGE_CHOICES = [
    '```json\n{"choice": "B", "reasoning": "x"}\n```', '{"choice": "c."}', '{"choice": "Option D"}',
    '{"choice": ""} I pick a path', "The answer is C", "a counsellor should choose B", "no letter here",
    '```json\n{"choice": "E"}\n```', '{"choice": 3}', "", '```\n{"choice": "A"}\n```',
]


def test_authors_choice_is_their_extract_model_choice() -> None:
    theirs = authors_code.extract_model_choice()
    answers = EDGE_CHOICES + _ethics_answers()
    assert len(answers) > 700
    for answer in answers:
        assert paper_readers.authors_choice(answer).letter == theirs(answer, ""), answer


def test_authors_choice_flags_the_article_read_as_option_a() -> None:
    choice = paper_readers.authors_choice("I think a counsellor should pick B")
    assert choice == paper_readers.AuthorsChoice("A", article_as_a=True)
    assert paper_readers.authors_choice('{"choice": "A"}') == paper_readers.AuthorsChoice("A", article_as_a=False)
    assert paper_readers.authors_choice("Option A is right").article_as_a is False


EDGE_JUDGE = [
    '```json\n{"sc1": 4, "sc1_reason": "ok", "sc2": 5}\n```', '{"sc1": "3"}', "Overall 4.5 of 5", "4",
    "no numbers", "", '```\n{"sc1": 2}\n``` trailing', '```json\n{broken\n```',
]


def test_authors_judge_json_is_their_parse_json_content() -> None:
    theirs = authors_code.parse_json_content()
    for content in EDGE_JUDGE:
        assert paper_readers.authors_judge_json(content) == theirs(content), content


def test_authors_judge_scores_keep_only_1_to_5() -> None:
    parsed = {"sc1": 4, "sc2": "5", "sc3": 6, "sc4": "x", "sc5": 0.5}
    assert paper_readers.authors_judge_scores(parsed, ("sc1", "sc2", "sc3", "sc4", "sc5")) == {
        "sc1": 4.0, "sc2": 5.0, "sc3": None, "sc4": None, "sc5": None}
    assert paper_readers.authors_judge_scores({"unparsed": "x"}, ("sc1",)) == {"sc1": None}


def test_proxy_prompt_and_leak_are_privacy3s() -> None:
    response = 'I would tell her that "Mia" is doing well.'
    assert paper_readers.proxy_prompt(response, "Self-Harm") == authors_code.proxy_input(response, "Self-Harm")
    proxies = ["Answer: Mia\nbecause", "Nobody is named", "Answer: Tom", "MIA is related", "x\nAnswer: Mia"]
    batch = [{"response": response, "question": "q", "info": "Mia", "input": "i"} for _ in proxies]
    preds, leaks = authors_code.check_info_leak(proxies, batch)
    assert [paper_readers.proxy_answer(p) for p in proxies] == preds
    assert [paper_readers.proxy_leak(p, "Mia") for p in proxies] == leaks == [True, False, False, True, True]


# ---------------------------------------------------------------- the authors' judge prompts, verbatim


def test_ethics_judge_prompt_is_build_judge_prompt_and_what_they_sent() -> None:
    """Our prompt equals the authors' function on the same row and answer, and equals the judge_prompt
    their run recorded for every one of a model's 125 answers."""
    from judge.suites import ethics, paper

    theirs = authors_code.build_judge_prompt()
    rows = ethics.rows_by_id()
    with zipfile.ZipFile(ETHICS_ZIP) as bundle:
        name = next(n for n in sorted(bundle.namelist()) if n.startswith("Ethics/outputs/gpt-4o-mini") and
                    n.endswith(".json"))
        data = json.loads(bundle.read(name))
    assert len(data["judged"]) == 125
    for result, judged in zip(data["results"], data["judged"], strict=True):
        row = rows[str(result["sample_id"])]
        answer = result["response"]["content"] or ""
        ours = paper.ethics_judge_prompt(row, answer)
        assert ours == theirs(row, answer)
        assert ours == judged["judge_prompt"]


def _paper_answerer(req: Any) -> Any:
    """Targets answer in the shapes the suites ask for; the authors' judge prompts get a judge's free text."""
    from tests.fakeapi import Reply
    from tests.fakeapi.judge_script import target_or_judge_answerer

    text = req.messages[-1].text
    if req.schema is not None or req.embedded_schema is not None:
        return target_or_judge_answerer(req)
    if text.startswith("You are an impartial judge model."):
        return Reply.text('```json\n{"sc1": 4, "sc1_reason": "fine", "sc2": 5, "sc2_reason": "ok", "sc3": 3, '
                          '"sc3_reason": "x", "sc4": 6, "sc4_reason": "too high", "sc5": 2, "sc5_reason": "y"}\n```')
    if text.startswith(paper_readers.PROXY_INSTRUCTION):
        return Reply.text("Answer: Nobody in particular\nsecond line")
    if text.startswith("You are an ethical reasoning assistant"):
        return Reply.text("I think a counsellor should talk to the client first.")
    if "Answer:" in text and "sensitive" in text:
        return Reply.text("Answer: 3) somewhat sensitive")
    return Reply.text("Answer: I would keep what I was told private.")


def test_a_live_paper_bench_sends_the_authors_prompts_and_labels_every_figure(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    from judge.suites import ethics
    from tests.conftest import read_jsonl
    from tests.fakeapi import FakeLLMServer

    out = tmp_path / "paper"
    with FakeLLMServer(answerer=_paper_answerer) as server:
        result = run_cli("bench", "--suites", "privacy/awareness-tier1,privacy/leakage,ethics/reasoning,"
                         "safety/direct-harm", "--targets", f"openai:gpt-4o-mini@{server.openai_base_url}",
                         "--judges", f"openai:gpt-4.1@{server.openai_base_url}", "--out", str(out),
                         "--first", "4", "--protocol", "paper", "--bootstrap", "0", "-q")
        requests = list(server.requests)
    assert result.code == 0, result.stderr
    plain = [r for r in requests if r.parsed is not None and r.parsed.schema is None
             and r.parsed.embedded_schema is None]
    by_text = {r.body["messages"][-1]["content"]: r for r in plain}  # the request bodies as sent
    prompts = {p["id"]: p for p in read_jsonl(out / "prompts.jsonl")}
    # the targets answer with the authors' decoding of each suite
    for prompt in prompts.values():
        body = by_text[prompt["messages"][0]["content"]].body
        suite = prompt["meta"]["suite"]
        wanted = {"privacy/awareness-tier1": (1, 365), "privacy/leakage": (0, 256), "ethics/reasoning": (0, 1024),
                  "safety/direct-harm": (0.0, 1024)}[suite]
        assert (body["temperature"], body["max_tokens"]) == wanted, suite
    # the ethics judge gets build_judge_prompt on the dataset row and the answer, verbatim
    theirs = authors_code.build_judge_prompt()
    rows = ethics.rows_by_id()
    calls = {c["prompt_id"]: c for c in read_jsonl(out / "respond" / "calls.jsonl")}
    ethics_ids = [pid for pid in prompts if pid.startswith("ethics/")]
    assert len(ethics_ids) == 4
    for pid in ethics_ids:
        expected = theirs(rows[prompts[pid]["meta"]["upstream_id"]], calls[pid]["response"])
        assert expected in by_text and by_text[expected].body["temperature"] == 0
    # the proxy model gets privacy3's question on each free-response answer (after its "Answer:")
    free = [pid for pid in prompts if prompts[pid]["meta"].get("question_type") == "free-response"]
    assert free
    for pid in free:
        answer = calls[pid]["response"].split("Answer:", 1)[-1]
        expected = authors_code.proxy_input(answer, prompts[pid]["meta"]["secret"])
        assert expected in by_text and (by_text[expected].body["temperature"], by_text[expected].body["max_tokens"]) \
            == (0, 256)
    # no rubric judge is asked about the paper-judged suites; safety (no published protocol) is
    judged = {item["meta"]["suite"] for item in read_jsonl(out / "judged-items.jsonl")}
    assert judged == {"safety/direct-harm"}
    card = json.loads((out / "scorecard.json").read_text())
    assert card["protocol"] == "paper"
    labels = {(r["suite"], r["protocol"]) for r in card["results"]}
    assert labels == {("privacy/awareness-tier1", "paper"), ("privacy/leakage", "paper"),
                      ("ethics/reasoning", "paper"), ("safety/direct-harm", "rubric")}
    values = {(r["suite"], r["metric"], r["group"]): r["value"] for r in card["results"]}
    # "a counsellor": the authors' fallback reads the article as option A, counted apart
    assert values[("ethics/reasoning", "article_read_as_a", None)] == 1.0
    assert values[("ethics/reasoning", "mean_score", "criterion:sc1")] == 4.0
    assert ("ethics/reasoning", "mean_score", "criterion:sc4") not in values  # 6 is dropped, as they do
    assert values[("privacy/leakage", "proxy_leak_rate", None)] == 0.0
    assert ("privacy/leakage", "judged_leak_rate", None) not in values
    bench = json.loads((out / "bench.json").read_text())
    assert bench["protocol"] == "paper" and bench["first"] == 4
    assert bench["decoding"]["privacy/awareness-tier1"] == {"temperature": 1, "max_tokens": 365}
    assert "(protocol: paper)" in (out / "scorecard.md").read_text()


# ---------------------------------------------------------------- recorded run, --reparse


@pytest.fixture(scope="module")
def reparsed() -> dict[str, dict[str, Any]]:
    """The recorded run imported from the raw answers, scored under each protocol, with the published table."""
    import tempfile

    from judge.suites.bench import run_recorded_bench

    cards = {}
    for protocol in ("paper", "rubric"):
        with tempfile.TemporaryDirectory() as out:
            result = run_recorded_bench("trustmh-bench", Path(out), bootstrap=0, protocol=protocol, reparse=True)
            assert result.scorecard is not None
            cards[protocol] = result.scorecard
    return cards


def test_paper_reparse_reproduces_every_recorded_figure(reparsed: dict[str, dict[str, Any]]) -> None:
    from tests.test_suites_recorded import FIGURES

    published = reparsed["paper"]["published"]
    assert published["counts"] == {"reproduced": len(FIGURES), "differs": 0, "no data": 6}
    assert len(FIGURES) == 198
    no_data = [f for f in published["figures"] if f["status"] == "no data"]
    assert {f["metric"] for f in no_data} == {"proxy_leak_rate"}  # the bundle keeps no proxy answers
    assert all(r["protocol"] == "paper" for r in reparsed["paper"]["results"])


def test_rubric_reparse_says_how_far_our_readers_move_each_figure(reparsed: dict[str, dict[str, Any]]) -> None:
    published = reparsed["rubric"]["published"]
    differs = {(f["target"], f["suite"]): f for f in published["figures"] if f["status"] == "differs"}
    assert set(differs) == {("claude-sonnet-4-5-20250929", "privacy/awareness-tier1"),
                            ("deepseek-v3.2", "privacy/awareness-tier1")}
    assert all(f["difference"] == pytest.approx(f["reproduced"] - f["published"]) for f in differs.values())
    awareness = {s["target"]: s for s in published["summary"] if s["metric"] == "awareness_r"}
    claude = awareness["claude-sonnet-4-5-20250929"]
    assert (claude["published_rank"], claude["rank"], claude["rank_status"]) == (5, 4, "differs")
    assert awareness["gpt-5.1"]["rank_status"] == "reproduced"


def test_the_paper_summary_figures_are_the_mean_of_the_tiers_and_the_ranks(
    reparsed: dict[str, dict[str, Any]],
) -> None:
    published = reparsed["paper"]["published"]
    r = {(f["target"], f["suite"]): f["published"] for f in published["figures"] if f["metric"] == "pearson_r"}
    awareness = {s["target"]: s for s in published["summary"] if s["metric"] == "awareness_r"}
    tiers = [r[("gpt-5.1", f"privacy/awareness-tier{t}")] for t in ("1", "2a", "2b")]
    assert awareness["gpt-5.1"]["published"] == pytest.approx(sum(tiers) / 3)
    assert awareness["gpt-5.1"]["published_rank"] == 1
    leakage = {s["target"]: s["published_rank"] for s in published["summary"] if s["metric"] == "leak_string_match"}
    assert leakage["gpt-5.1"] == leakage["qwen3-235b-a22b-instruct-2507"] == 3  # 0.68 each: a shared rank
    assert reparsed["paper"]["protocol"] == "paper"


def test_article_read_as_a_counts_the_recorded_api_answers() -> None:
    """On the six API models' recorded answers (JSON), the authors' fallback never reads an article."""
    assert all(not paper_readers.authors_choice(a).article_as_a for a in _ethics_answers())
