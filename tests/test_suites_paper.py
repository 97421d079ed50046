"""The paper protocol's readers are the authors' functions: each is run beside the authors' own code (read
from the bundles in the mirror at test time) on the recorded answers and on hand-made edge cases."""

from __future__ import annotations

import json
import zipfile
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
