"""What a call cost: list prices, prompt-cache reads and writes, and the batch discount. Pure: no I/O.

Token counts follow one convention for both providers: `input` is every prompt token billed (OpenAI's
`prompt_tokens`; Anthropic's `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`),
and `cached_input` (tokens read from the provider's prompt cache) and `cache_write` (tokens written to
it; Anthropic only) are the parts of `input` billed at their own rates:

- OpenAI caches long prompt prefixes by itself; cached input is billed at the model's cached-input
  price (a quarter or half of the input price, depending on the model), and writing the cache is free.
- Anthropic caches up to a `cache_control` marker; a cache read costs 0.1 × the input price, a write
  (five-minute cache) 1.25 ×.
- Both providers' batch APIs bill half of the live price, cache reads and writes included.

Azure OpenAI and Gemini report usage as OpenAI does, Claude on Bedrock and Vertex AI as Anthropic does
(`JudgeSpec.wire`), and are priced the same way; Gemini's default list prices are in
`judge.judges.DEFAULT_PRICES`, and its cached input is charged at the full input price (an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judge.calls.engine import CallResult
    from judge.judges import JudgeSpec

BATCH_DISCOUNT = 0.5
ANTHROPIC_CACHE_READ = 0.1
ANTHROPIC_CACHE_WRITE = 1.25

# OpenAI's published cached-input prices in USD per million tokens; a model missing here (or an
# OpenAI-compatible server) is charged the full input price for cached tokens unless the judges file
# sets price_cached_input_per_mtok: an upper bound, never an understatement.
DEFAULT_CACHED_INPUT_PRICES: dict[str, float] = {
    "gpt-4.1": 0.50,
    "gpt-4.1-mini": 0.10,
    "gpt-4.1-nano": 0.025,
    "gpt-4o": 1.25,
    "gpt-4o-mini": 0.075,
}


@dataclass
class Usage:
    """Tokens of one or more answered requests; None (unknown) once one answer reported no usage."""

    input: int | None = 0
    output: int | None = 0
    cached_input: int | None = 0
    cache_write: int | None = 0

    def add(self, other: Usage) -> None:
        self.input = add_known(self.input, other.input)
        self.output = add_known(self.output, other.output)
        self.cached_input = add_known(self.cached_input, other.cached_input)
        self.cache_write = add_known(self.cache_write, other.cache_write)

    def total(self) -> int:
        return (self.input or 0) + (self.output or 0)


def add_known(total: int | None, more: int | None) -> int | None:
    return None if total is None or more is None else total + more


def cache_prices(spec: JudgeSpec, input_price: float) -> tuple[float, float]:
    """(cache-read, cache-write) prices per million tokens for this judge or target."""
    if spec.wire == "anthropic":  # Claude on Bedrock and Vertex bills cache reads and writes the same way
        return input_price * ANTHROPIC_CACHE_READ, input_price * ANTHROPIC_CACHE_WRITE
    read = spec.price_cached_input_per_mtok
    if read is None:
        read = DEFAULT_CACHED_INPUT_PRICES.get(spec.model, input_price) if spec.price_input_per_mtok is None else None
    return (input_price if read is None else read), input_price


def usage_cost(spec: JudgeSpec, usage: Usage, *, batch: bool = False) -> float | None:
    """USD for these tokens; None when the price or a count is unknown (never a guessed 0)."""
    prices = spec.prices()
    if prices is None or usage.input is None or usage.output is None:
        return None
    input_price, output_price = prices
    read_price, write_price = cache_prices(spec, input_price)
    cached, written = usage.cached_input or 0, usage.cache_write or 0
    fresh = max(0, usage.input - cached - written)
    cost = fresh * input_price + cached * read_price + written * write_price + usage.output * output_price
    return round(cost * (BATCH_DISCOUNT if batch else 1.0) / 1_000_000, 10)


def sum_costs(costs: list[float | None]) -> float | None:
    """A total that is unknown as soon as one part is."""
    return None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 10)


def split_cost(cost: float | None, parts: int) -> list[float | None]:
    """A call's cost shared among its journal rows."""
    return [None if cost is None else round(cost / parts, 12)] * parts


# ---------------------------------------------------------------- how usage travels in cache records and rows

USAGE_FIELDS = ("cached_input_tokens", "cache_write_tokens", "cost_usd")


def usage_record(result: CallResult) -> dict[str, Any]:
    """The cache-record fields of a result's cache usage, cost and origin (beside its input/output tokens)."""
    return {**{name: getattr(result, name) for name in USAGE_FIELDS}, "batch": result.batched}


def usage_from_record(record: dict[str, Any], spec: JudgeSpec) -> dict[str, Any]:
    """CallResult keyword arguments from a cache record; records written before prompt caching and
    batches were counted have no such fields, and are priced at the list price of their tokens."""
    fields: dict[str, Any] = {name: record.get(name, 0) for name in USAGE_FIELDS[:2]}
    fields["cost_usd"] = (
        record["cost_usd"] if "cost_usd" in record else spec.cost_usd(record["input_tokens"], record["output_tokens"])
    )
    fields["batched"] = bool(record.get("batch", False))
    return fields


def usage_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A call's cache usage and cost summed over its journal rows."""
    sums: dict[str, Any] = {}
    for name in USAGE_FIELDS:
        values = [row.get(name, 0) for row in rows]
        sums[name] = None if any(v is None for v in values) else sum(values)
    if sums["cost_usd"] is not None:
        sums["cost_usd"] = round(sums["cost_usd"], 10)
    sums["batch"] = any(row.get("batch", False) for row in rows)
    return sums
