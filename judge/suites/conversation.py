"""Conversations: a simulated user (a model playing a persona card) talks to the chatbot for many turns.

Every turn is two calls of the one engine, the simulated user's and the chatbot's, each a target call
keyed by the conversation so far (`target_request_key`: the speaker's model and system prompt, every
message before it), journalled in `calls.jsonl` and cached. A run killed at any moment and started
again rebuilds each conversation from its journal turn by turn and asks only what had no answer yet.
Conversations run concurrently (at most `concurrency` at a time, so memory holds only the transcripts
in flight); the turns of one conversation run in order. `conversations.jsonl` is written at the end, one
line per conversation, streamed from the journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judge.calls import runner
from judge.calls.engine import CallList, CallResult, Engine, Journal, Ledger, journal_rows, known_results, read_journal
from judge.errors import ExitCode, UsageError
from judge.hashing import sha256_of
from judge.items import Message, Prompt
from judge.respond.calls import TargetCalls
from judge.respond.pipeline import TARGET_WORKER, TargetTally
from judge.respond.plan import TargetCall, target_request_key
from judge.respond.targets import TargetSpec
from judge.rundir import OutDirLock, make_private_dir, write_json_atomic, write_jsonl_atomic, write_text_atomic
from judge.settings import RunSettings
from judge.suites.personas import PersonaCard, UserPrompt, is_stop, user_system_prompt

DEFAULT_TURNS = 10
MAX_TURNS = 30
JOURNAL = "calls.jsonl"
CONVERSATIONS = "conversations.jsonl"
OUTPUTS = (JOURNAL, CONVERSATIONS, "summary.json")
OPEN = "(The conversation starts now. Write your first message to the chatbot.)"
"""The simulated user's first request: chat APIs need a user message before the first answer."""
KIND = TargetCalls()


@dataclass(kw_only=True)
class ConversationOptions:
    personas: Sequence[PersonaCard]
    targets: Sequence[TargetSpec]
    user_model: TargetSpec
    out: Path
    turns: int = DEFAULT_TURNS
    user_prompt: UserPrompt = "trustmh"
    settings: RunSettings = field(default_factory=RunSettings)


@dataclass(frozen=True)
class Conversation:
    """One persona talking to one target: its id, its place in the plan, the two speakers' specs."""

    index: int
    card: PersonaCard
    target: TargetSpec
    user: TargetSpec  # the user model with the persona's prompt as its system prompt

    @property
    def id(self) -> str:
        return f"{self.card.id}@{self.target.name}"


def check_options(options: ConversationOptions) -> None:
    if not 1 <= options.turns <= MAX_TURNS:
        raise UsageError(f"{options.turns}: turns must be between 1 and {MAX_TURNS}", field="turns")
    if not options.personas:
        raise UsageError("no persona cards to play", field="suites")
    user_name = user_worker_name(options.user_model)
    if any(t.name == user_name for t in options.targets):
        raise UsageError(f"target name {user_name!r} is reserved for the simulated user", field="targets")


def user_worker_name(spec: TargetSpec) -> str:
    return f"user:{spec.name}"


def plan_conversations(options: ConversationOptions) -> list[Conversation]:
    """Every persona × target, persona order first; the user spec carries the persona's prompt."""
    user = replace(options.user_model, name=user_worker_name(options.user_model), system_prompt=None)
    return [
        Conversation(index, card, target, replace(user, system_prompt=user_system_prompt(card, options.user_prompt)))
        for index, (card, target) in enumerate((c, t) for c in options.personas for t in options.targets)
    ]


def speaker_messages(turns: Sequence[tuple[str, str]], speaker: str) -> list[dict[str, str]]:
    """The conversation so far as `speaker` sees it. The chatbot sees the person as `user`; the simulated
    user sees the chatbot as `user` and its own messages as `assistant`, after the opening cue."""
    if speaker == "assistant":
        return [{"role": role, "content": text} for role, text in turns]
    flipped = [{"role": "assistant" if role == "user" else "user", "content": text} for role, text in turns]
    return [{"role": "user", "content": OPEN}, *flipped]


def turn_call(conversation: Conversation, step: int, turns: Sequence[tuple[str, str]]) -> TargetCall:
    """The call of `step` (0-based: even steps the simulated user, odd ones the chatbot), keyed by the
    speaker's decoding parameters and system prompt and the whole conversation before it."""
    speaker = "user" if step % 2 == 0 else "assistant"
    spec = conversation.user if speaker == "user" else conversation.target
    messages = speaker_messages(turns, speaker)
    call_id = f"{conversation.id}#{step}"
    prompt = Prompt(
        id=call_id,
        messages=tuple(Message(**m) for m in messages),
        meta={"conversation": conversation.id, "step": step, "speaker": speaker},
    )
    key = target_request_key(spec.decoding_params(), messages, [], 0)
    return TargetCall(prompt=prompt, target=spec, sample=0, response_id=call_id, request_key=key)


def run_identity(options: ConversationOptions, conversations: Sequence[Conversation]) -> str:
    return sha256_of(
        {
            "conversations": [
                [c.id, c.card.content_hash, c.target.decoding_params(), c.user.decoding_params()] for c in conversations
            ],
            "turns": options.turns,
            "user_prompt": options.user_prompt,
        }
    )


