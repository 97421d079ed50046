"""Judge specifications: `PROVIDER:MODEL[@BASE_URL]`, judges.toml, `--judges` resolution and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from judge.cli.common import flag_message
from judge.judges import (
    JudgeConfigError,
    JudgesFile,
    JudgeSpec,
    api_key_for,
    check_samples,
    load_judges_file,
    parse_judge_spec,
    public_url,
    redact_urls,
    resolve_judges,
)

# ---------------------------------------------------------------- PROVIDER:MODEL[@BASE_URL]


@pytest.mark.parametrize(
    ("text", "provider", "model", "base_url", "name"),
    [
        ("openai:gpt-4.1-mini", "openai", "gpt-4.1-mini", None, "openai:gpt-4.1-mini"),
        ("anthropic:claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", None, "anthropic:claude-sonnet-4-5"),
        (
            "openai:qwen2.5-72b@http://localhost:8000/v1",
            "openai",
            "qwen2.5-72b",
            "http://localhost:8000/v1",
            "openai:qwen2.5-72b@localhost:8000",
        ),
        (
            "openai:llama3.1:8b@http://127.0.0.1:11434/v1",
            "openai",
            "llama3.1:8b",
            "http://127.0.0.1:11434/v1",
            "openai:llama3.1:8b@127.0.0.1:11434",
        ),
        (
            "anthropic:claude-haiku-4-5@https://proxy.example/anthropic",
            "anthropic",
            "claude-haiku-4-5",
            "https://proxy.example/anthropic",
            "anthropic:claude-haiku-4-5@proxy.example",
        ),
        ("  openai:gpt-4o  ", "openai", "gpt-4o", None, "openai:gpt-4o"),
        ("openai:m@http://[::1]:8080/v1", "openai", "m", "http://[::1]:8080/v1", "openai:m@[::1]:8080"),
    ],
)
def test_parse_judge_spec(text: str, provider: str, model: str, base_url: str | None, name: str) -> None:
    judge = parse_judge_spec(text)
    assert (judge.provider, judge.model, judge.base_url) == (provider, model, base_url)
    assert judge.name == name


def test_credentials_in_a_base_url_never_reach_the_name_the_settings_or_a_message() -> None:
    judge = parse_judge_spec("anthropic:m@https://user:pa55w0rd@proxy.example:8443/anthropic")
    assert judge.base_url == "https://user:pa55w0rd@proxy.example:8443/anthropic"  # the client needs it
    assert judge.name == "anthropic:m@proxy.example:8443"
    assert judge.public_dict()["base_url"] == "https://proxy.example:8443/anthropic"
    assert "pa55w0rd" not in repr(judge)
    assert public_url("http://u:p@h/v1?key=s3cret&org=x") == "http://h/v1?key=REDACTED&org=REDACTED"
    for text in ("vllm:m@http://user:pa55w0rd@host/v1?key=s3cret", "openai:m@http://user:pa55w0rd@host/v1?key=s3cret"):
        with pytest.raises(JudgeConfigError) as exc:
            parse_judge_spec(text)
        assert "pa55w0rd" not in str(exc.value) and "s3cret" not in str(exc.value)


def test_a_base_url_with_a_query_string_is_refused_since_the_sdks_would_mangle_it() -> None:
    with pytest.raises(JudgeConfigError) as exc:
        parse_judge_spec("openai:m@http://127.0.0.1:8000/v1?key=s3cret")
    assert "query string" in str(exc.value) and "api_key_env" in str(exc.value)
    assert "s3cret" not in str(exc.value)


def test_redact_urls_in_a_command_line() -> None:
    argv = "--judges openai:a@http://u:pw@h:1/v1?key=k,anthropic:b@https://h2/x --out r"
    assert redact_urls(argv) == "--judges openai:a@http://h:1/v1?key=REDACTED,anthropic:b@https://h2/x --out r"


def test_parse_judge_spec_with_a_name() -> None:
    judge = parse_judge_spec("openai:gpt-4.1-mini", name="mini")
    assert judge.name == "mini" and judge.model == "gpt-4.1-mini"


@pytest.mark.parametrize("text", ["google:gemini-2.5-pro", "mistral:mistral-large", "vllm:qwen@http://localhost:8000/v1"])
def test_unknown_provider_is_refused_naming_it(text: str) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        parse_judge_spec(text)
    provider = text.split(":")[0]
    assert f"unknown provider {provider!r}" in str(exc.value)
    assert "openai" in str(exc.value) and "anthropic" in str(exc.value)


@pytest.mark.parametrize(
    "text",
    ["openai:qwen@localhost:8000/v1", "openai:qwen@ftp://host/v1", "openai:qwen@127.0.0.1:8000"],
)
def test_base_url_without_http_scheme_is_refused(text: str) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        parse_judge_spec(text)
    assert "http://" in str(exc.value) and "base URL" in str(exc.value)


@pytest.mark.parametrize(
    "text", ["gpt-4.1-mini", "openai", "openai:", ":gpt-4o", "openai:gpt 4o", "openai:gpt@", "", "OpenAI gpt"]
)
def test_malformed_spec_says_what_is_expected(text: str) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        parse_judge_spec(text)
    assert "PROVIDER:MODEL" in str(exc.value)


# ---------------------------------------------------------------- judges.toml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "judges.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_judges_file_applies_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[judges.mini]
spec = "openai:gpt-4.1-mini"
temperature = 0.7
max_tokens = 1000
seed = 42
concurrency = 3
requests_per_minute = 500
tokens_per_minute = 200000
price_input_per_mtok = 0.5
price_output_per_mtok = 2.5
max_attempts = 4

[judges.local]
spec = "openai:qwen2.5-7b@http://localhost:8000/v1"
mode = "json"

[families]
qwen = ["qwen*"]
""",
    )
    loaded = load_judges_file(path)
    assert list(loaded.judges) == ["mini", "local"]
    mini = loaded.judges["mini"]
    assert (mini.name, mini.provider, mini.model, mini.base_url) == ("mini", "openai", "gpt-4.1-mini", None)
    assert (mini.temperature, mini.max_tokens, mini.seed, mini.concurrency) == (0.7, 1000, 42, 3)
    assert (mini.requests_per_minute, mini.tokens_per_minute) == (500, 200000)
    assert (mini.price_input_per_mtok, mini.price_output_per_mtok, mini.max_attempts) == (0.5, 2.5, 4)
    local = loaded.judges["local"]
    assert local.base_url == "http://localhost:8000/v1" and local.mode == "json"
    assert local.temperature == JudgeSpec(name="x", provider="openai", model="m").temperature  # default kept
    assert loaded.families == {"qwen": ["qwen*"]}


