"""Loopback HTTP server speaking the OpenAI Chat Completions and Anthropic Messages wire formats, and in
front of them the URL schemes and authentication of Azure OpenAI, Bedrock, Vertex AI and Gemini (clouds.py).

Lets the test suite and benchmarks run the real ``openai`` / ``anthropic`` SDKs and ``instructor`` end to
end without internet or keys. Run standalone with ``python -m tests.fakeapi.server --port 8765``.
"""

from __future__ import annotations

import argparse
import contextlib
import http
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import clouds
from .batches import BatchStore
from .judge_script import scripted_answerer
from .protocol import (
    Answer,
    FaultPlan,
    ParsedRequest,
    PromptCacheLedger,
    Provider,
    Reply,
    RequestError,
    default_answerer,
    error_answer,
    parse_request,
    render_reply,
)

__all__ = ["Answerer", "FakeLLMServer", "RecordedRequest", "main"]

Answerer = Callable[[ParsedRequest], "Reply | dict[str, Any]"]

_ENDPOINTS: dict[str, Provider] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
_OPENAI_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username and password. You can obtain an "
    "API key from https://platform.openai.com/account/api-keys."
)


@dataclass
class RecordedRequest:
    """One request as the server saw it and what it sent back (``answer`` is None while in flight)."""

    ordinal: int
    provider: Provider
    method: str
    path: str
    headers: dict[str, str]
    t_start: float
    body: Any = None  # parsed JSON, or None when unreadable / absent
    model: str | None = None
    parsed: ParsedRequest | None = None
    reply: Reply | None = None  # final Reply after unwrapping ``slow``
    answer: Answer | None = None
    faulted: bool = False
    error: str | None = None  # answerer exception, client gone, …
    t_end: float | None = None
    query: str = ""  # the URL's query string (Azure's api-version)
    cloud: str | None = None  # azure, bedrock, vertex or gemini: a cloud provider's endpoint (clouds.py)

    @property
    def status(self) -> int | None:
        """HTTP status sent; 0 for a deliberate disconnect; None while in flight."""
        return None if self.answer is None else self.answer.status

    @property
    def input_tokens(self) -> int:
        return 0 if self.answer is None else self.answer.input_tokens

    @property
    def output_tokens(self) -> int:
        return 0 if self.answer is None else self.answer.output_tokens

    @property
    def is_reask(self) -> bool:
        return bool(self.parsed and self.parsed.is_reask)


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server with a deep accept backlog and tracked sockets so stop() can cut keep-alives."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    owner: FakeLLMServer

    def __init__(self, addr: tuple[str, int], owner: FakeLLMServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a run that stopped) is the client's business: record nothing
        on this process's stderr, which in-process tests read as the CLI's own output."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 300  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the request log is ``server.requests``."""

    def do_POST(self) -> None:
        self.server.owner._handle(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    # -- low level I/O ---------------------------------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_answer(self, answer: Answer) -> None:
        payload = answer.raw if answer.raw is not None else json.dumps(answer.json, ensure_ascii=False).encode("utf-8")
        try:
            reason = http.HTTPStatus(answer.status).phrase
        except ValueError:
            reason = "Overloaded" if answer.status == 529 else ""
        self.send_response(answer.status, reason)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if answer.partial:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.drop()
            return
        self.wfile.write(payload)
        self.wfile.flush()

    def drop(self) -> None:
        """Cut the connection mid-exchange, as a crashed proxy or reset connection would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class FakeLLMServer:
    """A local OpenAI + Anthropic API double; use as a context manager.

    ``answerer(req) -> Reply | dict`` builds answers (a dict means ``Reply.structured(dict)``);
    ``faults`` is consulted first and, when it fires, the answerer is not called.
    """

    def __init__(
        self,
        latency_s: float = 0.0,
        *,
        answerer: Answerer | None = None,
        faults: FaultPlan | None = None,
        require_auth: bool = True,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_min_tokens: int = 1024,
    ) -> None:
        self.latency_s = latency_s
        self.answerer: Answerer = answerer or default_answerer
        self.faults: FaultPlan | None = faults
        self.require_auth = require_auth
        self.api_key = api_key  # when set, only this key is accepted
        self.cloud_auth = clouds.CloudAuth(key=api_key)  # what the cloud endpoints accept (clouds.py)
        self.prompt_cache = PromptCacheLedger(cache_min_tokens)
        self.batches = BatchStore(self.answer_entry, lambda: self.base_url)
        self.batch_entries: list[ParsedRequest] = []  # requests answered inside batches, in order
        self._batch_ordinal = 0
        self._host, self._port = host, port
        self._log: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ordinal = 0
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        self._stop.clear()
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake sleeping handlers and cut open keep-alive connections."""
        self._stop.set()
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.sockets_lock:
            open_sockets = list(httpd.open_sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public state ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        return f"{self.base_url}/v1beta/openai"

    @property
    def vertex_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of the request log, in arrival order."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Clear the log and restart ordinals at 1 (fault plans keep their consumed ``times``)."""
        with self._lock:
            self._log.clear()
            self._ordinal = 0

    # -- request handling ------------------------------------------------------------------------
    def _record(self, handler: _Handler, provider: Provider, path: str) -> RecordedRequest:
        with self._lock:
            self._ordinal += 1
            rec = RecordedRequest(
                ordinal=self._ordinal,
                provider=provider,
                method=handler.command,
                path=path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                t_start=time.time(),
            )
            self._log.append(rec)
        return rec

    def _finish(self, handler: _Handler, rec: RecordedRequest, answer: Answer) -> None:
        rec.answer = answer
        rec.t_end = time.time()
        try:
            if answer.disconnected:
                handler.drop()
            else:
                handler.send_answer(answer)
        except OSError as exc:  # client went away (e.g. its timeout fired during a slow reply)
            rec.error = rec.error or f"client gone: {exc!r}"
            handler.close_connection = True

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if path == clouds.GOOGLE_TOKEN_PATH and handler.command == "POST":
            raw = handler.read_body()
            rec = self._record(handler, "anthropic", path)
            rec.cloud = "google-oauth"
            self._finish(handler, rec, clouds.google_token(raw, self.cloud_auth.key or clouds.GOOGLE_ACCESS_TOKEN))
            return
        cloud = clouds.route(path, urlsplit(handler.path).query)
        if cloud is not None:
            self._handle_cloud(handler, cloud, path, headers)
            return
        endpoint = _ENDPOINTS.get(path)
        if path.startswith("/v1/messages/batches"):
            endpoint = "anthropic"
        elif path.startswith(("/v1/files", "/v1/batches")):
            endpoint = "openai"
        provider: Provider = endpoint or (
            "anthropic" if "anthropic-version" in headers or "x-api-key" in headers else "openai"
        )
        try:
            raw = handler.read_body()
        except (OSError, ValueError):
            handler.close_connection = True
            return
        rec = self._record(handler, provider, path)
        answer = self._answer(rec, provider, path, handler.command, headers, raw)
        self._finish(handler, rec, answer)

    def _handle_cloud(
        self, handler: _Handler, cloud: clouds.CloudRoute, path: str, headers: Mapping[str, str]
    ) -> None:
        """A request to a cloud provider's endpoint: its URL and auth checked, then answered as the API
        its body speaks (OpenAI's or Anthropic's) would answer it."""
        try:
            raw = handler.read_body()
        except (OSError, ValueError):
            handler.close_connection = True
            return
        rec = self._record(handler, cloud.provider, path)
        rec.cloud, rec.query = cloud.cloud, urlsplit(handler.path).query
        signed = clouds.SignedRequest(handler.command, handler.path, raw)
        answer = (None if handler.command == "POST" else Answer(405, {"message": "Method Not Allowed"}, {})) or (
            clouds.check(cloud, headers, self.cloud_auth, self.require_auth, signed)
        )
        if answer is None:
            try:
                rec.body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                answer = error_answer(cloud.provider, 400, "invalid_request_error", "The body is not valid JSON.")
        if answer is None and isinstance(rec.body, dict):
            answer = clouds.body_error(cloud, rec.body)
        if answer is None:
            body = clouds.as_wire_body(cloud, rec.body) if isinstance(rec.body, dict) else rec.body
            answer = self._respond(rec, cloud.provider, path, headers, body)
        self._finish(handler, rec, answer)

    def _auth_error(self, provider: Provider, headers: Mapping[str, str]) -> Answer | None:
        if provider == "openai":
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if self.require_auth and not key:
                return error_answer("openai", 401, "invalid_request_error", _OPENAI_NO_KEY, code=None)
            if self.api_key is not None and key != self.api_key:
                shown = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
                msg = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
                return error_answer("openai", 401, "invalid_request_error", msg, code="invalid_api_key")
            return None
        auth = headers.get("authorization", "")
        key = headers.get("x-api-key", "") or (auth[7:].strip() if auth.lower().startswith("bearer ") else "")
        if self.require_auth and not key:
            return error_answer("anthropic", 401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return error_answer("anthropic", 401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in headers:
            return error_answer("anthropic", 400, "invalid_request_error", "anthropic-version: header is required")
        return None

    def _answer(
        self,
        rec: RecordedRequest,
        provider: Provider,
        path: str,
        method: str,
        headers: Mapping[str, str],
        raw: bytes,
    ) -> Answer:
        if self.batches.handles(path):
            return self._auth_error(provider, headers) or self.batches.handle(provider, method, path, headers, raw)
        if path not in _ENDPOINTS:
            if provider == "openai":
                return error_answer("openai", 404, "invalid_request_error", f"Invalid URL ({method} {path})", code=None)
            return error_answer("anthropic", 404, "not_found_error", "Not Found")
        if method != "POST":
            if provider == "openai":
                return error_answer("openai", 405, "invalid_request_error", f"Invalid method for URL ({method} {path})")
            return error_answer("anthropic", 405, "invalid_request_error", f"Method Not Allowed: {method}")
        auth_error = self._auth_error(provider, headers)
        if auth_error is not None:
            return auth_error
        try:
            rec.body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if provider == "openai":
                return error_answer("openai", 400, "invalid_request_error", _OPENAI_BAD_JSON, code=None)
            return error_answer(
                "anthropic",
                400,
                "invalid_request_error",
                "There was an error parsing the body of your request.",
            )
        return self._respond(rec, provider, path, headers, rec.body)

    def _respond(
        self, rec: RecordedRequest, provider: Provider, path: str, headers: Mapping[str, str], body: Any
    ) -> Answer:
        """The answer to a readable, authorised request: parsed, then a fault or the answerer's reply."""
        try:
            req = parse_request(provider, path, body, headers, rec.ordinal)
        except RequestError as exc:
            return error_answer(provider, 400, "invalid_request_error", exc.message, param=exc.param)
        rec.parsed, rec.model = req, req.model

        reply: Reply | None = self.faults.pick(req) if self.faults is not None else None
        rec.faulted = reply is not None
        try:
            if reply is None:
                reply = self._call_answerer(req)
        except Exception as exc:  # a buggy answerer must show up in the log, not hang the client
            rec.error = f"answerer raised {exc!r}"
            return error_answer(provider, 500, None, f"fake server answerer raised {exc!r}")
        # The latency counts from the request's arrival, as an API's does: the time spent parsing and
        # answering here comes out of it instead of adding to it.
        wait = self.latency_s - (time.time() - rec.t_start)
        if self.latency_s > 0 and self._stop.wait(max(0.0, wait)):
            return Answer(0, None, {}, disconnected=True)
        try:
            while reply.kind == "slow":
                if self._stop.wait(reply.seconds):
                    return Answer(0, None, {}, disconnected=True)
                reply = reply.then if reply.then is not None else self._call_answerer(req)
        except Exception as exc:  # a buggy answerer must show up in the log, not hang the client
            rec.error = f"answerer raised {exc!r}"
            return error_answer(provider, 500, None, f"fake server answerer raised {exc!r}")
        rec.reply = reply
        if reply.kind == "disconnect":
            if reply.partial:
                answer = render_reply(req, Reply.text("partial"))
                answer.partial = True
                return answer
            return Answer(0, None, {}, disconnected=True)
        return self.render(req, reply)

    def render(self, req: ParsedRequest, reply: Reply) -> Answer:
        """A reply on the wire, with the prompt-cache usage of its prefix (answered requests only)."""
        cache = self.prompt_cache.account(req) if reply.kind in ("structured", "raw_arguments", "text") else (0, 0)
        return render_reply(req, reply, cache)

    def answer_entry(self, provider: Provider, path: str, body: Any, headers: Mapping[str, str]) -> Answer:
        """One request inside a batch, answered as a live one would be (fault plan, answerer, prompt
        cache) but without transport behaviour: a `slow` reply just answers, a disconnect is a 500."""
        with self._lock:
            self._batch_ordinal += 1
            ordinal = self._batch_ordinal
        try:
            req = parse_request(provider, path, body, headers, ordinal)
        except RequestError as exc:
            return error_answer(provider, 400, "invalid_request_error", exc.message, param=exc.param)
        try:
            reply = (self.faults.pick(req) if self.faults is not None else None) or self._call_answerer(req)
            while reply.kind == "slow":
                reply = reply.then if reply.then is not None else self._call_answerer(req)
        except Exception as exc:
            return error_answer(provider, 500, None, f"fake server answerer raised {exc!r}")
        with self._lock:
            self.batch_entries.append(req)
        if reply.kind == "disconnect":
            return error_answer(provider, 500, None, "The server had an error while processing your request.")
        return self.render(req, reply)

    def _call_answerer(self, req: ParsedRequest) -> Reply:
        out = self.answerer(req)
        return out if isinstance(out, Reply) else Reply.structured(out)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the two base URLs for SDK clients / ``trustmh`` runs."""
    parser = argparse.ArgumentParser(description="Fake OpenAI + Anthropic API for offline tests and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds from a request's arrival to its answer")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without an API key")
    parser.add_argument(
        "--judge-script", action="store_true", help="answer like a judge: valid scores, evidence from the response"
    )
    args = parser.parse_args(argv)
    answerer: Answerer | None = scripted_answerer if args.judge_script else None
    server = FakeLLMServer(
        args.latency, answerer=answerer, require_auth=not args.no_auth, host=args.host, port=args.port
    ).start()
    print(f"OPENAI_BASE_URL={server.openai_base_url}", flush=True)
    print(f"ANTHROPIC_BASE_URL={server.anthropic_base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