# ---------------------------------------------------------------- the run


@dataclass
class Transcript:
    """What a finished conversation leaves in memory until its line is written: nothing but its end."""

    steps: int = 0
    stop_reason: str = "max_turns"


async def _converse(
    engine: Engine, conversation: Conversation, turns_max: int, ledger: Ledger, resumed: Any, cache: Any
) -> Transcript:
    turns: list[tuple[str, str]] = []
    base = conversation.index * 2 * turns_max
    for step in range(2 * turns_max):
        turn = step // 2 + 1
        if step == 0 and conversation.card.opening:
            turns.append(("user", conversation.card.opening))  # the card fixes the first message: no call
            continue
        call = turn_call(conversation, step, turns)
        known = known_results(CallList([call]), resumed, cache, KIND)[0]
        result: CallResult = await engine.run_one(call, base + step, ledger, known)
        if not result.ok:
            return Transcript(step + 1, "failed")
        text = result.payload["turns"][-1]
        speaker = call.prompt.meta["speaker"]
        turns.append((speaker, text))
        if speaker == "user" and is_stop(text, turn):
            return Transcript(step + 1, "stop_phrase")
    return Transcript(2 * turns_max, "max_turns")


def execute_conversations(options: ConversationOptions) -> tuple[ExitCode, dict[str, Any]]:
    """Run (or resume) every conversation into `options.out`; returns (exit code, summary)."""
    check_options(options)
    settings = options.settings
    conversations = plan_conversations(options)
    identity = run_identity(options, conversations)
    specs = {c.target.name: c.target for c in conversations} | {conversations[0].user.name: conversations[0].user}
    # Built before the run's clock starts, as `trustmh respond` and `score` build theirs while preparing:
    # importing the SDKs is start-up, and a missing key stops the run before its out directory is made.
    workers = runner.make_workers(list(specs.values()), settings.concurrency, *TARGET_WORKER)
    out = options.out
    make_private_dir(out)
    started_at, started = datetime.now(UTC), time.monotonic()
    with OutDirLock(out):
        runner.check_reuse(out, identity, OUTPUTS, settings.overwrite)
        write_json_atomic(out / "run.json", _run_record(options, identity, started_at, ended=False))
        cache = settings.open_cache()
        resumed = read_journal(out / JOURNAL, KIND)
        ledger = Ledger(len(conversations) * 2 * options.turns)
        progress = runner.RunProgress("conversing", 0, settings.quiet)
        tally = TargetTally(list(specs.values()))
        ends: dict[int, Transcript] = {}

        def on_result(result: CallResult) -> None:
            tally.add(result)
            progress.grow(1)
            progress.update(result)

        async def body(files: runner.CallRunFiles) -> None:
            engine = Engine(dict(workers), cache, files.journal, KIND, on_result)
            pending = iter(conversations)

            async def drain() -> None:
                for conversation in pending:
                    ends[conversation.index] = await _converse(
                        engine, conversation, options.turns, ledger, resumed, cache
                    )

            try:
                await asyncio.gather(*(drain() for _ in range(min(settings.concurrency, len(conversations)))))
            finally:
                await engine.close()

        try:
            with Journal(out / JOURNAL) as journal:
                runner.run_calls(out, journal, progress, workers, body)
                write_text_atomic(out / JOURNAL, _spans_in_order(journal, ledger))
                write_jsonl_atomic(
                    out / CONVERSATIONS, _conversation_lines(conversations, ends, journal, ledger, options)
                )
        finally:
            resumed.close()
            if cache is not None:
                cache.close()
        failed = sum(t.stop_reason == "failed" for t in ends.values())
        summary = {
            "conversations": len(conversations),
            "turns_max": options.turns,
            "stop_reasons": {
                r: sum(t.stop_reason == r for t in ends.values()) for r in ("max_turns", "stop_phrase", "failed")
            },
            "calls": tally.counts,
            "failures_by_reason": tally.failures_by_reason(),
            "wall_time_s": round(time.monotonic() - started, 3),
        }
        write_json_atomic(out / "summary.json", summary)
        write_json_atomic(out / "run.json", _run_record(options, identity, started_at, ended=True))
    return (ExitCode.FAILED_VERDICTS if failed else ExitCode.OK), summary


def _spans_in_order(journal: Journal, ledger: Ledger) -> Iterator[str]:
    """The final journal in plan order (conversation, then step); steps after a conversation ended have
    no lines."""
    for index in range(len(ledger)):
        if (span := ledger.span(index)) is not None:
            yield journal.read(span).decode("utf-8")