def test_settings_change_the_decoding_params() -> None:
    base = parse_judge_spec("openai:gpt-4.1-mini")
    assert base.decoding_params() != JudgeSpec(**{**base.__dict__, "temperature": 0.3}).decoding_params()


def test_unknown_setting_names_the_table_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.mini]\nspec = "openai:gpt-4.1-mini"\ntemprature = 0.2\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    message = str(exc.value)
    assert str(path) in message and "[judges.mini]" in message and "temprature" in message


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[judge.mini]\nspec = "openai:gpt-4.1-mini"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "judge" in str(exc.value) and "[judges.NAME]" in str(exc.value)


def test_missing_spec_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[judges.mini]\ntemperature = 0.2\n")
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "[judges.mini]" in str(exc.value) and "spec" in str(exc.value)


def test_bad_spec_in_the_file_names_the_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.g]\nspec = "google:gemini"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "[judges.g]" in str(exc.value) and "google" in str(exc.value)


def test_api_key_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    secret = "sk-do-not-print-me-123456"
    path = write(tmp_path, f'[judges.mini]\nspec = "openai:gpt-4.1-mini"\napi_key = "{secret}"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    message = str(exc.value)
    assert "[judges.mini]" in message and "api_key" in message
    assert secret not in message
    # The user must learn why: keys come from the environment (api_key_env names the variable).
    assert "environment" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("concurrency", '"four"'), ("temperature", '"hot"')],
)
def test_a_setting_of_the_wrong_type_names_the_table_and_field(tmp_path: Path, field: str, value: str) -> None:
    path = write(tmp_path, f'[judges.mini]\nspec = "openai:gpt-4.1-mini"\n{field} = {value}\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "[judges.mini]" in str(exc.value) and field in str(exc.value)


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("price_input_per_mtok = -1.0", "price_input_per_mtok must be 0 or more"),
        ("price_output_per_mtok = -0.5", "price_output_per_mtok must be 0 or more"),
        ("temperature = -1", "temperature must be between 0 and 2"),
        ("temperature = 2.5", "temperature must be between 0 and 2"),
        ("temperature = nan", "temperature must be a finite number"),
        ("max_tokens = 0", "max_tokens must be at least 1"),
        ("timeout_s = 0", "timeout_s must be greater than 0"),
        ("deadline_s = -5", "deadline_s must be greater than 0"),
        ("max_reasks = -1", "max_reasks must be 0 or more"),
        ("max_attempts = 0", "max_attempts must be at least 1"),
        ("concurrency = 0", "concurrency must be at least 1"),
        ("requests_per_minute = 0", "requests_per_minute must be greater than 0"),
        ("tokens_per_minute = -100", "tokens_per_minute must be greater than 0"),
        ("backoff_initial_s = -1", "backoff_initial_s must be 0 or more"),
        ("backoff_initial_s = 10\nbackoff_max_s = 5", "backoff_max_s must be at least backoff_initial_s"),
    ],
)
def test_out_of_range_settings_name_the_file_table_and_key(tmp_path: Path, setting: str, words: str) -> None:
    path = write(tmp_path, f'[judges.mini]\nspec = "openai:gpt-4.1-mini"\n{setting}\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert str(exc.value).startswith(f"{path}: [judges.mini]: {words}"), str(exc.value)


def test_anthropic_temperature_is_at_most_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.c]\nspec = "anthropic:claude-sonnet-4-5"\ntemperature = 1.5\n')
    with pytest.raises(JudgeConfigError, match=r"\[judges.c\]: temperature for anthropic must be between 0 and 1"):
        load_judges_file(path)


