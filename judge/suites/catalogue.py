"""Every TrustMH-Bench sub-task in one table: which suite builds it, from which data, with which metrics,
and whether it can be built today (available / not built yet / unavailable, with the reason).

The paper's rank table has 19 sub-tasks (`SUBTASKS`). A suite fills one or more of them; a few suites
are extra (e.g. `safety/direct-harm`, the harmful intents without a jailbreak wrapper).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from judge.errors import DatasetError, UsageError
from judge.suites import crisis, ethics, fairness, paper, privacy, reliability, robustness, safety, sycophancy
from judge.suites.prompt_records import sample_prompts
from judge.suites.spec import Builder, JudgedRule, MetricSpec, Reader, Sampler

Status = Literal["available", "not built yet", "unavailable"]

PILLARS = ("reliability", "crisis", "safety", "fairness", "privacy", "robustness", "sycophancy", "ethics")

SUBTASKS: tuple[tuple[str, str], ...] = (
    ("reliability", "knowledge"),
    ("reliability", "emotion recognition"),
    ("reliability", "psychological diagnosis"),
    ("reliability", "emotional support"),
    ("reliability", "psychological intervention"),
    ("crisis", "identification"),
    ("crisis", "severity identification"),
    ("crisis", "escalation decision"),
    ("safety", "jailbreak resistance"),
    ("safety", "antitoxic"),
    ("fairness", "overall, over race, gender, age, religion, sexual orientation, disability and first language"),
    ("privacy", "awareness"),
    ("privacy", "leakage"),
    ("robustness", "emotional support"),
    ("robustness", "psychological diagnosis"),
    ("sycophancy", "OEQ"),
    ("sycophancy", "AITA-YTA"),
    ("sycophancy", "PAS"),
    ("ethics", "ethical reasoning"),
)
"""The rows of the paper's rank table, in its order."""


@dataclass(frozen=True, kw_only=True)
class Suite:
    id: str
    pillar: str
    subtasks: tuple[str, ...]
    dataset: str
    n_prompts: int | None
    metrics: tuple[MetricSpec, ...]
    judge: bool
    status: Status
    reason: str | None = None
    build: Builder | None = None
    read: Reader | None = None
    judged: tuple[JudgedRule, ...] = ()
    judged_when: Callable[[Mapping[str, Any]], bool] | None = None
    target_sees: str = ""
    sources: tuple[str, ...] = ()  # registered datasets (data/registry.toml) the builder reads
    rubrics: tuple[str, ...] = ()  # the rubrics its prompts are judged with, when not the pillar's own
    sample: Sampler | None = None  # how --limit draws, when a plain seeded draw would break the design

    @property
    def status_text(self) -> str:
        """The status with its reason, as `trustmh suites list` shows it."""
        return f"{self.status}: {self.reason}" if self.reason else self.status

    @property
    def primary(self) -> MetricSpec:
        """The metric the rank table ranks by (the first one, at suite level)."""
        return self.metrics[0]

    @property
    def judged_by(self) -> tuple[str, ...]:
        """The rubric names (prompt pillars) whose verdicts feed this suite's judged metrics."""
        return self.rubrics or (self.pillar,)

    def metric(self, name: str) -> MetricSpec:
        return next(m for m in self.metrics if m.name == name)

    def is_judged(self, meta: Mapping[str, Any]) -> bool:
        return bool(self.judged) and (self.judged_when is None or self.judged_when(meta))


_JUDGED_QUALITY = MetricSpec(name="mean_score", kind="mean", higher_is_better=True, source="judge",
                             description="mean judged score per criterion")
_ACCURACY = MetricSpec(name="accuracy", kind="mean", higher_is_better=True, source="deterministic",
                       description="share of answers whose parsed choice is the gold one")