def _conversation_lines(
    conversations: Sequence[Conversation],
    ends: dict[int, Transcript],
    journal: Journal,
    ledger: Ledger,
    options: ConversationOptions,
) -> Iterator[dict[str, Any]]:
    """conversations.jsonl: one line per conversation, its turns read back from the journal."""
    per = 2 * options.turns
    for conversation in conversations:
        turns: list[dict[str, Any]] = []
        for step in range(per):
            if step == 0 and conversation.card.opening:
                turns.append({"turn": 1, "role": "user", "text": conversation.card.opening})
                continue
            span = ledger.span(conversation.index * per + step)
            if span is None:
                continue
            (row,) = journal_rows(journal.read(span))
            if row["status"] == "ok":
                role = "user" if step % 2 == 0 else "assistant"
                turns.append({"turn": step // 2 + 1, "role": role, "text": row["response"]})
        yield {
            "id": conversation.id,
            "persona": conversation.card.id,
            "persona_hash": conversation.card.content_hash,
            "risk_level": conversation.card.risk_level,
            "risk_category": conversation.card.risk_category,
            "target": conversation.target.name,
            "user_model": options.user_model.name,
            "user_prompt": options.user_prompt,
            "turns": turns,
            "stop_reason": ends[conversation.index].stop_reason,
        }


def _run_record(options: ConversationOptions, identity: str, started_at: datetime, *, ended: bool) -> dict[str, Any]:
    return {
        **runner.common_record(list(options.settings.command_line), started_at, ended),
        "identity": identity,
        "personas": [c.id for c in options.personas],
        "targets": [t.public_dict() for t in options.targets],
        "user_model": options.user_model.public_dict(),
        "turns": options.turns,
        "user_prompt": options.user_prompt,
        "concurrency": options.settings.concurrency,
    }


# ---------------------------------------------------------------- the suites

CONVERSATION_SUITES = ("conversation/trustmh", "conversation/vera-mh")


def is_conversation_suite(suite: str) -> bool:
    return suite.startswith("conversation/")


def suite_personas(suites: Sequence[str]) -> list[PersonaCard]:
    """The persona cards of the chosen conversation suites, in suite order."""
    from judge.suites.personas import our_personas, vera_personas

    unknown = [s for s in suites if s not in CONVERSATION_SUITES]
    if unknown:
        raise UsageError(
            f"unknown conversation suite(s) {', '.join(unknown)}; available: {', '.join(CONVERSATION_SUITES)}",
            field="suites",
        )
    readers = {"conversation/trustmh": our_personas, "conversation/vera-mh": vera_personas}
    return [card for suite in dict.fromkeys(suites) for card in readers[suite]()]


# ---------------------------------------------------------------- the dry run

SPEAKER_ROWS = ("calls", "cached", "resumed", "to_ask", "in", "out")


def conversation_dry_run(options: ConversationOptions, stand_ins: Path) -> list[dict[str, Any]]:
    """The price of running every conversation to `turns` turns (2 calls a turn, the simulated user's and
    the chatbot's; a persona's fixed opening costs none), per speaker; nothing is sent or written under
    OUT. Calls already answered (this OUT's journal, the cache) are replayed and cost nothing; the rest
    are priced on stand-in answers of the estimated length, and a stop phrase that ends a conversation
    early is not foreseen (an upper bound). The transcripts the judges would read, answered or stand-in,
    go to `stand_ins` (conversations.jsonl lines), so the judging can be priced on them."""
    from judge.calls.engine import RESUMED

    check_options(options)
    conversations = plan_conversations(options)
    cache = options.settings.open_cache()
    resumed = read_journal(options.out / JOURNAL, KIND)
    speakers = {c.target.name: c.target for c in conversations} | {conversations[0].user.name: conversations[0].user}
    tally = {name: dict.fromkeys(SPEAKER_ROWS, 0) for name in speakers}

    def transcripts() -> Iterator[dict[str, Any]]:
        for conversation in conversations:
            turns: list[tuple[str, str]] = []
            for step in range(2 * options.turns):
                if step == 0 and conversation.card.opening:
                    turns.append(("user", conversation.card.opening))
                    continue
                call = turn_call(conversation, step, turns)
                known = known_results(CallList([call]), resumed, cache, KIND)
                counts = tally[call.target.name]
                counts["calls"] += 1
                result = known[0]
                if result is not None and result.ok:
                    counts["resumed" if known.status[0] == RESUMED else "cached"] += 1
                    text = result.payload["turns"][-1]
                else:
                    tokens_in, tokens_out = call.estimated_usage()
                    counts["to_ask"] += 1
                    counts["in"] += tokens_in
                    counts["out"] += tokens_out
                    text = "x" * (4 * call.answer_tokens())
                turns.append((call.prompt.meta["speaker"], text))
            yield {
                "id": conversation.id, "persona": conversation.card.id, "risk_level": conversation.card.risk_level,
                "target": conversation.target.name,
                "turns": [{"turn": i // 2 + 1, "role": role, "text": text} for i, (role, text) in enumerate(turns)],
            }  # fmt: skip

    try:
        write_jsonl_atomic(stand_ins, transcripts())
    finally:
        resumed.close()
        if cache is not None:
            cache.close()
    return [
        {
            "target": name,
            **{k: tally[name][k] for k in ("calls", "cached", "resumed", "to_ask")},
            "est_input_tokens": tally[name]["in"],
            "est_output_tokens": tally[name]["out"],
            "est_cost_usd": spec.cost_usd(tally[name]["in"], tally[name]["out"]),
        }
        for name, spec in speakers.items()
    ]