def test_edge_values_of_the_ranges_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[judges.mini]\nspec = "openai:gpt-4.1-mini"\ntemperature = 2\nmax_tokens = 1\nmax_reasks = 0\n'
        "max_attempts = 1\nprice_input_per_mtok = 0\nprice_output_per_mtok = 0\nbackoff_initial_s = 0\n",
    )
    mini = load_judges_file(path).judges["mini"]
    assert (mini.temperature, mini.max_tokens, mini.max_reasks, mini.cost_usd(1000, 1000)) == (2, 1, 0, 0.0)


def test_samples_above_one_at_temperature_zero_are_refused() -> None:
    greedy, warm = parse_judge_spec("openai:a"), JudgeSpec(name="w", provider="openai", model="b", temperature=0.7)
    check_samples([greedy, warm], 1)
    check_samples([warm], 3)
    with pytest.raises(JudgeConfigError) as exc:
        check_samples([greedy, warm], 3)
    assert exc.value.field == "samples" and "3:" in str(exc.value)
    assert "openai:a" in str(exc.value) and "temperature > 0" in str(exc.value)
    assert "w," not in str(exc.value)


def test_bad_mode_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.mini]\nspec = "openai:gpt-4.1-mini"\nmode = "xml"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "mode" in str(exc.value)


def test_bad_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.mini\nspec = "openai:gpt-4.1-mini"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert str(path) in str(exc.value) and "TOML" in str(exc.value)


def test_a_key_written_twice_in_the_judges_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.mini]\nspec = "openai:gpt-4.1-mini"\ntemperature = 0.2\ntemperature = 0.9\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert str(path) in str(exc.value) and "line 4" in str(exc.value)


def test_missing_judges_file(tmp_path: Path) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(tmp_path / "nope.toml")
    assert "nope.toml" in str(exc.value)


def test_bad_families_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[judges.mini]\nspec = "openai:gpt-4.1-mini"\n[families]\nqwen = "qwen*"\n')
    with pytest.raises(JudgeConfigError) as exc:
        load_judges_file(path)
    assert "qwen" in str(exc.value)


# ---------------------------------------------------------------- --judges


def file_with(*names: str) -> JudgesFile:
    return JudgesFile(judges={n: parse_judge_spec("openai:gpt-4.1-mini", name=n) for n in names})


def test_resolve_names_from_the_file_and_inline_specs() -> None:
    specs = resolve_judges("mini, anthropic:claude-sonnet-4-5", file_with("mini", "other"))
    assert [s.name for s in specs] == ["mini", "anthropic:claude-sonnet-4-5"]
    assert specs[1].provider == "anthropic"


def test_resolve_defaults_to_every_judge_of_the_file() -> None:
    assert [s.name for s in resolve_judges(None, file_with("a", "b"))] == ["a", "b"]


def test_resolve_inline_only() -> None:
    specs = resolve_judges("openai:gpt-4.1-mini,openai:gpt-4o", None)
    assert [s.model for s in specs] == ["gpt-4.1-mini", "gpt-4o"]