_SUITES: tuple[Suite, ...] = (
    Suite(id="reliability/knowledge", pillar="reliability", subtasks=("knowledge",), dataset="psy-eval USMLE-Mental",
          n_prompts=727, metrics=(reliability.KNOWLEDGE_ACCURACY,), judge=False, status="available",
          build=reliability.knowledge_prompts, read=reliability.read_knowledge, sources=("psy-eval",),
          target_sees="the question, its lettered options (A to as far as J) and a request to begin with the letter"),
    Suite(id="reliability/emotion-recognition", pillar="reliability", subtasks=("emotion recognition",),
          dataset="EmoBench EU (English)", n_prompts=200,
          metrics=(reliability.EMOTION_ACCURACY, reliability.CAUSE_ACCURACY), judge=False, status="available",
          build=reliability.build_emotion_recognition, read=reliability.read_emotion, sources=("emobench",),
          target_sees="the scenario, the lettered emotion choices and cause choices, asking for both letters"),
    Suite(id="reliability/diagnosis", pillar="reliability", subtasks=("psychological diagnosis",), dataset="D4, SWMH",
          n_prompts=None, metrics=(_ACCURACY,), judge=False, status="unavailable",
          reason=("D4 (https://x-lance.github.io/D4/) and SWMH (https://huggingface.co/datasets/AIMH/SWMH) are "
                  "published elsewhere, not in the dataset mirror")),
    Suite(id="reliability/emotional-support", pillar="reliability", subtasks=("emotional support",),
          dataset="ESConv test split", n_prompts=209, metrics=reliability.SUPPORT_METRICS, judge=True,
          status="available", build=reliability.emotional_support_prompts, judged=reliability.support_rules(),
          rubrics=(reliability.SUPPORT_RUBRIC,), sources=("esconv",),
          target_sees="an ESConv conversation up to a help-seeker turn (seeker = user, supporter = assistant)"),
    Suite(id="reliability/intervention", pillar="reliability", subtasks=("psychological intervention",),
          dataset="CPsyCounE", n_prompts=45, metrics=reliability.SUPPORT_METRICS, judge=True, status="available",
          build=reliability.build_intervention, judged=reliability.support_rules(),
          rubrics=(reliability.SUPPORT_RUBRIC,), sources=("cpsycoun",),
          target_sees="a Chinese counselling conversation up to a client turn (client = user, counsellor = assistant)"),
    Suite(id="crisis/identification", pillar="crisis", subtasks=("identification",),
          dataset="LLMs-Mental-Health-Crisis (validation)", n_prompts=190, metrics=(crisis.ACCURACY, crisis.KAPPA),
          judge=False, status="available", build=crisis.build_identification, read=crisis.read_identification,
          target_sees="the authors' labelling prompt: the seven category definitions and the post as JSON",
          sources=("llms-mental-health-crisis",)),
    Suite(id="crisis/identification-test", pillar="crisis", subtasks=(),
          dataset="LLMs-Mental-Health-Crisis (test, gpt-4o-mini labels)", n_prompts=2044,
          metrics=(crisis.ACCURACY, crisis.KAPPA), judge=False, status="available",
          build=crisis.build_identification_test, read=crisis.read_identification,
          target_sees="as crisis/identification, on the 2,046 test posts (reference: the authors' LLM labels)",
          sources=("llms-mental-health-crisis",)),
    Suite(id="crisis/severity", pillar="crisis", subtasks=("severity identification",), dataset="C-SSRS",
          n_prompts=None, metrics=(_ACCURACY,), judge=False, status="unavailable",
          reason="the C-SSRS data is published on Zenodo (record 2667859, https://zenodo.org/records/2667859), "
                 "not in the dataset mirror"),
    Suite(id="crisis/escalation", pillar="crisis", subtasks=("escalation decision",),
          dataset="LLMs-Mental-Health-Crisis (validation)", n_prompts=206,
          metrics=(crisis.OVERALL, crisis.CRITICAL_FAILURE), judge=True, status="available",
          build=crisis.build_escalation, judged=(crisis.overall_rule(), crisis.critical_failure_rule()),
          target_sees="the person's post (its turns joined by newlines) as one user turn",
          sources=("llms-mental-health-crisis",)),
    Suite(id="safety/jailbreak", pillar="safety", subtasks=("jailbreak resistance",),
          dataset="TrustMH-Bench JailbreakMH", n_prompts=560, metrics=(safety.REFUSAL_RATE,), judge=True,
          status="available", build=safety.build_jailbreak, judged=(safety.refusal_rule(groups=("method",)),),
          target_sees="the jailbreak prompt as one user turn", sources=("trustmh-bench",)),
    Suite(id="safety/direct-harm", pillar="safety", subtasks=(), dataset="TrustMH-Bench PsyHarm", n_prompts=70,
          metrics=(safety.REFUSAL_RATE,), judge=True, status="available", build=safety.build_direct_harm,
          judged=(safety.refusal_rule(),),
          target_sees="the harmful intent as one user turn, without a jailbreak wrapper", sources=("trustmh-bench",)),
    Suite(id="safety/antitoxic", pillar="safety", subtasks=("antitoxic",), dataset="TrustMH-Bench antitoxic set",
          n_prompts=None, metrics=(safety.REFUSAL_RATE,), judge=True, status="unavailable",
          reason="the authors' README names no antitoxic dataset and no file of the dataset mirror holds one; "
                 "their safety bundle (authors-safety) is listed in their repository's tree, not in the mirror"),
    Suite(
        id="fairness/demographics", pillar="fairness", subtasks=(
            "overall, over race, gender, age, religion, sexual orientation, disability and first language",),
        dataset="TrustMH-Bench ESConv_fair × demographic personas", n_prompts=308, metrics=fairness.METRICS, judge=True,
        status="available", build=fairness.build_demographics, judged=fairness.judged_rules(),
        sample=fairness.balanced_sample, rubrics=(reliability.SUPPORT_RUBRIC, "fairness"), sources=("trustmh-bench",),
        target_sees="an ESConv_fair conversation up to a help-seeker turn, one seeker turn opening with the "
                    "persona's statement (e.g. \"For context, I'm Muslim.\")",
    ),
    Suite(id="privacy/awareness-tier1", pillar="privacy", subtasks=("awareness",), dataset="ConfAIde tier 1",
          n_prompts=10, metrics=(privacy.PEARSON_R,), judge=False, status="available",
          build=partial(privacy.build_awareness, "1"), read=privacy.read_rating,
          target_sees="the ConfAIde sensitivity question for one information type", sources=("confaide",)),
    Suite(id="privacy/awareness-tier2a", pillar="privacy", subtasks=("awareness",), dataset="ConfAIde tier 2a",
          n_prompts=98, metrics=(privacy.PEARSON_R,), judge=False, status="available",
          build=partial(privacy.build_awareness, "2a"), read=privacy.read_rating,
          target_sees="the ConfAIde acceptability question for one information flow", sources=("confaide",)),
    Suite(id="privacy/awareness-tier2b", pillar="privacy", subtasks=("awareness",), dataset="ConfAIde tier 2b",
          n_prompts=98, metrics=(privacy.PEARSON_R,), judge=False, status="available",
          build=partial(privacy.build_awareness, "2b"), read=privacy.read_rating,
          target_sees="the same flows as tier 2a, told as short stories", sources=("confaide",)),
    Suite(
        id="privacy/leakage", pillar="privacy", subtasks=("leakage",),
        dataset="TrustMH-Bench PsyLeak (+ control questions)", n_prompts=400,
        metrics=(privacy.LEAK_STRING_MATCH, privacy.LIST_ERROR, privacy.NO_Y, privacy.HAS_Z, privacy.JUDGED_LEAK_RATE,
                 paper.PROXY_LEAK_RATE),
        judge=True, status="available", build=privacy.build_leakage, read=privacy.read_leakage,
        judged=(privacy.judged_leak_rule(), paper.proxy_leak_rule()), judged_when=privacy.judged_free_response,
        target_sees="a counselling scenario and one of four questions about it", sources=("trustmh-bench",),
    ),
    Suite(
        id="robustness/emotional-support", pillar="robustness", subtasks=("emotional support",),
        dataset="ESConv test split, clean and perturbed at three levels", n_prompts=209 * 4,
        metrics=(robustness.DELTA_SUPPORT_SCORE,), judge=True, status="available",
        build=robustness.build_emotional_support, judged=(robustness.support_delta_rule(),),
        rubrics=(reliability.SUPPORT_RUBRIC,), sources=("esconv",), sample=robustness.sample_whole_groups,
        target_sees="an ESConv conversation up to a help-seeker turn, that last turn clean or perturbed "
                    "(character, word or sentence level)",
    ),
    Suite(
        id="robustness/knowledge", pillar="robustness", subtasks=("psychological diagnosis",),
        dataset="USMLE-Mental, clean and perturbed at three levels (a stand-in for the paper's diagnosis data, D4 and "
                "SWMH, which is not in the dataset mirror)",
        n_prompts=727 * 4, metrics=(robustness.DELTA_ACCURACY,), judge=False, status="available",
        build=robustness.build_knowledge, read=robustness.read_knowledge, sources=("psy-eval",),
        sample=robustness.sample_whole_groups,
        target_sees="the reliability/knowledge prompt, its question stem clean or perturbed (character, word or "
                    "sentence level); options and answer instruction verbatim",
    ),
    Suite(id="sycophancy/push-back", pillar="sycophancy", subtasks=(), dataset="USMLE-Mental, Crisis_Response_QA",
          n_prompts=880, metrics=(sycophancy.FLIP_RATE, sycophancy.HOLD_RATE, sycophancy.FIRST_ACCURACY), judge=False,
          status="available", build=sycophancy.build_push_back, read=sycophancy.read_push_back,
          target_sees="a multiple-choice question, then a follow-up insisting on a named wrong option",
          sources=("psy-eval",)),
    Suite(id="sycophancy/social", pillar="sycophancy", subtasks=("OEQ", "AITA-YTA"),
          dataset="ELEPHANT OEQ and AITA samples", n_prompts=20,
          metrics=(sycophancy.SYCOPHANCY_RATE, *(m for m, _ in sycophancy.RATE_CRITERIA)), judge=True,
          status="available", build=sycophancy.build_social, judged=sycophancy.social_rules(),
          target_sees="the advice question or the AITA post as one user turn", sources=("elephant",)),
    Suite(id="sycophancy/pas", pillar="sycophancy", subtasks=("PAS",), dataset="PAS", n_prompts=None,
          metrics=(MetricSpec(name="sycophancy_rate", kind="mean", higher_is_better=False, source="judge",
                              description="judged sycophancy rate"),), judge=True,
          status="unavailable",
          reason="the PAS data is published on OSF (https://osf.io/smvw7/?view), not in the dataset mirror"),
    Suite(id="ethics/reasoning", pillar="ethics", subtasks=("ethical reasoning",), dataset="TrustMH-Bench EthicMH",
          n_prompts=125, metrics=(ethics.ACCURACY, ethics.MEAN_SCORE, paper.ARTICLE_AS_A), judge=True,
          status="available",
          build=ethics.build_reasoning, read=ethics.read_choice, judged=(ethics.principle_means_rule(),),
          target_sees="the dilemma, its four options and the task, asking for a JSON choice and reasoning",
          sources=("trustmh-bench",)),
)

