"""The one place that talks to LLM APIs: a `Connection` per judge or target (its SDK client, rate
limits and per-request retries), the requests of one call, what a failure is called, and the providers'
batch endpoints. What is asked lives with each kind of call: `judge.judge_worker` (instructor, typed
verdicts, re-asks) and `judge.respond.worker` (free-text answers, follow-up turns).

Transient failures (429, 5xx, 529 overloaded, timeouts, dropped connections) are retried with
exponential backoff and jitter, honouring `retry-after`, up to a number of attempts, request by
request: a failure during a re-ask or a follow-up repeats that request only. The answers of a call
that needs more than one request are kept in the run's request log until the call is journalled, so
a run killed mid-call replays them on restart instead of paying for them again. A per-call deadline
bounds everything. When the re-asks of an invalid answer run out, the call is recorded as failed,
with the error and without a score.

The providers' batch endpoints (`BatchAPI`: OpenAI's Files + Batch API, Anthropic's Message Batches)
are here too; `judge.calls.batch` decides what goes into a batch, and a batch's answers reach the workers
through the request log, so they are parsed, re-asked and priced on the same path as live answers.
"""

from __future__ import annotations

import email.utils
import importlib.util
import json
import os
import re
import ssl
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from instructor.core.exceptions import IncompleteOutputException
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_random_exponential,
)

from judge.calls.engine import CallResult, rate_limiter
from judge.calls.pricing import Usage, add_known, sum_costs, usage_cost
from judge.calls.replicas import ReplicaCounts, ReplicaPool
from judge.calls.request_body import BodyEncoder
from judge.calls.request_log import RequestLog
from judge.judges import (
    AZURE_API_VERSION,
    CLOUD_BASE_URL_ENV,
    JudgeConfigError,
    JudgeSpec,
    api_key_for,
    public_url,
    without_credentials,
)

RETRY_AFTER_CAP_S = 300.0


@dataclass
class TokenTally:
    """Tokens billed across every request of one call, re-asks, follow-ups and retried requests included.

    A count becomes None (unknown) as soon as one answered request reports no usage: a partial sum
    would understate the cost. Answers that came from a provider batch are tallied apart, since they
    are billed at the batch rate. `sent` counts requests this process sent; `requests` also counts
    answers replayed from the request log (batch answers included).
    """

    live: Usage = field(default_factory=Usage)
    batch: Usage = field(default_factory=Usage)
    requests: int = 0
    sent: int = 0
    batched: bool = False

    def add(self, response: Any, *, batch: bool = False) -> None:
        self.requests += 1
        self.batched = self.batched or batch
        (self.batch if batch else self.live).add(usage_of(getattr(response, "usage", None)))

    @property
    def input_tokens(self) -> int | None:
        return add_known(self.live.input, self.batch.input)

    @property
    def output_tokens(self) -> int | None:
        return add_known(self.live.output, self.batch.output)

    def spent(self) -> int:
        return self.live.total() + self.batch.total()

    def counts(self) -> tuple[int | None, int | None]:
        """(input, output); both None when no request was answered."""
        if self.requests == 0:
            return None, None
        return self.input_tokens, self.output_tokens

    def cache_counts(self) -> tuple[int | None, int | None]:
        """(cached input, cache write) tokens; both None when no request was answered."""
        if self.requests == 0:
            return None, None
        return (
            add_known(self.live.cached_input, self.batch.cached_input),
            add_known(self.live.cache_write, self.batch.cache_write),
        )

    def cost(self, spec: JudgeSpec) -> float | None:
        if self.requests == 0:
            return None
        return sum_costs([usage_cost(spec, self.live), usage_cost(spec, self.batch, batch=True)])


def usage_of(usage: Any) -> Usage:
    """One answer's usage in the convention of `judge.calls.pricing`: input counts every prompt token billed.

    Anthropic reports cache reads and writes beside `input_tokens`; OpenAI counts cached tokens
    inside `prompt_tokens`.
    """
    if usage is None:
        return Usage(None, None, None, None)
    if hasattr(usage, "input_tokens"):  # Anthropic
        read = getattr(usage, "cache_read_input_tokens", None) or 0
        write = getattr(usage, "cache_creation_input_tokens", None) or 0
        total = None if usage.input_tokens is None else usage.input_tokens + read + write
        return Usage(total, usage.output_tokens, read, write)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return Usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None), cached, 0)