@pytest.mark.parametrize(
    ("text", "judges_file"),
    [("openai:gpt-4o,openai:gpt-4o", None), ("mini,mini", file_with("mini")), ("mini, mini ", file_with("mini"))],
)
def test_duplicate_judges_are_refused(text: str, judges_file: JudgesFile | None) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        resolve_judges(text, judges_file)
    assert "twice" in str(exc.value)


@pytest.mark.parametrize("text", [None, ""])
def test_no_judge_given(text: str | None) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        resolve_judges(text, None)
    assert "`judges=PROVIDER:MODEL[,...]`" in str(exc.value)  # the library names the argument, the CLI its option
    assert "pass --judges PROVIDER:MODEL[,...] or --judges-file judges.toml" in flag_message(exc.value)


@pytest.mark.parametrize("text", [",", " , ,"])
def test_a_judges_list_of_only_commas_is_no_judge(text: str) -> None:
    with pytest.raises(JudgeConfigError):
        resolve_judges(text, None)


def test_an_unknown_name_is_parsed_as_a_spec_and_refused() -> None:
    with pytest.raises(JudgeConfigError) as exc:
        resolve_judges("mnii", file_with("mini"))
    assert "mnii" in str(exc.value)


# ---------------------------------------------------------------- keys


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_key_from_the_provider_variable(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("OPENAI_API_KEY", "sk-openai")
    no_keys.setenv("ANTHROPIC_API_KEY", "sk-ant")
    assert api_key_for(parse_judge_spec("openai:gpt-4.1-mini")) == "sk-openai"
    assert api_key_for(parse_judge_spec("anthropic:claude-sonnet-4-5")) == "sk-ant"


def test_key_from_api_key_env(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_keys.setenv("MY_KEY", "sk-mine")
    path = write(tmp_path, '[judges.p]\nspec = "openai:gpt-4.1-mini"\napi_key_env = "MY_KEY"\n')
    judge = load_judges_file(path).judges["p"]
    assert api_key_for(judge) == "sk-mine"
    assert "sk-mine" not in repr(judge) and "sk-mine" not in str(judge.public_dict())


def test_base_url_without_key_is_fine(no_keys: pytest.MonkeyPatch) -> None:
    assert api_key_for(parse_judge_spec("openai:qwen@http://localhost:8000/v1"))


def test_base_url_from_the_environment_without_key_is_fine(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    judge = parse_judge_spec("openai:qwen")
    assert judge.effective_base_url() == "http://localhost:8000/v1"
    assert api_key_for(judge)


@pytest.mark.parametrize(
    ("text", "variable"),
    [("openai:gpt-4.1-mini", "OPENAI_API_KEY"), ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY")],
)
def test_missing_key_names_the_variable(no_keys: pytest.MonkeyPatch, text: str, variable: str) -> None:
    with pytest.raises(JudgeConfigError) as exc:
        api_key_for(parse_judge_spec(text))
    assert variable in str(exc.value) and "not set" in str(exc.value)


def test_an_empty_key_counts_as_missing(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("OPENAI_API_KEY", "")
    with pytest.raises(JudgeConfigError) as exc:
        api_key_for(parse_judge_spec("openai:gpt-4.1-mini"))
    assert "OPENAI_API_KEY" in str(exc.value)


def test_missing_custom_key_variable_is_named(no_keys: pytest.MonkeyPatch) -> None:
    judge = JudgeSpec(name="p", provider="openai", model="gpt-4o", api_key_env="MY_KEY")
    with pytest.raises(JudgeConfigError) as exc:
        api_key_for(judge)
    assert "MY_KEY" in str(exc.value)


@pytest.mark.parametrize("url", ["http://[::1/v1", "http://user:pa55w0rd@[::1/v1", "http://localhost:99999/v1"])
def test_a_malformed_base_url_or_port_is_a_usage_error_at_parse_time(url: str, tmp_path: Path) -> None:
    """An unclosed IPv6 bracket was an internal error (exit 1), and port 99999 was accepted, then retried."""
    with pytest.raises(JudgeConfigError, match="is not a valid URL") as raised:
        parse_judge_spec(f"openai:m@{url}")
    assert "pa55w0rd" not in str(raised.value)
    judges = tmp_path / "judges.toml"
    judges.write_text(f'[judges.local]\nspec = "openai:m@{url}"\n')
    with pytest.raises(JudgeConfigError, match=r"judges.toml: \[judges.local\]: .*is not a valid URL"):
        load_judges_file(judges)
