"""Turn prompts and targets into target calls, each with its content-derived key. Pure: no I/O.

The order of the plan (prompt order, then target, then sample) is the order of `calls.jsonl` and
`responses.jsonl`, so a resumed or concurrent run writes the same files as a sequential one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from judge.cache import target_request_key
from judge.items import Prompt
from respond.targets import TargetSpec

ESTIMATED_ANSWER_TOKENS = 400  # a chat answer is rarely longer; capped by the target's max_tokens


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


def response_id(prompt_id: str, target: str, sample: int, samples: int) -> str:
    """A response's id: unique across targets and samples, so `trustmh score` accepts the file."""
    return f"{prompt_id}@{target}" + (f"#{sample}" if samples > 1 else "")


def plan_target_calls(prompts: Sequence[Prompt], targets: Sequence[TargetSpec], samples: int = 1) -> list[TargetCall]:
    calls = []
    for prompt in prompts:
        messages = [m.model_dump() for m in prompt.messages]
        for target in targets:
            params = target.decoding_params()
            for sample in range(samples):
                calls.append(
                    TargetCall(
                        prompt=prompt,
                        target=target,
                        sample=sample,
                        response_id=response_id(prompt.id, target.name, sample, samples),
                        request_key=target_request_key(params, messages, list(prompt.followups), sample),
                    )
                )
    return calls