SUITES: dict[str, Suite] = {s.id: s for s in _SUITES}


class UnknownSuiteError(UsageError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class UnavailableSuiteError(UsageError, ValueError):
    pass


def get_suite(suite_id: str) -> Suite:
    if suite_id not in SUITES:
        raise UnknownSuiteError(f"unknown suite {suite_id!r}; known suites: {', '.join(SUITES)}")
    return SUITES[suite_id]


def build_prompts(names: list[str], limit: int | None, seed: int, field: str = "suites",
                  first: int | None = None) -> list[dict[str, Any]]:
    """Every named suite's prompts, in order; any unknown or unbuildable name fails before anything is built.

    `field` names the argument the names came from in the errors (the command line's SUITE... is "SUITE").
    `first`: the first N prompts of each suite in the dataset's order (the paper's selection for some of
    its models), instead of `limit`'s seeded sample."""
    if first is not None and limit is not None:
        raise UsageError("--first N and --limit N both choose prompts: give one of them", field="first")
    if first is not None and first < 1:
        raise UsageError(f"--first {first}: must be at least 1", field="first")
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise UsageError(f"unknown suite(s) {', '.join(map(repr, unknown))}; known: {', '.join(SUITES)}", field=field)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{', '.join(duplicates)} named twice", field=field)
    blocked = [SUITES[n] for n in names if SUITES[n].build is None]
    if blocked:
        raise UsageError("; ".join(f"{s.id} cannot be built ({s.status_text})" for s in blocked), field=field)
    prompts: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        try:
            prompts += build_suite(name, limit, seed) if first is None else build_suite(name)[:first]
        except (DatasetError, ValueError) as exc:
            raise UsageError(f"suite {name}: {exc}") from exc
    return prompts


def build_suite(suite_id: str, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The suite's prompts (all, or a seeded sample of `limit`); a suite that cannot be built says why."""
    suite = get_suite(suite_id)
    if suite.build is None:
        why = suite.reason or "its builder is not written yet"
        raise UnavailableSuiteError(f"suite {suite_id} is {suite.status}: {why}")
    return (suite.sample or sample_prompts)(suite.build(), limit, seed, suite_id)
