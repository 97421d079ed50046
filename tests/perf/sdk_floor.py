"""The fastest whole process a judge built on the OpenAI SDK and instructor could be: the floor under
`trustmh score`'s whole-process throughput figure.

It starts the interpreter, imports the OpenAI SDK and instructor's OpenAI handlers (what any such judge
imports before its first request, with the cyclic collector paused as `trustmh` does), then posts
ready-made request bodies with bare aiohttp: no command line, no items, no plan, no parsing, no
outputs. tests/perf/run_bench.py runs it on the bodies of the throughput run, as a whole process.

Usage: python tests/perf/sdk_floor.py BASE_URL BODIES.jsonl CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from judge.calls.long_lived import first_import_of

with first_import_of("aiohttp", "instructor.v2.providers.openai.handlers", "openai"):  # paused, as in trustmh
    import aiohttp
    import instructor.v2.providers.openai.handlers  # noqa: F401
    import openai  # noqa: F401


async def post_all(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"}
    async with aiohttp.ClientSession() as session:

        async def post(body: dict[str, Any]) -> None:
            async with semaphore, session.post(f"{base_url}/chat/completions", json=body, headers=headers) as answer:
                answer.raise_for_status()
                await answer.read()

        await asyncio.gather(*(post(body) for body in bodies))


if __name__ == "__main__":
    url, path, slots = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    with path.open(encoding="utf-8") as lines:
        requests = [json.loads(line) for line in lines]
    asyncio.run(post_all(url, requests, slots))
