"""Turn prompts and targets into target calls, each with its content-derived key. Pure: no I/O.

The order of the plan (prompt order, then target, then sample) is the order of `calls.jsonl` and
`responses.jsonl`, so a resumed or concurrent run writes the same files as a sequential one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from judge.calls.cache import KEY_VERSION
from judge.calls.engine import BuiltOnAccess
from judge.hashing import sha256_of
from judge.items import Prompt
from judge.respond.targets import TargetSpec

ESTIMATED_ANSWER_TOKENS = 400  # a chat answer is rarely longer; capped by the target's max_tokens


def target_request_key(
    decoding_params: dict[str, Any], messages: list[dict[str, str]], followups: list[str], sample: int,
    attempt: int = 0,
) -> str:
    """A target call's key: the chatbot, its decoding parameters and system prompt, the conversation,
    its scripted follow-up turns and the sample index. Target answers share the store with verdicts.

    `attempt` > 0 is a re-ask of the same question (the paper protocol asks again when the authors' reader
    rejects an answer): its own key, so the cache does not hand back the rejected answer and a resumed
    run does not pay twice. Attempt 0 leaves it out, so the keys of first asks never change."""
    return sha256_of(
        {
            "v": KEY_VERSION,
            "kind": "target",
            "params": decoding_params,
            "messages": messages,
            "followups": followups,
            "sample": sample,
            **({"attempt": attempt} if attempt > 0 else {}),
        }
    )


@dataclass(frozen=True)
class TargetCall:
    prompt: Prompt
    target: TargetSpec
    sample: int
    response_id: str
    request_key: str

    @property
    def call_id(self) -> tuple[str, str, int]:
        return (self.prompt.id, self.target.name, self.sample)

    @property
    def worker_name(self) -> str:
        return self.target.name

    @property
    def spec(self) -> TargetSpec:
        return self.target

    @property
    def system_prompt(self) -> str | None:
        return self.target.system_prompt

    def estimate_tokens(self, conversation: Sequence[dict[str, str]]) -> int:
        """Input and output tokens of the next request (4 characters a token); for TPM limits."""
        chars = sum(len(m["content"]) for m in conversation) + len(self.system_prompt or "")
        return chars // 4 + 1 + self.answer_tokens()

    def answer_tokens(self) -> int:
        return min(self.target.max_tokens, ESTIMATED_ANSWER_TOKENS)

    def estimated_usage(self) -> tuple[int, int]:
        """(input, output) tokens of the whole call, every turn included; for dry runs."""
        turns = 1 + len(self.prompt.followups)
        base = sum(len(m.content) for m in self.prompt.messages) + len(self.system_prompt or "")
        inputs = 0
        for turn in range(turns):
            earlier = sum(len(f) for f in self.prompt.followups[:turn]) + 4 * self.answer_tokens() * turn
            inputs += (base + earlier) // 4 + 1
        return inputs, self.answer_tokens() * turns


DECODING_FIELDS = ("temperature", "max_tokens")


def prompt_decoded(target: TargetSpec, prompt: Prompt) -> TargetSpec:
    """The target with the decoding a prompt asks for (`meta.decoding`: temperature, max_tokens), e.g. the
    authors' per-suite settings under the paper protocol; the target as it is when the prompt asks none."""
    decoding = prompt.meta.get("decoding")
    if not isinstance(decoding, dict):
        return target
    return replace(target, **{k: decoding[k] for k in DECODING_FIELDS if decoding.get(k) is not None})


def response_id(prompt_id: str, target: str, sample: int, samples: int) -> str:
    """A response's id: unique across targets and samples, so `trustmh score` accepts the file."""
    return f"{prompt_id}@{target}" + (f"#{sample}" if samples > 1 else "")


class TargetPlan(BuiltOnAccess[TargetCall]):
    """Target calls in plan order, held compactly: per call only its 32-byte key; the prompt stays in the
    caller's store and a `TargetCall` is built when asked for. Calls of prompt p are the targets × samples
    consecutive indices from p × targets × samples.

    `only` (prompt id → target names) keeps just those pairs, in the same order (the re-asks of the paper
    protocol: only the answers the authors' reader rejected); `attempt` is the re-ask's number in the keys."""

    def __init__(self, prompts: Sequence[Prompt], targets: Sequence[TargetSpec], samples: int = 1, *,
                 only: Mapping[str, Collection[str]] | None = None, attempt: int = 0) -> None:
        self.prompts, self.targets, self.samples = prompts, list(targets), samples
        self.per_prompt = len(self.targets) * samples
        self._keys = bytearray()
        self._selected: list[tuple[int, int, int]] | None = None if only is None else []
        for p, prompt in enumerate(prompts):
            messages = [m.model_dump() for m in prompt.messages]
            for t, target in enumerate(self.targets):
                if self._selected is not None and target.name not in (only or {}).get(prompt.id, ()):
                    continue
                decoding = prompt_decoded(target, prompt).decoding_params()
                for sample in range(samples):
                    key = target_request_key(decoding, messages, list(prompt.followups), sample, attempt)
                    self._keys += bytes.fromhex(key)
                    if self._selected is not None:
                        self._selected.append((p, t, sample))

    def __len__(self) -> int:
        return len(self.prompts) * self.per_prompt if self._selected is None else len(self._selected)

    def _split(self, index: int) -> tuple[int, int, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self._selected is not None:
            return self._selected[index]
        prompt, rest = divmod(index, self.per_prompt)
        target, sample = divmod(rest, self.samples)
        return prompt, target, sample

    def _prompt_id(self, prompt: int) -> str:
        ids = getattr(self.prompts, "ids", None)
        return ids[prompt] if ids is not None else self.prompts[prompt].id

    def request_key(self, index: int) -> str:
        return self._keys[32 * index : 32 * index + 32].hex()

    def call_id(self, index: int) -> tuple[str, str, int]:
        prompt, target, sample = self._split(index)
        return (self._prompt_id(prompt), self.targets[target].name, sample)

    def worker_name(self, index: int) -> str:
        return self.targets[self._split(index)[1]].name

    def target_of(self, index: int) -> TargetSpec:
        return self.targets[self._split(index)[1]]

    def _build(self, index: int) -> TargetCall:
        prompt, target, sample = self._split(index)
        spec = prompt_decoded(self.targets[target], self.prompts[prompt])
        return TargetCall(
            prompt=self.prompts[prompt],
            target=spec,
            sample=sample,
            response_id=response_id(self._prompt_id(prompt), spec.name, sample, self.samples),
            request_key=self.request_key(index),
        )

