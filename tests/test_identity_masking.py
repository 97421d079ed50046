"""Identity masking for fairness criteria, partial renders, the reference mode and the resource block in prompts."""

from __future__ import annotations

import json

import pytest
import yaml

from judge.bundled import bundled_path
from judge.items import Item
from judge.prompts import (
    IDENTITY_PLACEHOLDER,
    PromptRenderer,
    hides_identity,
    mask_identity_cues,
    masked_view,
    prompt_hash,
)
from judge.rubric import RubricError, load_rubric_dir, parse_rubric
from tests.conftest import read_items

RUBRICS = load_rubric_dir(bundled_path("rubrics"))
RENDERER = PromptRenderer()
FAIRNESS = RUBRICS["fairness"]
EXAMPLES = {
    i.id: i
    for p in bundled_path("examples").glob("*.jsonl")
    if not p.name.endswith(".expected.jsonl")
    for i in read_items([p], {p.stem}).items
}


# ---------------------------------------------------------------- the pure masking function


def test_mask_is_case_insensitive_and_whitespace_tolerant() -> None:
    text = "I'm a 64-year-old  Woman. As a 64-year-old\nwoman I worry."
    assert (
        mask_identity_cues(text, ["64-year-old woman"])
        == f"I'm a {IDENTITY_PLACEHOLDER}. As a {IDENTITY_PLACEHOLDER} I worry."
    )


def test_mask_never_matches_inside_a_longer_word() -> None:
    text = "The man told the woman and her manager; men and women."
    assert mask_identity_cues(text, ["man", "men"], "X") == "The X told the woman and her manager; X and women."


def test_longest_cue_is_masked_first() -> None:
    assert mask_identity_cues("As a gay man, and as a man", ["man", "gay man"], "X") == "As a X, and as a X"


def test_cues_with_punctuation_and_numbers() -> None:
    text = "An LGBTQ+-affirming therapist; at 64, though."
    assert mask_identity_cues(text, ["LGBTQ+", "64"], "X") == "An X-affirming therapist; at X, though."
    assert mask_identity_cues("1964 and 640", ["64"], "X") == "1964 and 640"


def test_a_cue_never_matches_inside_the_placeholder_and_the_placeholder_is_literal() -> None:
    assert mask_identity_cues("I am a Sikh man.", ["Sikh man", "withheld"]) == f"I am a {IDENTITY_PLACEHOLDER}."
    assert mask_identity_cues("a man", ["man"], r"\1 [x]") == r"a \1 [x]"


def test_blank_or_no_cues_change_nothing() -> None:
    assert mask_identity_cues("I'm a woman.", []) == "I'm a woman."
    assert mask_identity_cues("I'm a woman.", ["  "]) == "I'm a woman."


def test_masked_view_masks_every_turn_and_the_response_and_leaves_the_original_alone() -> None:
    item = EXAMPLES["fairness-02"]
    masked = masked_view(item)
    assert "64" not in masked.messages[0].content and "64" not in masked.response
    assert IDENTITY_PLACEHOLDER in masked.messages[0].content and IDENTITY_PLACEHOLDER in masked.response
    assert "64-year-old woman" in item.messages[0].content, "the item itself is not changed"
    assert masked_view(EXAMPLES["fairness-01"]) is EXAMPLES["fairness-01"], "no cues: the same item"


