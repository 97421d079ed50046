"""Fixtures of the real-server suite (`make test-llm`): one llama.cpp server for the whole session, a
recording proxy in front of it, and the `trustmh` command run as a child process against it.

Every test here is marked `llm`, which `make test` deselects (pyproject.toml: `-m "not llm"`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.llm.llama_server import (
    MODEL_ALIAS,
    LlamaServer,
    RecordingProxy,
    ServerSetupError,
    port_accepts,
    verified_model_path,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The server, started once; teardown stops it and checks that it is gone."""
    try:
        server = LlamaServer(verified_model_path(), tmp_path_factory.mktemp("llama") / "server.log")
        server.start()
    except ServerSetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    status = server.stop()
    assert status is not None, "the llama.cpp server is still running after teardown"
    assert not port_accepts(server.port), f"port {server.port} still accepts connections after the server stopped"


@pytest.fixture(scope="module")
def proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(llama_server.port) as recording:
        yield recording


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@dataclass
class Completed:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def trustmh(work: Path) -> Any:
    """Run `trustmh ARGS` as a child process, with a private cache folder shared by the module's runs."""
    env = {**os.environ, "TRUSTMH_CACHE_DIR": str(work / "cache"), "OPENAI_API_KEY": "not-needed", "COLUMNS": "200"}
    env.pop("OPENAI_BASE_URL", None)

    def run(*args: str | Path) -> Completed:
        done = subprocess.run(
            [sys.executable, "-m", "judge.cli", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True
        )
        return Completed(done.returncode, done.stdout, done.stderr)

    return run


def judges_toml(path: Path, base_url: str, **settings: Any) -> Path:
    """A judges file with one judge, `smol`, on the server behind `base_url`: the single-slot settings the
    README recommends (concurrency 1, a generous timeout and deadline) unless `settings` overrides them."""
    table = {
        "spec": f"openai:{MODEL_ALIAS}@{base_url}",
        "mode": "tools",
        "concurrency": 1,
        "temperature": 0.0,
        "seed": 7,
        "max_tokens": 900,  # a five-criterion verdict takes about 500
        "timeout_s": 1800.0,
        "deadline_s": 3600.0,
        "max_attempts": 2,
        **settings,
    }
    lines = ["[judges.smol]", *(f"{key} = {json.dumps(value)}" for key, value in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