class InvalidAnswerError(Exception):
    """Every allowed attempt produced an answer that failed validation; `__cause__` is the last error."""

    def __init__(self, error: Exception, attempts: int) -> None:
        super().__init__(f"invalid answer after {attempts} attempt(s): {error}")
        self.error = error
        self.attempts = attempts


# ---------------------------------------------------------------- one endpoint


def tls_context_meanwhile() -> Future[ssl.SSLContext]:
    """The OpenAI SDK's default TLS context (httpx2's, from the same environment), built on another thread.

    Loading the certificate store takes about 15 ms and releases the GIL, so on a second core it overlaps
    the SDK's import (a third of a second) instead of following it on the way to the first request.
    """
    future: Future[ssl.SSLContext] = Future()

    def build() -> None:
        try:
            import httpx2

            future.set_result(httpx2.create_ssl_context())
        except BaseException as exc:  # raised where the context is used, as the SDK would raise it
            future.set_exception(exc)

    threading.Thread(target=build, name="trustmh-tls", daemon=True).start()
    return future


def encrypted(base_url: str | None) -> bool:
    """Whether requests go over TLS; None is the provider's own API, which is https."""
    return base_url is None or not base_url.lower().startswith("http:")


def plain_http_transport() -> Any:
    """The OpenAI SDK's aiohttp transport, with the connection limits the SDK gives it, for a plain-http
    base URL (a local server): without the TLS context the transport would otherwise build.

    Building it imports httpcore2's HTTP stack and loads the certificate store, about 30 ms on the way to
    the first request, for connections that are never encrypted. Should the server redirect to https,
    aiohttp verifies that connection with its own default context. Proxies from the environment are
    unaffected: the SDK's client mounts a transport of its own for each. The transport's __init__ does
    nothing but set these attributes after building the context (a test holds them to it).
    """
    from openai._constants import DEFAULT_CONNECTION_LIMITS
    from openai._vendor.httpx_aiohttp.transport import AiohttpTransport

    class PlainHttpTransport(AiohttpTransport):
        def __init__(self) -> None:  # not super().__init__(): that is what builds the context
            self.ssl_context = True
            self.proxy = None
            self.limits = DEFAULT_CONNECTION_LIMITS
            self.retries = 0
            self.socket_options = []
            self.uds = None
            self.local_address = None
            self.client = None

    return PlainHttpTransport()


def openai_client(spec: JudgeSpec, key: str | None, base_url: str | None, credentials: dict[str, str]) -> Any:
    """The OpenAI SDK's async client for an OpenAI, Gemini (OpenAI-compatible) or Azure OpenAI judge."""
    tls = tls_context_meanwhile() if encrypted(base_url) else None
    import openai

    common: dict[str, Any] = {
        "default_headers": credentials or None,  # basic auth in place of the bearer key, as the URL asks
        "max_retries": 0,
        "timeout": spec.timeout_s,
        # The SDK's aiohttp transport: less CPU per request than its default under many connections.
        "http_client": openai.DefaultAioHttpClient(
            timeout=spec.timeout_s,
            **({"transport": plain_http_transport()} if tls is None else {"verify": tls.result()}),
        ),
    }
    if spec.provider != "azure":
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, **common)
    if base_url is None:
        raise JudgeConfigError(
            f"judge {spec.name}: no Azure OpenAI endpoint; write azure:DEPLOYMENT@https://RESOURCE.openai.azure.com "
            f"or export {CLOUD_BASE_URL_ENV['azure']}"
        )
    # The deployment is the spec's model: requests go to ENDPOINT/openai/deployments/MODEL/chat/completions,
    # with ?api-version= and the key in an `api-key` header (an Entra ID token from AZURE_OPENAI_AD_TOKEN
    # as a bearer token instead, read by the SDK).
    return openai.AsyncAzureOpenAI(
        azure_endpoint=base_url,
        azure_deployment=spec.model,
        api_version=spec.api_version or os.environ.get("OPENAI_API_VERSION") or AZURE_API_VERSION,
        api_key=key,
        **common,
    )


