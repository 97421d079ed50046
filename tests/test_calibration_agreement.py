"""Agreement statistics against published worked examples and hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.compute import _substitute
from judge.stats import agreement as ag

NAN = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])

# Fleiss' kappa worked example on Wikipedia: 10 subjects, 14 raters, 5 categories.
FLEISS_WIKIPEDIA = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_reproduces_krippendorff_2011(level: str, published: float) -> None:
    assert ag.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)


def test_alpha_is_none_when_not_computable() -> None:
    nothing_pairable = np.array([[1, 2, NAN], [NAN, NAN, 3]])
    assert ag.krippendorff_alpha(nothing_pairable, "ordinal") is None
    assert ag.krippendorff_alpha(np.array([[3, 3, 3], [3, 3, 3]]), "interval") is None  # one value
    assert ag.krippendorff_alpha(np.array([[1.0, 2.0, 3.0, 4.0]]), "nominal") is None  # one rater


def test_alpha_value_domain_is_checked() -> None:
    # Ordinal distances use observed marginals, so an unobserved scale point does not move alpha.
    data = np.array([[1, 2, 2, 5], [1, 2, 3, 5]])
    with_domain = ag.krippendorff_alpha(data, "ordinal", value_domain=[1, 2, 3, 4, 5])
    assert with_domain == pytest.approx(ag.krippendorff_alpha(data, "ordinal"))
    with pytest.raises(ValueError, match="outside value_domain"):
        ag.krippendorff_alpha(data, "ordinal", value_domain=[1, 2, 3])


def test_icc_reproduces_shrout_fleiss_table() -> None:
    # Shrout & Fleiss report ICC(2,1) = .29 and ICC(3,1) = .71 for these data (McGraw & Wong A,1 / C,1).
    assert ag.icc_a1(SHROUT_FLEISS) == pytest.approx(0.29, abs=0.005)
    assert ag.icc_c1(SHROUT_FLEISS) == pytest.approx(0.71, abs=0.005)


def test_icc_drops_incomplete_items_and_handles_degenerate_input() -> None:
    with_gap = np.vstack([SHROUT_FLEISS, [[1, NAN, 3, 4]]]).astype(float)
    assert ag.icc_a1(with_gap) == pytest.approx(ag.icc_a1(SHROUT_FLEISS))
    assert ag.icc_c1(np.ones((5, 2))) is None
    assert ag.icc_a1(np.array([[1.0, 2.0]])) is None
    no_complete_item = np.array([[3.0, NAN], [4.0, NAN]])  # the judge (column 2) scored none of the items
    assert ag.icc_a1(no_complete_item) is None
    assert ag.icc_c1(no_complete_item) is None


def test_fleiss_kappa_reproduces_wikipedia_example() -> None:
    assert ag.fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)


def test_label_counts_feed_fleiss() -> None:
    labels = np.array([[0, 1, 2, 2], [0, 1, 2, 1], [0, 2, 2, 1]])
    counts = ag.label_counts(labels, [0, 1, 2])
    assert counts.tolist() == [[3, 0, 0], [0, 2, 1], [0, 0, 3], [0, 2, 1]]
    with pytest.raises(ValueError, match="every rater"):
        ag.label_counts(np.array([[0, NAN], [0, 1]]), [0, 1])


def test_quadratic_weighted_kappa_hand_computed() -> None:
    # Two categories, confusion [[2, 1], [0, 1]]: observed disagreement 1/4; expected from the marginals.
    a, b = [1, 1, 1, 2], [1, 1, 2, 2]
    observed = 1 / 4
    expected = (3 / 4) * (2 / 4) + (1 / 4) * (2 / 4)  # P(a=1)P(b=2) + P(a=2)P(b=1)
    assert ag.quadratic_weighted_kappa(a, b) == pytest.approx(1 - observed / expected)
    assert ag.quadratic_weighted_kappa([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)


def test_quadratic_weighting_penalises_distance() -> None:
    truth = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    near = [2, 2, 3, 4, 5, 1, 2, 3, 4, 4]
    far = [5, 2, 3, 4, 5, 1, 2, 3, 4, 1]
    categories = [1, 2, 3, 4, 5]
    near_kappa = ag.quadratic_weighted_kappa(truth, near, categories)
    assert near_kappa > ag.quadratic_weighted_kappa(truth, far, categories)
    # Unweighted kappa cannot tell the two apart: both have two disagreements.
    assert ag.cohen_kappa(truth, near) != pytest.approx(ag.quadratic_weighted_kappa(truth, near))


def test_kappa_undefined_and_missing() -> None:
    assert ag.quadratic_weighted_kappa([3, 3, 3], [3, 3, 3]) is None
    assert ag.quadratic_weighted_kappa([NAN, NAN], [1, 2]) is None
    assert ag.quadratic_weighted_kappa([1, 2, NAN, 3], [1, 2, 5, 3]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not among the categories"):
        ag.quadratic_weighted_kappa([1, 2], [1, 7], categories=[1, 2, 3])


def test_cohen_kappa_textbook() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o = .7, p_e = .5, kappa = .4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert ag.cohen_kappa(a, b) == pytest.approx(0.4)


def test_errors_and_rates() -> None:
    judge, human = [1, 2, 3, 5, NAN], [1, 3, 5, 4, 2]
    assert ag.mae(judge, human) == pytest.approx(1.0)
    assert ag.rmse(judge, human) == pytest.approx(np.sqrt(6 / 4))
    assert ag.mean_bias(judge, human) == pytest.approx(-0.5)
    assert ag.exact_agreement(judge, human) == pytest.approx(0.25)
    assert ag.within_one_agreement(judge, human) == pytest.approx(0.75)
    assert ag.mae([NAN], [1]) is None


def test_correlations() -> None:
    x = [1, 2, 3, 4, 5]
    assert ag.spearman(x, [2, 4, 6, 8, 100]) == pytest.approx(1.0)
    assert ag.pearson(x, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert ag.kendall(x, [1, 3, 2, 4, 5]) == pytest.approx(0.8)
    assert ag.spearman(x, [3, 3, 3, 3, 3]) is None
    assert ag.pearson([1, 2], [1, 2]) is None


def test_confusion_matrix() -> None:
    m = ag.confusion_matrix([1, 2, 2, NAN], [1, 3, 2, 1], [1, 2, 3])
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_judge_added_and_substituted() -> None:
    humans = np.array([[1, 2, 3, 4, 5, 3], [1, 2, 3, 4, 4, 3], [2, 2, 3, 4, 5, 3]], dtype=float)
    perfect = humans[0]
    wrong = np.array([5, 4, 1, 1, 2, 5], dtype=float)
    base = ag.krippendorff_alpha(humans, "ordinal")
    assert ag.alpha_with_judge(humans, perfect, "ordinal") >= base
    assert ag.alpha_with_judge(humans, wrong, "ordinal") < base
    substituted = [ag.krippendorff_alpha(_substitute(humans, row, wrong), "interval") for row in range(3)]
    assert len(substituted) == 3 and all(v is not None and v < base for v in substituted)


def test_alpha_with_a_judge_that_scored_no_human_rated_item_is_none() -> None:
    humans = np.array([[3, 1, NAN], [4, 1, NAN]], dtype=float)
    assert ag.krippendorff_alpha(humans, "ordinal") is not None
    assert ag.alpha_with_judge(humans, np.array([NAN, NAN, 2.0]), "ordinal") is None


def test_self_consistency() -> None:
    runs = np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert ag.self_consistency(runs) == pytest.approx(1.0)
    assert ag.self_consistency(np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]), "interval") < 0


def test_alt_test_passes_a_consensus_judge_and_fails_a_noisy_one() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, size=60).astype(float)
    humans = np.clip(truth + rng.integers(-1, 2, size=(4, 60)), 1, 5)
    good = ag.alt_test(humans, np.median(humans, axis=0))
    bad = ag.alt_test(humans, rng.integers(1, 6, size=60).astype(float))
    assert good is not None and good["passed"] and good["winning_rate"] >= 0.5
    assert bad is not None and not bad["passed"] and bad["rho"] < good["rho"]
    assert ag.alt_test(humans[:2], truth) is None  # needs >= 3 humans


def test_alt_test_accuracy_scoring_for_labels() -> None:
    humans = np.array([[0, 1, 2, 0, 1, 2] * 5, [0, 1, 2, 0, 1, 1] * 5, [0, 1, 2, 1, 1, 2] * 5], dtype=float)
    result = ag.alt_test(humans, humans[0], scoring="accuracy", epsilon=0.1)
    assert result is not None and result["passed"]
