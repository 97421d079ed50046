"""`trustmh bench`: the bench pipeline of judge.suites.bench (via judge.api.bench) with its tables and lines."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from judge import api
from judge.bundled import bundled_path
from judge.calls.runner import print_plan_table
from judge.cli.batch_options import DEFAULT_POLL_S, BatchOption, BatchPollOption
from judge.cli.common import SplitCriticalOption, cache_option, public_command_line, say, say_not_a_model
from judge.cli.respond_cmd import TargetsFileOption, TargetsOption, print_respond_summary
from judge.cli.suites_cmd import print_primary_table, print_published_table
from judge.errors import ExitCode, UsageError
from judge.families import families_from_toml
from judge.items import DEFAULT_MAX_RESPONSE_CHARS
from judge.judges import check_samples, load_judges_file, resolve_judges
from judge.rundir import OutDirLock, make_private_dir, write_jsonl_atomic
from judge.settings import RunSettings
from judge.suites.bench import BenchResult
from judge.suites.conversation import CONVERSATIONS
from judge.suites.conversation_judging import (
    ITEMS,
    ConversationJudging,
    conversation_judge_plan,
    conversation_rubrics,
    judge_conversations,
)
from judge.suites.paper import DEFAULT_MAX_REASKS
from judge.suites.scorecard import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from judge.suites.vera_recorded import RECORDED_NAME as RECORDED_CONVERSATIONS

out_console = Console()
err_console = Console(stderr=True)


def bench(
    out: Annotated[Path, typer.Option("--out", help="The bench's out directory; re-running resumes it.")],
    suites: Annotated[
        str | None, typer.Option("--suites", help="Comma-separated suites (see `trustmh suites list`).")
    ] = None,
    targets: TargetsOption = None,
    targets_file: TargetsFileOption = None,
    judges: Annotated[
        str | None,
        typer.Option("--judges", help="Comma-separated PROVIDER:MODEL\\[@URL] or names from --judges-file."),
    ] = None,
    judges_file: Annotated[
        Path | None, typer.Option("--judges-file", help="judges.toml with per-judge settings.")
    ] = None,
    recorded: Annotated[
        str | None,
        typer.Option("--recorded", help="Import a published run instead (trustmh-bench), offline; vera-mh: judge "
                     "VERA-MH's 105 recorded conversations with --judges."),
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            help="Judge your own harness's answers (JSONL or CSV: prompt_id, target, response) to the prompts "
            "that `suites build` writes with the same --suites, --limit and --seed, instead of asking --targets.",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N prompts per suite (seeded).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the prompt sample and of the bootstrap.")] = DEFAULT_SEED,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per judge (use temperature > 0).")] = 1,
    split_critical: SplitCriticalOption = False,
    rubrics: Annotated[Path | None, typer.Option("--rubrics", help="Folder of rubric YAML files.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Cache folder (default: $TRUSTMH_CACHE_DIR).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Concurrent calls per target and judge.")
    ] = 8,
    max_response_chars: Annotated[
        int,
        typer.Option("--max-response-chars", min=1, help="Longer answers are judged on a copy cut to this length."),
    ] = DEFAULT_MAX_RESPONSE_CHARS,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of prompts.")
    ] = DEFAULT_BOOTSTRAP,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Price target and judge calls; send nothing.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars and no result table (a dry run shows its plan).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a different run already in --out.")] = False,
    batch: BatchOption = False,
    batch_poll: BatchPollOption = DEFAULT_POLL_S,
    protocol: Annotated[
        str, typer.Option("--protocol", help="paper: the authors' readers, judge prompts and decoding where "
                          "published; rubric: ours.")
    ] = "rubric",
    reparse: Annotated[
        bool, typer.Option("--reparse", help="With --recorded: read the raw answers with the protocol's readers.")
    ] = False,
    first: Annotated[
        int | None, typer.Option("--first", min=1, help="The first N prompts per suite, in the dataset's order.")
    ] = None,
    validity: Annotated[
        Path | None,
        typer.Option("--validity", help="The --out folder of a `trustmh validate` run: the report says whether "
                     "each judge was validated, and links its validity page."),
    ] = None,
    max_reasks: Annotated[
        int | None,
        typer.Option("--max-reasks", min=0, help="Under --protocol paper: ask an answer the authors' reader "
                     f"rejects again at most N times (default {DEFAULT_MAX_REASKS}; 0: ask once)."),
    ] = None,
    target_decoding: Annotated[
        bool, typer.Option("--target-decoding", help="Under --protocol paper, keep the targets' own temperature "
                           "and max_tokens instead of the authors' per-suite ones.")
    ] = False,
    user_model: Annotated[
        str | None,
        typer.Option("--user-model", help="conversation/* suites: the model that plays the person (a target spec)."),
    ] = None,
    turns: Annotated[
        int, typer.Option("--turns", min=1, max=30, help="conversation/* suites: turns per conversation.")
    ] = 10,
    user_prompt: Annotated[
        str,
        typer.Option("--user-prompt", help="conversation/* suites: the simulated user's prompt, trustmh or vera-mh."),
    ] = "trustmh",
) -> None:
    """Run TrustMH-Bench suites on chatbots: build prompts, the targets answer, the judges judge, metrics;
    with --recorded, score TrustMH-Bench's published outputs (6 models on privacy, 12 on ethics) offline.

    Example: trustmh bench --suites safety/jailbreak,ethics/reasoning --targets openai:gpt-4o-mini
    --judges openai:gpt-4.1 --out runs/bench1 --limit 50

    Example: trustmh bench --recorded trustmh-bench --out runs/published   (offline: the paper's own outputs)

    Example: trustmh bench --suites safety/jailbreak --limit 50 --answers answers.jsonl --judges openai:gpt-4.1
    --out runs/mine   (answers gathered by your own harness from `trustmh suites build`)

    Exit codes: 0 everything answered and judged, 3 some target or judge calls failed (they count as failures
    in the metrics), 2 bad input or usage (nothing sent), 1 internal error.
    """
    settings = RunSettings(
        cache_dir=cache_option(cache, no_cache),
        concurrency=concurrency,
        dry_run=dry_run,
        quiet=quiet,
        overwrite=overwrite,
        batch=batch,
        batch_poll_s=batch_poll,
        max_response_chars=max_response_chars,
        command_line=tuple(public_command_line()),
    )
    conversation_judges = ConversationJudges(judges, judges_file, rubrics, samples)
    if recorded == RECORDED_CONVERSATIONS:
        if suites or targets or targets_file or answers is not None:
            raise UsageError(f"--recorded {RECORDED_CONVERSATIONS} judges recorded conversations: give it --judges "
                             "and --out, not --suites, --targets or --answers", field="recorded")  # fmt: skip
        run_recorded_conversations(conversation_judges, out, settings)
        return
    if suites and any(s.strip().startswith("conversation/") for s in suites.split(",")):
        run_conversation_suites(
            suites, targets, targets_file, user_model, conversation_judges, turns, user_prompt, out, settings
        )
        return
    result = api.bench(
        suites=suites,
        targets=targets,
        judges=judges,
        out=out,
        targets_file=targets_file,
        judges_file=judges_file,
        recorded=recorded,
        limit=limit,
        seed=seed,
        samples=samples,
        rubrics=rubrics,
        bootstrap=bootstrap,
        split_critical=split_critical,
        answers=answers,
        settings=settings,
        protocol=protocol,
        reparse=reparse,
        first=first,
        paper_decoding=not target_decoding,
        validity=validity,
        max_reasks=max_reasks,
    )
    if result.target_plan is not None:
        print_bench_plan(result, settings)
        return
    print_bench_result(result, recorded, quiet)
    raise typer.Exit(result.exit_code)


def print_bench_plan(result: BenchResult, settings: RunSettings) -> None:
    """Target and judge calls priced apart (the dry run's output, so shown with --quiet too)."""
    title = "Dry run, targets: nothing was sent"
    print_plan_table(result.target_plan or [], "target", title, out_console, batch=settings.batch)
    if result.reask_plan:
        title = "Dry run, re-asks of the targets (paper protocol, at most: every answer rejected every time)"
        print_plan_table(result.reask_plan, "target", title, out_console, batch=settings.batch)
    if result.judge_plan is None and not result.paper_judge_plan:
        say(out_console, "Dry run, judges: none of the chosen suites is judged")
    if result.judge_plan is not None:
        title = "Dry run, judges (estimated)" if result.paper_judge_plan is None else \
            "Dry run, judges with our rubrics (estimated)"
        print_plan_table(result.judge_plan, "judge", title, out_console, batch=settings.batch)
    if result.paper_judge_plan:
        title = "Dry run, judges with the authors' prompts (paper protocol, estimated)"
        print_plan_table(result.paper_judge_plan, "judge", title, out_console, batch=settings.batch)
    say(
        out_console,
        f"{result.prompts} prompt(s). Judge calls are estimated on answers of about 400 tokens where the answer "
        "is not known yet; token figures are estimates.",
    )


def print_bench_result(result: BenchResult, recorded: str | None, quiet: bool) -> None:
    """Each stage's calls, the ranked table (not with --quiet) and the files written."""
    if result.respond_summary is not None:
        print_respond_summary(result.respond_summary, result.out / "respond")
    if result.reask_summary is not None:
        say_reasks(result)
    if result.score_summary is not None:
        calls = result.score_summary["calls"]
        say(
            err_console,
            f"{calls['planned']} judge calls: {calls['requested']} requested, {calls['cache_hits']} from cache, "
            f"{calls['failed']} failed → {result.out}/score/verdicts.jsonl",
        )
        say_not_a_model(err_console, result.score_summary)
    if not quiet and result.scorecard is not None:
        title = f"Recorded run {recorded}" if recorded else "Ranked metric per suite"
        print_primary_table(result.scorecard, out_console, title=title)
        if result.scorecard.get("published"):
            print_published_table(result.scorecard["published"], out_console)
    if recorded:
        names = ", ".join(path.name for path in result.files)
        say(out_console, f"wrote {result.out}/prompts.jsonl, respond/, score/, {names}")
    else:
        say(out_console, "wrote " + ", ".join(map(str, result.files)))


def say_reasks(result: BenchResult) -> None:
    """The paper protocol's re-ask rounds, and how many answers the authors' reader still rejects."""
    summary = result.reask_summary or {}
    rounds = summary.get("rounds", [])
    asked = sum(r["calls"].get("planned", 0) for r in rounds)
    paid = sum(r["calls"].get("requested", 0) for r in rounds)
    counts = (result.scorecard or {}).get("reasks", [])
    reasked = sum(c["reasked"] for c in counts)
    still = sum(c["unparsable"] for c in counts)
    say(err_console, f"re-asks (at most {summary.get('max_reasks')} per answer): {reasked} answer(s) asked again "
        f"in {len(rounds)} round(s), {asked} re-ask(s) ({paid} requested, the rest known); {still} still "
        f"unparsable → {result.out}/reask/")


@dataclass(frozen=True)
class ConversationJudges:
    """How conversations are judged: --judges (names or specs), --judges-file, --rubrics, --samples."""

    judges: str | None
    judges_file: Path | None
    rubrics: Path | None
    samples: int

    def judging(self, conversations: Path, out: Path, settings: RunSettings) -> ConversationJudging | None:
        """None without --judges; a bad judge or rubric folder is a usage error before anything runs."""
        if not self.judges:
            return None
        loaded = load_judges_file(self.judges_file) if self.judges_file else None
        specs = resolve_judges(self.judges, loaded)
        check_samples(specs, self.samples)
        families = families_from_toml(loaded.families) if loaded and loaded.families else None
        rubrics_dir = self.rubrics or bundled_path("rubrics")
        conversation_rubrics(rubrics_dir)
        return ConversationJudging(conversations=conversations, out=out, judges=specs, rubrics_dir=rubrics_dir,
                                   settings=settings, samples=self.samples, families=families)  # fmt: skip


def run_conversation_suites(
    suites: str,
    targets: str | None,
    targets_file: Path | None,
    user_model: str | None,
    judges: ConversationJudges,
    turns: int,
    user_prompt: str,
    out: Path,
    settings: RunSettings,
) -> None:
    """`--suites conversation/...`: the simulated user talks to each target (conversations.jsonl in OUT),
    then, with --judges, each whole conversation is judged (OUT/score/, OUT/scorecard.json)."""
    from judge.respond.targets import load_targets_file, resolve_targets
    from judge.suites.conversation import (
        ConversationOptions,
        conversation_dry_run,
        execute_conversations,
        suite_personas,
    )

    names = [s.strip() for s in suites.split(",") if s.strip()]
    if not all(n.startswith("conversation/") for n in names):
        raise UsageError(
            "conversation/* suites run on their own; run the other suites in another bench", field="suites"
        )
    if user_model is None:
        raise UsageError("conversation suites need --user-model, the model that plays the person", field="user_model")
    if settings.batch:
        raise UsageError("is not available for conversation suites yet; leave it out", field="batch")
    if user_prompt not in ("trustmh", "vera-mh"):
        raise UsageError(f"{user_prompt!r}: --user-prompt is trustmh or vera-mh", field="user_prompt")
    loaded = load_targets_file(targets_file) if targets_file else None
    options = ConversationOptions(
        personas=suite_personas(names),
        targets=resolve_targets(targets, loaded),
        user_model=resolve_targets(user_model, loaded)[0],
        out=out,
        turns=turns,
        user_prompt=user_prompt,  # type: ignore[arg-type]
        settings=settings,
    )
    judging = judges.judging(out / CONVERSATIONS, out, settings)
    if settings.dry_run:
        with tempfile.TemporaryDirectory() as scratch:
            stand_ins = Path(scratch) / CONVERSATIONS
            rows = conversation_dry_run(options, stand_ins)
            plan = None
            if judging is not None:
                judging = replace(judging, conversations=stand_ins)
                plan = conversation_judge_plan(judging, Path(scratch) / ITEMS, Path(scratch) / "score")
        print_conversation_plan(rows, plan, len(options.personas) * len(options.targets), turns, settings)
        return
    code, summary = execute_conversations(options)
    reasons = ", ".join(f"{k} {v}" for k, v in summary["stop_reasons"].items())
    say(err_console, f"{summary['conversations']} conversations ({reasons}) → {out}/conversations.jsonl")
    if judging is not None:
        judge_code, _, _ = judge_and_report(judging)
        code = ExitCode.FAILED_VERDICTS if ExitCode.FAILED_VERDICTS in (code, judge_code) else code
    raise typer.Exit(code)


def run_recorded_conversations(judges: ConversationJudges, out: Path, settings: RunSettings) -> None:
    """`--recorded vera-mh`: VERA-MH's recorded conversations into OUT/conversations.jsonl, each judged whole."""
    from judge.suites.vera_recorded import recorded_conversations

    judging = judges.judging(out / CONVERSATIONS, out, settings)
    if judging is None:
        raise UsageError(f"--recorded {RECORDED_CONVERSATIONS} judges the recorded conversations: give --judges",
                         field="judges")  # fmt: skip
    if settings.batch:
        raise UsageError("is not available for judging conversations yet; leave it out", field="batch")
    if settings.dry_run:
        with tempfile.TemporaryDirectory() as scratch:
            lines = Path(scratch) / CONVERSATIONS
            write_jsonl_atomic(lines, recorded_conversations())
            count = sum(1 for _ in lines.open(encoding="utf-8"))
            plan = conversation_judge_plan(replace(judging, conversations=lines), Path(scratch) / ITEMS,
                                           Path(scratch) / "score")  # fmt: skip
        print_conversation_plan(None, plan, count, None, settings)
        return
    make_private_dir(out)
    with OutDirLock(out):
        write_jsonl_atomic(out / CONVERSATIONS, recorded_conversations())
    code, _, _ = judge_and_report(judging)
    raise typer.Exit(code)


def judge_and_report(judging: ConversationJudging) -> tuple[ExitCode, dict[str, Any], dict[str, Any]]:
    """Judge every conversation whole and print, per target, the gate and VERA-MH's score."""
    code, summary, card = judge_conversations(judging)
    calls = summary["calls"]
    say(err_console, f"{calls['planned']} judge calls: {calls['requested']} requested, {calls['cache_hits']} from "
        f"cache, {calls['failed']} failed → {judging.out}/score/verdicts.jsonl")  # fmt: skip
    for target in card["targets"]:
        gate, vera = target["gate"], target["vera_mh"]
        score = "–" if vera["score"] is None else f"{vera['score']:.2f}"
        say(out_console, f"{target['target']}: {target['conversations']} conversations, {gate['failing']} fail the "
            f"gate, {gate['passing']} pass, {gate['undecided']} undecided; VERA-MH score (theirs) {score}")  # fmt: skip
    say(out_console, f"wrote {judging.out}/scorecard.json, {judging.out}/scorecard.md")
    return code, summary, card


def print_conversation_plan(
    speakers: list[dict[str, Any]] | None, judges: list[dict[str, Any]] | None, conversations: int,
    turns: int | None, settings: RunSettings,
) -> None:  # fmt: skip
    """The dry run of conversations: the simulated user's and the chatbots' calls, then the judges'."""
    if speakers is not None:
        print_plan_table(speakers, "target", "Dry run, simulated user and targets: nothing was sent", out_console,
                         batch=settings.batch)  # fmt: skip
    if judges is None:
        say(out_console, "Dry run, judges: none (give --judges to price judging each conversation)")
    else:
        print_plan_table(judges, "judge", "Dry run, judges (estimated)", out_console, batch=settings.batch)
    shape = f" × up to {turns} turns (2 calls a turn)" if turns is not None else ""
    say(out_console, f"{conversations} conversation(s){shape}. Answers not known yet are priced at their estimated "
        "length, and every conversation at its full length; token figures are estimates.")  # fmt: skip