def _require(module: str, extra: str, spec: JudgeSpec, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise JudgeConfigError(
            f"judge {spec.name}: {why} needs the {module} package; pip install 'trustmh-judge[{extra}]'"
        )


def anthropic_client(spec: JudgeSpec, key: str | None, base_url: str | None, credentials: dict[str, str]) -> Any:
    """The Anthropic SDK's async client for an Anthropic judge, or Claude on Amazon Bedrock or Vertex AI."""
    import anthropic

    common: dict[str, Any] = {
        "base_url": base_url,
        "default_headers": credentials or None,
        "max_retries": 0,
        "timeout": spec.timeout_s,
    }
    if spec.provider == "anthropic":
        return anthropic.AsyncAnthropic(api_key=key, **common)
    if spec.provider == "bedrock":
        if key is None:  # no Bedrock API key: the SDK signs each request (SigV4) with AWS credentials
            _require("boto3", "bedrock", spec, f"Bedrock without an API key ({spec.key_env()})")
        return anthropic.AsyncAnthropicBedrock(api_key=key, aws_region=spec.region, **common)
    region = spec.region or os.environ.get("CLOUD_ML_REGION")
    if not region:
        raise JudgeConfigError(
            f"judge {spec.name}: no Vertex AI region; set region = \"us-east5\" (or \"global\") in its judges file "
            "or export CLOUD_ML_REGION"
        )
    project = spec.project or os.environ.get("ANTHROPIC_VERTEX_PROJECT_ID")
    google_credentials = None
    if key is None:  # Google's application default credentials, refreshed by google-auth
        _require("google.auth", "vertex", spec, "Vertex AI without an access token in api_key_env")
        google_credentials, project = google_default_credentials(spec, project)
    if not project:
        raise JudgeConfigError(
            f"judge {spec.name}: no Google Cloud project; set project = \"...\" in its judges file "
            "or export ANTHROPIC_VERTEX_PROJECT_ID"
        )
    return anthropic.AsyncAnthropicVertex(
        region=region, project_id=project, access_token=key, credentials=google_credentials, **common
    )


def google_default_credentials(spec: JudgeSpec, project: str | None) -> tuple[Any, str | None]:
    """Google's application default credentials (a key file, gcloud's login, the metadata server) and the
    project they belong to unless one is given. Loaded here, once: the SDK needs the project before its first
    request, and its requests would otherwise each load the credentials while none is loaded yet."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, found = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as exc:
        raise JudgeConfigError(
            f"judge {spec.name}: no Google credentials ({exc}); run `gcloud auth application-default login`, "
            "or name a variable holding an access token with api_key_env"
        ) from None
    return credentials, project or found


class Connection:
    """One judge's or target's SDK client (its own retries off), rate limits and per-request retries.

    Only the SDK of the spec's provider is imported. Requests are posted with the SDK client's own
    `post` (its auth, headers and error types) rather than through `create`, whose parameter
    transform walks every message against each message type on every call. Bodies reach it as the
    bytes its encoder would write, with the parts shared by many requests encoded once
    (`judge.calls.request_body`); answers come back as bytes and are typed as the SDK's response models
    (`typed`).

    A spec with replica base URLs (`base_urls`) gets one client per replica and a `ReplicaPool`: each
    attempt of a request goes to the least-loaded healthy replica, and a replica that cannot be reached is
    down for its cooldown while the request goes at once to another replica it has not tried, without
    counting as one of its attempts (`ReplicaUnreachable`). When no untried replica is up, the failure
    counts, with the usual backoff, and the next attempt may try every replica again.
    """

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        key = api_key_for(spec)
        base_url, credentials = without_credentials(spec.effective_base_url())
        # Bedrock and Vertex clients move the model from the body into the URL: they need the body as JSON.
        self.json_body = spec.provider in ("bedrock", "vertex")
        self.sdk: Any
        if spec.wire == "openai":
            import httpx2
            from openai.types.chat import ChatCompletion

            self.sdk = openai_client(spec, key, base_url, credentials)
            self.path, self.answer_type, self.raw_type = "/chat/completions", ChatCompletion, httpx2.Response
        else:
            import httpx
            from anthropic.types import Message

            self.sdk = anthropic_client(spec, key, base_url, credentials)
            self.path, self.answer_type, self.raw_type = "/v1/messages", Message, httpx.Response
        self.limiter = rate_limiter(spec.name, spec.requests_per_minute, spec.tokens_per_minute)
        self.bodies = BodyEncoder()
        self.clients: list[Any] = [self.sdk]  # one per replica; the first is `sdk` (also the batch API's)
        self.replicas: ReplicaPool | None = None
        if spec.base_urls:
            self.clients += [openai_client(spec, key, *without_credentials(url)) for url in spec.base_urls[1:]]
            shares = spec.replica_concurrency or (1,) * len(spec.base_urls)  # equal shares of `concurrency`
            self.replicas = ReplicaPool([public_url(url) for url in spec.base_urls], shares, spec.replica_cooldown_s)

    async def post(self, body: dict[str, Any], estimate: int, tally: TokenTally) -> Any:
        """Send one request, retrying it alone on transient errors; its answer's tokens go to `tally`."""
        content = None if self.json_body else self.bodies.encode(body)
        tried: set[int] = set()  # replicas this attempt of the request could not reach
        async for attempt in retry_policy(self.spec):
            with attempt:
                await self.limiter.acquire(estimate)
                spent_before = tally.spent()
                replica = None if self.replicas is None else self.replicas.take(time.monotonic(), frozenset(tried))
                sdk = self.sdk if replica is None else self.clients[replica]
                try:
                    tally.sent += 1
                    try:
                        if self.json_body:
                            raw = await sdk.post(self.path, cast_to=self.raw_type, body=body)
                        else:
                            raw = await sdk.post(self.path, cast_to=self.raw_type, content=content)
                    except BaseException as exc:
                        if replica is not None:
                            self._replica_failed(replica, exc, tried)
                        raise
                    if replica is not None:
                        self.replicas.answered(replica)  # type: ignore[union-attr]
                    response = self.typed(raw.content)
                    tally.add(response)
                finally:
                    self.limiter.settle(estimate, tally.spent() - spent_before)
        return response

    def _replica_failed(self, replica: int, exc: BaseException, tried: set[int]) -> None:
        """Count a replica's failed request; raise ReplicaUnreachable (free, immediate failover) when it
        could not be reached and another untried replica is up."""
        pool = self.replicas
        assert pool is not None
        if not isinstance(exc, Exception):  # cancelled: the call's deadline, a stopped run
            pool.abandoned(replica)
            return
        now = time.monotonic()
        unreachable = replica_unreachable(exc)
        pool.failed(replica, now, unreachable=unreachable)
        tried.add(replica)
        if unreachable and pool.another_healthy(now, frozenset(tried)):
            raise ReplicaUnreachable(exc, pool.counts[replica].url) from exc
        tried.clear()  # the failure counts: the next attempt may try every replica again

    def replica_counts(self) -> list[ReplicaCounts]:
        """Requests and failures per replica in this process; empty without replicas."""
        return [] if self.replicas is None else list(self.replicas.counts)

    def typed(self, answer: bytes | dict[str, Any]) -> Any:
        """An answer (its bytes, or its JSON as a batch or the request log holds it) as the SDK's response
        type. Pydantic validates it, from the bytes a tenth of the time the SDK takes to build it from
        parsed JSON; an answer that does not fit the type exactly (a local server's liberties, such as a
        missing `created`) is built as the SDK builds it, unvalidated."""
        try:
            if isinstance(answer, bytes):
                return self.answer_type.model_validate_json(answer)
            return self.answer_type.model_validate(answer)
        except ValidationError as error:
            data = json.loads(answer) if isinstance(answer, bytes) else answer  # no JSON: an invalid answer
            if not isinstance(data, dict):
                raise error from None
            return self.answer_type.construct(**data)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


BATCH_ANSWER, BATCH_ERROR = "batch_answer", "batch_error"  # request-log entries written by judge.calls.batch


class BatchEntryError(Exception):
    """A provider batch answered a call's first request with an error, an expiry or a cancellation;
    `reason` is the failure reason a live request failing the same way would get."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class CallRequests:
    """The numbered requests of one call. Before a second request is sent, the answer to the first is
    written to the run's request log; after a kill, a restart replays logged answers instead of
    sending (and paying for) them again. The call's entries are dropped once it is journalled."""

    connection: Connection
    log: RequestLog | None
    call_key: str
    tally: TokenTally = field(default_factory=TokenTally)
    _answers: list[Any] = field(default_factory=list)
    _logged: list[str] = field(default_factory=list)

    def _key(self, index: int) -> str:
        return f"{self.call_key}:{index}"

    async def send(self, body: dict[str, Any], estimate: int) -> Any:
        index = len(self._answers)
        if self.log is not None and index > 0 and self._key(index - 1) not in self._logged:
            self.log.put(self._key(index - 1), self._answers[-1].model_dump(mode="json"))
            self._logged.append(self._key(index - 1))
        replayed = self.log.get(self._key(index)) if self.log is not None else None
        if replayed is not None:
            self._logged.append(self._key(index))
            if BATCH_ERROR in replayed:  # the provider's batch answered this request with an error
                raise BatchEntryError(**replayed[BATCH_ERROR])
            batch = BATCH_ANSWER in replayed
            response = self.connection.typed(replayed.get(BATCH_ANSWER, replayed))
            self.tally.add(response, batch=batch)
        else:
            response = await self.connection.post(body, estimate, self.tally)
        self._answers.append(response)
        return response

    def finish(self) -> None:
        if self.log is not None and self._logged:
            self.log.forget(self._logged)


CACHE_CONTROL = {"type": "ephemeral"}


def mark_cacheable(spec: JudgeSpec, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic caches a prompt prefix only up to a `cache_control` marker: mark the system message
    (rules and rubric, identical for every item of a pillar) as a text block carrying it, the way
    instructor's Anthropic handlers pass system blocks through. OpenAI caches prefixes by itself."""
    if spec.wire != "anthropic":
        return messages
    return [
        {"role": "system", "content": [{"type": "text", "text": m["content"], "cache_control": dict(CACHE_CONTROL)}]}
        if m["role"] == "system" and isinstance(m["content"], str)
        else m
        for m in messages
    ]


def request_kwargs(spec: JudgeSpec) -> dict[str, Any]:
    """Decoding parameters in the form each SDK expects."""
    kwargs: dict[str, Any] = {"model": spec.model, "temperature": spec.temperature, "max_tokens": spec.max_tokens}
    if spec.seed is not None and spec.provider in ("openai", "azure"):
        kwargs["seed"] = spec.seed
    return kwargs


# ---------------------------------------------------------------- errors and retry policy


def _root_error(exc: BaseException) -> BaseException:
    """The validation error behind an invalid answer, the server error behind a repeated one, the connection
    error behind an unreachable replica; any other error as it is."""
    return exc.error if isinstance(exc, InvalidAnswerError | RepeatedServerError | ReplicaUnreachable) else exc


class ReplicaUnreachable(Exception):
    """A replica could not be reached (connection refused or dropped, timed out) while another that the
    request has not tried is up: the request goes there at once, and this failure is not one of its
    attempts (see WaitRetryAfter and StopRetrying). `error` is the SDK's error."""

    def __init__(self, error: BaseException, url: str) -> None:
        super().__init__(f"replica {url} unreachable: {error}")
        self.error = error
        self.url = url


def replica_unreachable(exc: BaseException) -> bool:
    """Whether a request's error means its server could not be reached or did not answer in time (both
    SDKs' APITimeoutError is an APIConnectionError), as opposed to an answer with an error status."""
    return isinstance(exc, _sdk_errors("APIConnectionError"))


# 409: a conflict on the provider's side (OpenAI's "lock timeout"), retried as both SDKs retry it.
_STATUS_REASONS = {
    401: "auth",
    403: "auth",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    429: "rate_limited",
    529: "overloaded",
}
_SDKS = ("openai", "anthropic")


def _sdk_errors(name: str) -> tuple[type[BaseException], ...]:
    """One error class of each SDK this process has loaded: an SDK never imported raised nothing, and
    importing it only to classify errors would cost a run start-up time for a provider it does not use."""
    return tuple(getattr(sys.modules[sdk], name) for sdk in _SDKS if sdk in sys.modules)


def _dropped_connection_underneath(exc: BaseException) -> bool:
    """The OpenAI SDK's aiohttp transport reports every aiohttp connection error, a server that closed
    the connection included, as a connect timeout; the aiohttp error it was raised from tells them apart."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


# How a server says the request itself is malformed, whatever status it sends with it: the error type of
# OpenAI- and Anthropic-style bodies, and FastAPI's request-validation text (llama-cpp-python's server
# sends "1 validation error: {... 'loc': ('body', 'response_format', 'type') ...}" as an HTTP 500).
_INVALID_REQUEST_TYPES = frozenset({"invalid_request_error"})
_REQUEST_VALIDATION_TEXT = re.compile(r"validation errors?\b.*'loc': \('body'", re.S)


def says_request_invalid(error: Any) -> bool:
    """Whether an error body blames the request: sending the same request again cannot succeed."""
    body = error.body
    detail = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        if detail.get("type") in _INVALID_REQUEST_TYPES:
            return True
        text = str(detail.get("message", ""))
    else:
        text = str(detail if detail is not None else error.message)
    return _REQUEST_VALIDATION_TEXT.search(text) is not None


def failure_reason(exc: BaseException) -> str:
    root = _root_error(exc)
    if isinstance(root, _sdk_errors("APIStatusError")):
        if root.status_code >= 500 and says_request_invalid(root):
            return "bad_request"
        return status_reason(root.status_code)
    if isinstance(root, (*_sdk_errors("APITimeoutError"), TimeoutError)):
        return "connection" if _dropped_connection_underneath(root) else "timeout"
    if isinstance(root, _sdk_errors("APIConnectionError")):
        return "connection"
    if isinstance(exc, InvalidAnswerError) or isinstance(root, ValidationError | json.JSONDecodeError):
        return "invalid_answer"
    if isinstance(exc, IncompleteOutputException):
        return "truncated"
    return "error"


def is_transient(exc: BaseException) -> bool:
    return failure_reason(exc) in {"rate_limited", "overloaded", "server_error", "timeout", "connection", "conflict"}


def retry_after_seconds(exc: BaseException) -> float | None:
    """Delay the server asked for (`retry-after-ms`, `retry-after` in seconds or as an HTTP date)."""
    root = _root_error(exc)
    response = getattr(root, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, parsed.timestamp() - time.time())


class WaitRetryAfter:
    """Tenacity wait: the server's `retry-after` when given (capped), else exponential backoff with jitter."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._fallback = wait_random_exponential(multiplier=initial_s, max=max_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ReplicaUnreachable):  # another replica is up: go there now
            return 0.0
        if exc is not None and (asked := retry_after_seconds(exc)) is not None:
            return min(asked, RETRY_AFTER_CAP_S)
        return float(self._fallback(state))


# A server error that comes back the same (status and message) this many times running is taken as the
# server's fixed answer to this request (a model that cannot load, a gateway's error page), not as a passing
# fault: the request stops there instead of using all its attempts. Overload and gateway statuses are
# capacity signals that pass, and are retried to the end.
IDENTICAL_SERVER_ERRORS = 3
_PASSING_STATUSES = frozenset({502, 503, 504, 529})


class RepeatedServerError(Exception):
    """The server answered one request with the same server error IDENTICAL_SERVER_ERRORS times running;
    `error` is the last of them."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(f"the same server error {attempts} times running: {error}")
        self.error = error
        self.attempts = attempts


def server_error_signature(exc: BaseException) -> tuple[int, str] | None:
    """(status, the error body's message) of a 5xx that may be the server's fixed answer; None otherwise.
    The message leaves out what changes from answer to answer (request ids)."""
    if not isinstance(exc, _sdk_errors("APIStatusError")):
        return None
    if exc.status_code < 500 or exc.status_code in _PASSING_STATUSES:
        return None
    body = exc.body
    detail = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return exc.status_code, f"{detail.get('type')}: {detail.get('message')}"
    return exc.status_code, str(detail if detail is not None else exc.message)


class StopRetrying:
    """Tenacity stop of one request: its attempts are spent, or the server gave the same server error
    IDENTICAL_SERVER_ERRORS times running (then `repeated` is True)."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self._last: tuple[int, str] | None = None
        self._run = 0
        self.repeated = False
        self.failovers = 0  # sends that went to an unreachable replica while another was up: not attempts

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ReplicaUnreachable):
            self.failovers += 1
            return False
        signature = server_error_signature(exc) if exc is not None else None
        self._run = 0 if signature is None else (self._run + 1 if signature == self._last else 1)
        self._last = signature
        self.repeated = self._run >= IDENTICAL_SERVER_ERRORS
        return self.repeated or state.attempt_number - self.failovers >= self.max_attempts


def _give_up(state: RetryCallState) -> Any:
    """When a request's retries stop: raise its last error, marked when the server repeated itself."""
    exc = state.outcome.exception() if state.outcome else None
    assert exc is not None  # tenacity stops only after a failed attempt
    if isinstance(state.retry_object.stop, StopRetrying) and state.retry_object.stop.repeated:
        raise RepeatedServerError(exc, state.attempt_number) from exc
    raise exc


def retry_policy(spec: JudgeSpec) -> AsyncRetrying:
    """Retries of one HTTP request (never of a whole call: answered requests are not sent again)."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=WaitRetryAfter(spec.backoff_initial_s, spec.backoff_max_s),
        stop=StopRetrying(spec.max_attempts),
        retry_error_callback=_give_up,
        reraise=True,
    )


# ---------------------------------------------------------------- what a call's outcome is


class EmptyAnswerError(Exception):
    """The target answered with no text: nothing to judge, and not a refusal anyone could read."""

    def __init__(self, turn: int) -> None:
        super().__init__(f"the target answered turn {turn} with no text")


def call_failure_reason(exc: BaseException) -> str:
    """The failure reason a call records, for any exception a worker's `ask` met."""
    if isinstance(exc, BatchEntryError):
        return exc.reason
    if isinstance(exc, TimeoutError) and not _is_sdk_timeout(exc):
        return "deadline"
    if isinstance(exc, EmptyAnswerError):
        return "empty_answer"
    return failure_reason(exc)


def call_result(call: Any, payload: Any, requests: CallRequests, started: float, reason: str | None) -> CallResult:
    """A finished call as the engine records it: its payload, every request's tokens, cost and time."""
    requests.finish()
    tally = requests.tally
    input_tokens, output_tokens = tally.counts()
    cached_input, cache_write = tally.cache_counts()
    return CallResult(
        call,
        payload,
        input_tokens,
        output_tokens,
        round(time.monotonic() - started, 4),
        cached=False,
        failure_reason=reason,
        requests=tally.sent,
        cached_input_tokens=cached_input,
        cache_write_tokens=cache_write,
        cost_usd=tally.cost(requests.connection.spec),
        batched=tally.batched,
    )


def _is_sdk_timeout(exc: BaseException) -> bool:
    return isinstance(_root_error(exc), _sdk_errors("APITimeoutError"))


def _validation_detail(error: BaseException) -> str:
    """One line per problem, without pydantic's documentation links."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
    return str(error)


def describe_failure(exc: BaseException, reason: str, spec: JudgeSpec) -> str:
    """The `error` text of a failed call: what went wrong and, where there is one, what to change."""
    root = _root_error(exc)
    if reason == "invalid_answer":
        attempts = exc.attempts if isinstance(exc, InvalidAnswerError) else 1
        return f"invalid answer after {attempts} attempt(s): {_validation_detail(root)}"
    if reason == "truncated":
        return (
            f"truncated: the answer hit max_tokens={spec.max_tokens} before it was complete; "
            "raise max_tokens in the judges file"
        )
    if reason == "empty_answer":
        return f"empty_answer: {root}"
    if isinstance(exc, BatchEntryError):
        return f"{reason}: {exc.message} (in a provider batch; run again to ask it anew)"
    if reason == "deadline":
        return f"no answer within the per-call deadline of {spec.deadline_s:g} s (deadline_s in its TOML file)"
    status = getattr(root, "status_code", None)
    prefix = f"HTTP {status} " if status else ""
    message = str(root) or type(root).__name__
    if isinstance(exc, RepeatedServerError):
        return (
            f"{reason}: {prefix}{message} (the same answer {exc.attempts} times running: the server fails this "
            "request every time, so it was not sent again)"
        )
    if is_transient(exc):
        return f"{reason}: {prefix}{message} (gave up after {spec.max_attempts} attempts)"
    return f"{reason}: {prefix}{message}"


# ---------------------------------------------------------------- provider batch APIs


@dataclass
class BatchProgress:
    """A batch as last polled: whether it ended, how many of its requests are done."""

    batch_id: str
    ended: bool
    status: str  # the provider's own word
    done: int
    total: int


@dataclass
class BatchEntry:
    """One request's outcome in an ended batch: the SDK answer's JSON, or a failure reason and message."""

    custom_id: str
    answer: dict[str, Any] | None
    reason: str | None = None
    message: str | None = None


# Anthropic's error types inside a batch, as the failure reasons of the same errors on a live request.
_ANTHROPIC_ERROR_REASONS = {
    "invalid_request_error": "bad_request",
    "request_too_large": "bad_request",
    "authentication_error": "auth",
    "permission_error": "auth",
    "not_found_error": "not_found",
    "rate_limit_error": "rate_limited",
    "api_error": "server_error",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}
_OPENAI_LINE_ERRORS = {"batch_expired": "expired", "batch_cancelled": "canceled"}
_OPENAI_ENDED = {"completed", "failed", "expired", "cancelled"}


def status_reason(status: int) -> str:
    """The failure reason of an HTTP status, the same for a live request and a batch entry."""
    return _STATUS_REASONS.get(status, "server_error" if status >= 500 else "bad_request")


class BatchAPI:
    """A provider's batch endpoints through a judge's or target's own SDK client (its key, base URL,
    timeouts): OpenAI's Files + Batch API, Anthropic's Message Batches API. Each HTTP request is retried
    on transient errors like any other request. instructor's batch module is used for what fits: its
    provider-neutral view of a batch's status and counts (`BatchJobInfo`); its request builders and
    result parser are not, since they ask for a different output mode than the judge's own and skip the
    mode's response parser, which live answers go through."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.spec = connection.spec

    async def _retrying(self, send: Any) -> Any:
        async for attempt in retry_policy(self.spec):
            with attempt:
                return await send()
        raise AssertionError("unreachable: the retry policy re-raises")  # pragma: no cover

    async def submit(self, requests: list[tuple[str, dict[str, Any]]]) -> str:
        """Create one batch of (custom_id, request body) pairs; returns its id."""
        sdk = self.connection.sdk
        if self.spec.provider == "openai":
            lines = (
                json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body})
                for cid, body in requests
            )
            data = ("\n".join(lines) + "\n").encode("utf-8")
            uploaded = await self._retrying(
                lambda: sdk.files.create(file=("trustmh-batch.jsonl", data, "application/jsonl"), purpose="batch")
            )
            batch = await self._retrying(
                lambda: sdk.batches.create(
                    input_file_id=uploaded.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                    metadata={"created_by": "trustmh-judge"},
                )
            )
            return str(batch.id)
        entries = [{"custom_id": cid, "params": body} for cid, body in requests]
        batch = await self._retrying(lambda: sdk.messages.batches.create(requests=entries))
        return str(batch.id)

    async def poll(self, batch_id: str) -> BatchProgress:
        from instructor.batch.models import BatchJobInfo

        sdk = self.connection.sdk
        if self.spec.provider == "openai":
            batch = await self._retrying(lambda: sdk.batches.retrieve(batch_id))
            info = BatchJobInfo.from_openai(
                {
                    **batch.model_dump(),
                    "request_counts": batch.request_counts.model_dump() if batch.request_counts else {},
                }
            )
            counts = info.request_counts
            done = (counts.completed or 0) + (counts.failed or 0)
            return BatchProgress(batch_id, info.raw_status in _OPENAI_ENDED, info.raw_status, done, counts.total or 0)
        batch = await self._retrying(lambda: sdk.messages.batches.retrieve(batch_id))
        info = BatchJobInfo.from_anthropic(batch.model_dump())
        counts = info.request_counts
        total = counts.total or 0
        return BatchProgress(
            batch_id, info.raw_status == "ended", info.raw_status, total - (counts.processing or 0), total
        )

    async def results(self, batch_id: str) -> list[BatchEntry]:
        """Every entry the provider reports for an ended batch (requests it never ran are absent)."""
        if self.spec.provider == "openai":
            return await self._openai_results(batch_id)
        sdk = self.connection.sdk

        async def fetch() -> list[BatchEntry]:
            return [_anthropic_entry(line) async for line in await sdk.messages.batches.results(batch_id)]

        return await self._retrying(fetch)

    async def _openai_results(self, batch_id: str) -> list[BatchEntry]:
        sdk = self.connection.sdk
        batch = await self._retrying(lambda: sdk.batches.retrieve(batch_id))
        entries: list[BatchEntry] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._retrying(lambda file_id=file_id: sdk.files.content(file_id))
                entries += [_openai_entry(json.loads(line)) for line in content.text.splitlines() if line.strip()]
        return entries


def _openai_entry(line: dict[str, Any]) -> BatchEntry:
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    error = line.get("error")
    if response.get("status_code") == 200 and not error:
        return BatchEntry(custom_id, response["body"])
    if error:
        code = str(error.get("code") or "error")
        return BatchEntry(custom_id, None, _OPENAI_LINE_ERRORS.get(code, "error"), f"{code}: {error.get('message')}")
    status = int(response.get("status_code") or 500)
    message = ((response.get("body") or {}).get("error") or {}).get("message") or "no message"
    return BatchEntry(custom_id, None, status_reason(status), f"HTTP {status} {message}")


def _anthropic_entry(line: Any) -> BatchEntry:
    result = line.result
    if result.type == "succeeded":
        return BatchEntry(line.custom_id, result.message.model_dump(mode="json"))
    if result.type == "errored":
        error = result.error.error
        kind = getattr(error, "type", "api_error")
        return BatchEntry(
            line.custom_id,
            None,
            _ANTHROPIC_ERROR_REASONS.get(kind, "error"),
            f"{kind}: {getattr(error, 'message', '')}",
        )
    return BatchEntry(line.custom_id, None, result.type, f"the provider {result.type} this request of the batch")