def test_identity_cues_of_the_wrong_type_are_rejected_at_read_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "pillar": "fairness", "prompt": "hi", "response": "ok", "meta": {"identity_cues": "woman"}},
        {"id": "b", "pillar": "fairness", "prompt": "hi", "response": "ok", "meta": {"identity_cues": ["woman"]}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = read_items([path], {"fairness"})
    assert [i.id for i in result.items] == ["b"]
    assert len(result.rejections) == 1
    assert "items.jsonl:1" in str(result.rejections[0]) and "identity_cues" in str(result.rejections[0])


# ---------------------------------------------------------------- masked and visible renders


def test_masked_criteria_are_rendered_without_the_cue_and_only_those_criteria() -> None:
    item = EXAMPLES["fairness-02"]
    visible, masked = FAIRNESS.identity_split()
    system, user = RENDERER.render(FAIRNESS, item, criteria=masked)
    assert "64" not in user.content and IDENTITY_PLACEHOLDER in user.content
    assert "Identity masked" in system.content
    for cid in masked:
        assert f"### {cid} " in system.content
    for cid in visible:
        assert f"### {cid} " not in system.content


def test_visible_criteria_are_rendered_with_the_cue() -> None:
    item = EXAMPLES["fairness-02"]
    visible, _ = FAIRNESS.identity_split()
    system, user = RENDERER.render(FAIRNESS, item, criteria=visible)
    assert "64-year-old woman" in user.content and IDENTITY_PLACEHOLDER not in user.content
    assert "Identity masked" not in system.content


def test_masked_and_visible_calls_differ_and_the_masked_call_is_the_same_for_every_group() -> None:
    """The point of masking: variants that differ only in the cue give the judge identical masked prompts."""
    _, masked = FAIRNESS.identity_split()
    base = json.loads(json.dumps(EXAMPLES["fairness-07"].model_dump(mode="json")))
    other = {
        **base,
        "id": "x",
        "messages": [
            {
                "role": "user",
                "content": base["messages"][0]["content"].replace("42-year-old woman", "42-year-old Sikh man"),
            }
        ],
        "meta": {**base["meta"], "identity_cues": ["42-year-old Sikh man"]},
    }
    first = RENDERER.render(FAIRNESS, EXAMPLES["fairness-07"], criteria=masked)
    second = RENDERER.render(FAIRNESS, Item.model_validate(other), criteria=masked)
    assert prompt_hash(first) == prompt_hash(second)
    assert prompt_hash(first) != prompt_hash(RENDERER.render(FAIRNESS, EXAMPLES["fairness-07"]))


def test_judged_response_is_what_the_call_shows() -> None:
    item = EXAMPLES["fairness-05"]
    visible, masked = FAIRNESS.identity_split()
    assert RENDERER.judged_response(FAIRNESS, item, masked) == masked_view(item).response
    assert RENDERER.judged_response(FAIRNESS, item, visible) == item.response
    assert "gay man" not in RENDERER.judged_response(FAIRNESS, item, masked)


def test_mixing_masked_and_visible_criteria_in_one_call_is_refused() -> None:
    with pytest.raises(ValueError, match="separate calls"):
        RENDERER.render(FAIRNESS, EXAMPLES["fairness-02"], criteria=["care_quality", "no_stereotyping"])


def test_whole_rubric_render_is_unmasked_and_unchanged_in_shape() -> None:
    assert not hides_identity(FAIRNESS)
    system, user = RENDERER.render(FAIRNESS, EXAMPLES["fairness-02"])
    assert "64-year-old woman" in user.content
    for criterion in FAIRNESS.criteria:
        assert f"### {criterion.id} " in system.content


def test_unknown_criterion_in_a_partial_render_is_an_error() -> None:
    with pytest.raises(KeyError, match="no_such"):
        RENDERER.render(FAIRNESS, EXAMPLES["fairness-02"], criteria=["no_such"])


# ---------------------------------------------------------------- rubric fields


def _fairness_data() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((bundled_path("rubrics") / "fairness.yaml").read_text(encoding="utf-8"))


def test_hide_identity_cues_is_part_of_the_criterion_hash_and_default_leaves_it_out() -> None:
    data = _fairness_data()
    flipped = json.loads(json.dumps(data))
    flipped["criteria"][0]["hide_identity_cues"] = False
    plain = parse_rubric(yaml.safe_dump(flipped), "flipped")
    original = parse_rubric(yaml.safe_dump(data), "original")
    assert plain.criteria[0].content_hash != original.criteria[0].content_hash
    assert "hide_identity_cues" not in plain.criteria[0].canonical()
    assert original.criteria[0].canonical()["hide_identity_cues"] is True
    assert plain.criteria[1].content_hash == original.criteria[1].content_hash


def test_hide_identity_cues_must_be_a_boolean() -> None:
    data = _fairness_data()
    data["criteria"][0]["hide_identity_cues"] = "sometimes"
    with pytest.raises(RubricError, match=r"criteria\[0\]\.hide_identity_cues"):
        parse_rubric(yaml.safe_dump(data), "bad.yaml")


def test_reference_mode_is_validated_and_a_label_needs_a_shown_reference() -> None:
    data = _fairness_data()
    with pytest.raises(RubricError, match="reference"):
        parse_rubric(yaml.safe_dump({**data, "reference": "sometimes"}), "bad.yaml")
    with pytest.raises(RubricError, match="reference_label is set but reference is hidden"):
        parse_rubric(yaml.safe_dump({**data, "reference": "hidden", "reference_label": "Gold"}), "bad.yaml")
    hidden = parse_rubric(yaml.safe_dump({**data, "reference": "hidden"}), "ok.yaml")
    assert hidden.content_hash != parse_rubric(yaml.safe_dump(data), "ok.yaml").content_hash


def test_restricted_rubric_keeps_rubric_order_and_its_own_hash() -> None:
    part = FAIRNESS.restricted_to(["proportionate_help", "care_quality"])
    assert [c.id for c in part.criteria] == ["care_quality", "proportionate_help"]
    assert part.content_hash != FAIRNESS.content_hash
    assert part.criteria[0].content_hash == FAIRNESS.criteria[0].content_hash
    with pytest.raises(ValueError, match="at least one"):
        FAIRNESS.restricted_to([])


# ---------------------------------------------------------------- reference mode in the prompt


def test_ethics_gold_letter_never_reaches_the_judge() -> None:
    item = EXAMPLES["ethics-07"]
    assert item.reference == "A"
    _, user = RENDERER.render(RUBRICS["ethics"], item)
    assert "REFERENCE" not in user.content and "Reference" not in user.content


def test_robustness_reference_is_labelled_as_the_systems_clean_answer() -> None:
    _, user = RENDERER.render(RUBRICS["robustness"], EXAMPLES["robustness-02"])
    assert "the same system gave to the clean (unperturbed) version" in user.content
    assert "from the benchmark" not in user.content
    assert EXAMPLES["robustness-02"].reference in user.content  # type: ignore[operator]


# ---------------------------------------------------------------- resource findings in the prompt


def test_resource_check_is_rendered_for_the_pillars_that_judge_resources() -> None:
    _, user = RENDERER.render(RUBRICS["reliability"], EXAMPLES["reliability-04"])
    assert "Resource check (done by code" in user.content
    assert 'number "0808 157 0192": not in the verified list' in user.content
    _, crisis_user = RENDERER.render(RUBRICS["crisis"], EXAMPLES["crisis-14"])
    assert 'number "988": verified' in crisis_user.content
    _, ethics_user = RENDERER.render(RUBRICS["ethics"], EXAMPLES["ethics-07"])
    assert "Resource check" not in ethics_user.content


def test_resource_findings_name_verified_services_and_a_wrong_number() -> None:
    _, user = RENDERER.render(RUBRICS["reliability"], EXAMPLES["reliability-09"])
    assert 'number "999": verified' in user.content
    assert 'named "Samaritans": a listed service' in user.content
    assert "an unverified number follows it (0845 790 9090)" in user.content
    _, good = RENDERER.render(RUBRICS["reliability"], EXAMPLES["reliability-08"])
    assert 'number "1-800-662-4357": verified, SAMHSA National Helpline' in good.content


def test_resource_check_says_when_nothing_was_found() -> None:
    _, user = RENDERER.render(RUBRICS["reliability"], EXAMPLES["reliability-01"])
    assert "contains no phone number and no name or website of a listed service" in user.content


def test_each_resource_finding_is_its_own_line() -> None:
    _, user = RENDERER.render(RUBRICS["reliability"], EXAMPLES["reliability-09"])
    block = user.content[user.content.index("Resource check") :].splitlines()
    assert block[1].startswith('- location: the user named "Leeds"')
    assert [line.split('"')[1] for line in block[2:]] == ["0845 790 9090", "999", "Samaritans"]
