"""Targets that are not an LLM API: `http:` (a chatbot's own HTTP API, served here by a small loopback app),
`python:` (a callable, sync or async) and the `mock:` stand-in, each through `trustmh respond` and the one
engine (cache, journal, retries, follow-ups), plus the pure parts (reply paths, request templates, specs)."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from judge.judges import MOCK_VERSION, JudgeConfigError, load_judges_file, parse_judge_spec
from judge.respond.custom_targets import (
    MESSAGES,
    PROMPT,
    SYSTEM,
    check_request_template,
    fill_template,
    follow_reply_path,
    parse_reply_path,
)
from judge.respond.custom_workers import mock_reply
from judge.respond.targets import HttpTargetSpec, PythonTargetSpec, load_targets_file, parse_target_spec
from tests.conftest import read_jsonl, write_jsonl
from tests.test_respond_cli import prompts

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------- pure parts


def test_a_reply_path_reads_keys_and_indices_and_names_the_missing_step() -> None:
    answer = {"choices": [{"message": {"content": "first"}}, {"message": {"content": "last"}}], "n": 2}
    assert parse_reply_path("choices[0].message.content") == ("choices", 0, "message", "content")
    assert parse_reply_path("$.choices[-1].message.content") == ("choices", -1, "message", "content")
    assert follow_reply_path(answer, parse_reply_path("choices[0].message.content")) == "first"
    assert follow_reply_path(answer, parse_reply_path("choices[-1].message.content")) == "last"
    assert follow_reply_path({"a": [[1, 2], [3]]}, parse_reply_path("a[0][1]")) == 2
    with pytest.raises(LookupError, match=r"choices\[1\]\.message has no key 'text' \(its keys: 'content'\)"):
        follow_reply_path(answer, parse_reply_path("choices[1].message.text"))
    with pytest.raises(LookupError, match=r"choices has 2 element\(s\), so no \[2\]"):
        follow_reply_path(answer, parse_reply_path("choices[2]"))
    with pytest.raises(LookupError, match="n is not an object"):
        follow_reply_path(answer, parse_reply_path("n.value"))
    with pytest.raises(LookupError, match=r"the answer is not a list, so it has no \[0\]"):
        follow_reply_path(answer, (0,))
    for bad in ("", "a..b", "a[x]", "a[0"):
        with pytest.raises(ValueError):
            parse_reply_path(bad)


def test_a_request_template_gets_the_conversation_where_its_placeholders_are() -> None:
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "and now?"}]  # fmt: skip
    template = {"history": MESSAGES, "q": PROMPT, "sys": SYSTEM, "opts": [{"fixed": 1, "text": "{{messages}} x"}]}
    body = fill_template(template, conversation, "Be kind.")
    assert body["history"] == [{"role": "system", "content": "Be kind."}, *conversation]
    assert body["q"] == "and now?" and body["sys"] == "Be kind."
    assert body["opts"] == [{"fixed": 1, "text": "{{messages}} x"}], "only a whole string is a placeholder"
    assert fill_template(template, conversation, None)["history"] == conversation
    assert json.loads(check_request_template('{"q": "{{prompt}}"}', "here")) == {"q": PROMPT}
    with pytest.raises(JudgeConfigError, match="here: request never sends the conversation"):
        check_request_template({"session": "x", "sys": SYSTEM}, "here")
    with pytest.raises(JudgeConfigError, match="here: request is not valid JSON"):
        check_request_template("{nope", "here")


def test_custom_target_specs_inline_and_in_a_targets_file_keep_the_files_order(tmp_path: Path) -> None:
    assert parse_target_spec("mock:a").provider == "mock" and parse_target_spec("mock:a").prices() == (0.0, 0.0)
    assert parse_judge_spec("mock:j").name == "mock:j"
    python = parse_target_spec("python:mybot.chat:reply")
    assert isinstance(python, PythonTargetSpec) and python.function == "mybot.chat:reply"
    http = parse_target_spec("http:http://127.0.0.1:8080/chat?key=SECRET")
    assert isinstance(http, HttpTargetSpec) and http.reply == "reply"
    assert "SECRET" not in json.dumps(http.public_dict()) and "SECRET" not in http.name
    file = tmp_path / "targets.toml"
    file.write_text(textwrap.dedent("""
        [targets.bot]
        spec = "http:https://bot.example.org/v1/chat"
        headers = { Authorization = "BOT_AUTH" }
        request = { session = "t", history = "{{messages}}" }
        reply = "data.replies[-1].text"
        system_prompt = "Be kind."
        max_attempts = 2
        [targets.llm]
        spec = "openai:gpt-4o-mini"
        [targets.fn]
        spec = "python:mybot.chat:reply"
        version = "2"
        [targets.stand-in]
        spec = "mock:a"
    """), encoding="utf-8")
    loaded = load_targets_file(file)
    assert list(loaded) == ["bot", "llm", "fn", "stand-in"]
    bot = loaded["bot"]
    assert isinstance(bot, HttpTargetSpec) and bot.headers == (("Authorization", "BOT_AUTH"),)
    assert json.loads(bot.request) == {"session": "t", "history": MESSAGES} and bot.max_attempts == 2
    assert bot.decoding_params()["headers"] == ["Authorization"], "header names, never their values"
    assert loaded["fn"].decoding_params()["version"] == "2" and loaded["stand-in"].provider == "mock"
    judges = tmp_path / "judges.toml"
    judges.write_text('[judges.fake]\nspec = "mock:j"\nconcurrency = 2\n', encoding="utf-8")
    fake = load_judges_file(judges).judges["fake"]
    assert (fake.provider, fake.model, fake.concurrency, fake.prices()) == ("mock", "j", 2, (0.0, 0.0))
    assert fake.decoding_params()["mock"] == MOCK_VERSION, "a change of the mock's answers changes its keys"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('spec = "http:https://x.org/c"\ntemperature = 0.5', r"\[targets.t\]: unknown setting\(s\) \['temperature'\]"),
        ('spec = "http:https://x.org/c"\nheaders = { Authorization = "not a name" }', "headers.Authorization must"),
        ('spec = "http:https://x.org/c"\nreply = "a[b]"', r"\[targets.t\]: reply 'a\[b\]' segment"),
        ('spec = "http:https://x.org/c"\nrequest = { q = "fixed" }', "request never sends the conversation"),
        ('spec = "http:ftp://x.org/c"', "expected http:URL"),
        ('spec = "python:nomodule"', "expected python:MODULE:FUNCTION"),
        ('spec = "mock:a@http://127.0.0.1:9"', "it takes no @BASE_URL"),
    ],
)
def test_a_bad_custom_target_table_names_the_file_table_and_field(tmp_path: Path, table: str, message: str) -> None:
    file = tmp_path / "targets.toml"
    file.write_text(f"[targets.t]\n{table}\n", encoding="utf-8")
    with pytest.raises(JudgeConfigError, match=message) as caught:
        load_targets_file(file)
    assert str(file) in str(caught.value)


def test_the_mock_reply_is_labelled_and_a_pure_function_of_the_conversation() -> None:
    conversation = [{"role": "user", "content": "I feel low."}]
    reply = mock_reply("mock:a", conversation, None)
    assert reply.startswith("[mock:a: not a model") and reply == mock_reply("mock:a", list(conversation), None)
    others = {mock_reply(name, [{"role": "user", "content": f"case {i}"}], None) for name in ("mock:a", "mock:b")
              for i in range(12)}  # fmt: skip
    assert len(others) > 4, "answers vary with the conversation and the mock's name"


# ---------------------------------------------------------------- http: a loopback chatbot API


class ChatbotAPI:
    """A chatbot's own API: POST /chat {"session", "history": [...]} → {"data": {"replies": [{"text"}]}}.

    It refuses a request without the right Authorization header (401), answers 503 to the first
    `unavailable` requests, and 400 with a message to a history whose last message says "bad request"."""

    def __init__(self, unavailable: int = 0) -> None:
        self.unavailable = unavailable
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with api.lock:
                    api.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                    unavailable = api.unavailable > 0
                    api.unavailable -= unavailable
                if self.headers.get("Authorization") != "Bearer bot-secret":
                    return self.answer(401, {"error": "missing or wrong token"})
                if unavailable:
                    return self.answer(503, {"error": "warming up"}, {"Retry-After": "0"})
                last = body["history"][-1]["content"]
                if "bad request" in last:
                    return self.answer(400, {"error": "history too long for this bot"})
                self.answer(200, {"data": {"replies": [{"text": "ignored"}, {"text": api.reply(body["history"])}]}})

            def answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def reply(history: list[dict[str, str]]) -> str:
        return f"bot reply to {history[-1]['content']!r} after {len(history)} message(s)"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/chat"


@pytest.fixture
def chatbot() -> Iterator[ChatbotAPI]:
    api = ChatbotAPI()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def bot_targets(tmp_path: Path, url: str, **extra: str) -> Path:
    settings = "".join(f"{k} = {v}\n" for k, v in extra.items())
    file = tmp_path / "targets.toml"
    file.write_text(
        f'[targets.bot]\nspec = "http:{url}"\nheaders = {{ Authorization = "BOT_AUTH" }}\n'
        'request = { session = "trustmh", history = "{{messages}}" }\nreply = "data.replies[-1].text"\n'
        f"backoff_initial_s = 0\n{settings}",
        encoding="utf-8",
    )
    return file


def test_an_http_target_is_answered_through_the_engine_with_its_headers_retries_and_cache(
    tmp_path: Path, chatbot: ChatbotAPI, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_AUTH", "Bearer bot-secret")
    chatbot.unavailable = 2  # two 503s, retried by the shared policy (retry-after 0)
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(4, followups=1))
    targets = bot_targets(tmp_path, chatbot.url, system_prompt='"Be kind."')
    out = tmp_path / "out"
    result = run_cli("respond", file, "--targets-file", targets, "--out", out, "-q", "--concurrency", "1")
    assert result.code == 0, result.stderr
    assert len(chatbot.requests) == 4 * 2 + 2
    assert all(r["auth"] == "Bearer bot-secret" and r["body"]["session"] == "trustmh" for r in chatbot.requests)
    assert chatbot.requests[0]["body"]["history"][0] == {"role": "system", "content": "Be kind."}
    calls = read_jsonl(out / "calls.jsonl")
    for call in calls:
        assert call["status"] == "ok" and call["provider"] == "http" and call["target"] == "bot"
        first = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": prompts(4)[0]["prompt"]}]
        if call["prompt_id"] == "p-000":
            assert call["turns"][0] == ChatbotAPI.reply(first)
        assert call["turns"][1].endswith("after 4 message(s)"), "the follow-up carries the first answer"
        assert call["input_tokens"] is None and call["cost_usd"] is None, "an API that reports no tokens"
    responses = read_jsonl(out / "responses.jsonl")
    assert [m["role"] for m in responses[0]["messages"]] == ["user", "assistant", "user"]
    assert "bot-secret" not in "".join(p.read_text() for p in out.iterdir() if p.is_file())

    chatbot.requests.clear()
    again = run_cli("respond", file, "--targets-file", targets, "--out", tmp_path / "again", "-q")
    assert again.code == 0 and chatbot.requests == [], "answered from the cache"
    assert (tmp_path / "again" / "responses.jsonl").read_text() == (out / "responses.jsonl").read_text()


def test_an_http_target_that_refuses_fails_the_call_with_the_servers_message_and_no_retry(
    tmp_path: Path, chatbot: ChatbotAPI, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_AUTH", "Bearer bot-secret")
    rows = prompts(2)
    rows[1]["prompt"] = "this is a bad request"
    file = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "out"
    result = run_cli("respond", file, "--targets-file", bot_targets(tmp_path, chatbot.url), "--out", out, "-q")
    assert result.code == 3, result.stderr
    assert len(chatbot.requests) == 2, "a 400 is not sent again"
    failed = [c for c in read_jsonl(out / "calls.jsonl") if c["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["failure_reason"] == "bad_request"
    assert "HTTP 400" in failed[0]["error"] and "history too long for this bot" in failed[0]["error"]
    assert json.loads((out / "summary.json").read_text())["failures_by_reason"] == {"bad_request": 1}


def test_an_http_target_whose_reply_path_misses_fails_the_call_saying_what_the_answer_holds(
    tmp_path: Path, chatbot: ChatbotAPI, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_AUTH", "Bearer bot-secret")
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(1))
    targets = bot_targets(tmp_path, chatbot.url).read_text().replace("data.replies[-1].text", "data.reply")
    (tmp_path / "targets.toml").write_text(targets, encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("respond", file, "--targets-file", tmp_path / "targets.toml", "--out", out, "-q").code == 3
    (call,) = read_jsonl(out / "calls.jsonl")
    assert call["failure_reason"] == "invalid_answer"
    assert "data has no key 'reply' (its keys: 'replies')" in call["error"]


def test_an_http_target_whose_header_variable_is_unset_is_a_usage_error_before_anything_is_sent(
    tmp_path: Path, chatbot: ChatbotAPI, judge_env: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_AUTH", raising=False)
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(2))
    result = run_cli("respond", file, "--targets-file", bot_targets(tmp_path, chatbot.url), "--out", tmp_path / "o")
    assert result.code == 2 and "BOT_AUTH not set" in result.stderr
    assert chatbot.requests == []


# ---------------------------------------------------------------- python: a callable


@pytest.fixture
def bot_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module with sync and async chatbots that count their calls in a file (fresh name per test)."""
    name = f"userbot_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import asyncio
        from pathlib import Path

        CALLS = Path({str(tmp_path / "calls.txt")!r})

        def _count():
            with CALLS.open("a") as handle:
                handle.write("x")

        def reply(messages):
            _count()
            return f"sync {{len(messages)}}: " + messages[-1]["content"]

        async def areply(messages):
            await asyncio.sleep(0)
            _count()
            return "async " + messages[0]["role"] + ": " + messages[-1]["content"]

        def broken(messages):
            raise RuntimeError("the bot's database is down")

        def not_text(messages):
            return {{"text": "hi"}}
    """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_python_targets_sync_and_async_answer_every_turn_and_a_rerun_calls_them_no_more(
    tmp_path: Path, bot_module: str, judge_env: Path, run_cli: Any
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(3, followups=1))
    targets = f"python:{bot_module}:reply,python:{bot_module}:areply"
    out = tmp_path / "out"
    result = run_cli("respond", file, "--targets", targets, "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert (tmp_path / "calls.txt").read_text() == "x" * (3 * 2 * 2)
    calls = read_jsonl(out / "calls.jsonl")
    first = prompts(3, followups=1)[0]
    sync, async_ = calls[0], calls[1]
    assert sync["turns"] == [f"sync 1: {first['prompt']}", f"sync 3: {first['followups'][0]}"]
    assert async_["turns"] == [f"async user: {first['prompt']}", f"async user: {first['followups'][0]}"]
    assert {c["provider"] for c in calls} == {"python"}

    again = run_cli("respond", file, "--targets", targets, "--out", tmp_path / "again", "-q")
    assert again.code == 0 and (tmp_path / "calls.txt").read_text() == "x" * 12, "answered from the cache"


def test_a_python_target_that_raises_or_returns_no_text_fails_its_calls_with_the_reason(
    tmp_path: Path, bot_module: str, judge_env: Path, run_cli: Any
) -> None:
    file = write_jsonl(tmp_path / "prompts.jsonl", prompts(1))
    out = tmp_path / "out"
    targets = f"python:{bot_module}:broken,python:{bot_module}:not_text"
    assert run_cli("respond", file, "--targets", targets, "--out", out, "-q").code == 3
    broken, not_text = read_jsonl(out / "calls.jsonl")
    assert broken["failure_reason"] == "error" and "RuntimeError: the bot's database is down" in broken["error"]
    assert not_text["failure_reason"] == "invalid_answer" and "returned dict" in not_text["error"]
    missing = run_cli("respond", file, "--targets", f"python:{bot_module}:nothing", "--out", tmp_path / "m")
    assert missing.code == 2 and "has no function 'nothing'" in missing.stderr
    unknown = run_cli("respond", file, "--targets", "python:no_such_module_here:reply", "--out", tmp_path / "u")
    assert unknown.code == 2 and "cannot import no_such_module_here" in unknown.stderr
