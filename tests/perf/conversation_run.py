"""N conversations of T turns in a process of their own, for run_bench.py's conversation phase.

`trustmh bench --suites conversation/...` plays each bundled persona card once per target, so the CLI
cannot make the number of conversations grow while the rest stays the same (more targets would add
SDK clients too). This script runs the same code (`judge.suites.conversation.execute_conversations`,
what the CLI calls) over N copies of our persona cards that have no fixed opening message (so every
conversation makes exactly 2 calls a turn), one target and one simulated user on the loopback server,
and prints the run's summary as JSON on stdout. The launcher in run_bench.py measures its wall time and
peak RSS as a whole process.

Usage:  python tests/perf/conversation_run.py BASE_URL OUT CONVERSATIONS TURNS CONCURRENCY
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python tests/perf/conversation_run.py` puts tests/perf/, not the repo, first
    sys.path.insert(0, str(REPO))

from judge.calls.long_lived import long_lived  # noqa: E402

with long_lived():  # as the CLI imports its modules (judge/cli/__main__.py)
    from judge.respond.targets import TargetSpec
    from judge.settings import RunSettings
    from judge.suites.conversation import ConversationOptions, execute_conversations
    from judge.suites.personas import PersonaCard, our_personas

TARGET_MODEL = "gpt-4.1-mini"
USER_MODEL = "sim-user"


def persona_copies(n: int) -> list[PersonaCard]:
    """n cards cycled from our cards without an opening message, each with an id of its own."""
    cards = [card for card in our_personas() if not card.opening]
    return [
        card.model_copy(update={"id": f"{card.id}-{i:05d}"})
        for i, card in zip(range(n), itertools.cycle(cards), strict=False)
    ]


def main(argv: list[str]) -> int:
    base_url, out, conversations, turns, concurrency = argv
    target = TargetSpec(name="bot", provider="openai", model=TARGET_MODEL, base_url=base_url)
    user = TargetSpec(name="sim", provider="openai", model=USER_MODEL, base_url=base_url)
    options = ConversationOptions(
        personas=persona_copies(int(conversations)),
        targets=[target],
        user_model=user,
        out=Path(out),
        turns=int(turns),
        settings=RunSettings(cache_dir=None, concurrency=int(concurrency), quiet=True),
    )
    code, summary = execute_conversations(options)
    print(json.dumps(summary))
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
