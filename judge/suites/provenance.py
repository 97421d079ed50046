"""Whose a suite's design is, where it departs from the paper's: stand-in data, perturbations that are ours,
the paper's fairness dimensions run or not. One text per fact, shown by `suites list` / `suites show`, written
into scorecard.json (`suite_notes`), scorecard.md, bench.json and the report, so no figure is read as the
paper's when it is not.

What the paper's own material says, as far as the dataset mirror and the authors' repository hold it: the
paper's text is not in the mirror; the authors' repository (Qiyuan0130/TrustMH_Bench @ 94d65dbd) has an
overview figure (`images/trustmh_bench.png`: robustness at character, word and sentence level; fairness
over Race, Gender, Age, Religion and Intervene) and a perturbation figure (`images/perturbation_intensity.png`:
one example sentence at each level), and lists its robustness and fairness code (`Robustness.zip`,
`fair.zip`) in its tree without their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OURS_PERTURBATIONS = (
    "perturbations: ours, not the paper's (judge/suites/perturb.py: case flips, keyboard typos and inserted "
    "symbols; then word swaps and word drops; then one distracting sentence; intensity 0.1, seeded per prompt); "
    "the paper's are not implemented, since it shows them by example only (see `trustmh suites show "
    "robustness/knowledge`)"
)
STAND_IN = (
    "stand-in: USMLE-Mental knowledge questions replace the paper's diagnosis data (D4, SWMH: published "
    "elsewhere, not in the dataset mirror); this suite fills the paper's robustness / psychological diagnosis "
    "row, but its figures are not measured on the paper's data"
)
FAIRNESS_RUN = (
    "fairness dimensions: the paper's overview figure lists Race, Gender, Age, Religion and Intervene; run here: "
    "race, gender, age and religion, plus ours (sexual orientation, disability, first language); not run: "
    "Intervene (see `trustmh suites show fairness/demographics`)"
)


@dataclass(frozen=True)
class PaperDefinition:
    """One thing the paper defines for a suite, and whether this project runs it (and why not)."""

    what: str
    status: Literal["run", "not run"]
    why: str


PAPER_PERTURBATIONS: tuple[PaperDefinition, ...] = (
    PaperDefinition(
        "the paper's character-, word- and sentence-level perturbations", "not run",
        "defined in the paper, not implemented: the authors' figure (images/perturbation_intensity.png in their "
        "repository) shows one sentence at each level (letter case changed, symbols and dots inserted, letters "
        "repeated, dropped and swapped, a Greek α for an a; words swapped and dropped; an unrelated sentence put "
        "first) but not the rules: which operations, how many per text, the intensity, the sentences added, the "
        "randomness. The paper's text is not in the mirror and their code (Robustness.zip) is listed in their "
        "tree without its bytes, so there is no definition to implement, nor a hand-computable example to test "
        "an implementation against; `--protocol paper` runs ours, labelled ours"),
)

PAPER_FAIRNESS: tuple[PaperDefinition, ...] = (
    PaperDefinition("Race", "run", "personas race:Black, race:white, race:Asian, race:Latino (ours; the paper's "
                    "personas and their wording are not published)"),
    PaperDefinition("Gender", "run", "personas gender:woman, gender:man, gender:non-binary (ours)"),
    PaperDefinition("Age", "run", "personas aged 15, 19, 45 and 72 (ours)"),
    PaperDefinition("Religion", "run", "personas Christian, Muslim, Hindu, Buddhist, Jewish (ours)"),
    PaperDefinition(
        "Intervene", "not run",
        "the overview figure (images/trustmh_bench.png) names it among the fairness dimensions without saying "
        "what varies in it (a group, or the psychological-intervention task); the paper's text is not in the "
        "mirror and the authors' fairness bundle (fair.zip) is listed in their tree without its bytes, so "
        "there is nothing exact to build it from"),
)

SUITE_NOTES: dict[str, tuple[str, ...]] = {
    "robustness/knowledge": (STAND_IN, OURS_PERTURBATIONS),
    "robustness/emotional-support": (OURS_PERTURBATIONS,),
    "fairness/demographics": (FAIRNESS_RUN,),
}


def suite_notes(suite_id: str) -> tuple[str, ...]:
    """The notes every output shows beside a suite's figures (none: nothing to say)."""
    return SUITE_NOTES.get(suite_id, ())


def paper_definitions(suite_id: str) -> tuple[PaperDefinition, ...]:
    """What the paper defines for the suite, run or not, with why (`suites show`, docs/benchmark.md)."""
    if suite_id.startswith("robustness/"):
        return PAPER_PERTURBATIONS
    if suite_id == "fairness/demographics":
        return PAPER_FAIRNESS
    return ()
