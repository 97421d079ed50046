"""Azure OpenAI, Claude on Bedrock and on Vertex AI, and Gemini end to end: `trustmh score` and `trustmh
respond` through the real SDK clients (openai.AsyncAzureOpenAI, anthropic.AsyncAnthropicBedrock and
AsyncAnthropicVertex, the OpenAI client on Gemini's compatibility endpoint) against the loopback server,
which checks each provider's URL scheme and authentication (tests/fakeapi/clouds.py). Also: how a
request's retries end on errors that a retry cannot change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judge.calls.client import IDENTICAL_SERVER_ERRORS
from judge.judges import AZURE_API_VERSION, DEFAULT_PRICES, JudgeConfigError, load_judges_file, parse_judge_spec
from tests.conftest import make_items, read_jsonl, write_jsonl
from tests.fakeapi import FakeLLMServer, FaultPlan, Reply
from tests.fakeapi.clouds import BEDROCK_VERSION, GOOGLE_ACCESS_TOKEN, VERTEX_VERSION
from tests.fakeapi.judge_script import judged_response, scripted_answerer
from tests.fakeapi.protocol import default_answerer

pytestmark = pytest.mark.timeout(120)

CLOUD_KEY = "cloud-test-SECRET-key-0123456789"
AWS_KEY_ID = "AKIDEXAMPLETRUSTMH01"
AWS_SECRET = "aws-test-SECRET-wJalrXUtnFEMI/K7MDENG"
ENTRA_TOKEN = "eyJ0eXAiOiJKV1Qi.entra-test-SECRET"
SECRETS = (CLOUD_KEY, AWS_SECRET, ENTRA_TOKEN, GOOGLE_ACCESS_TOKEN)
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"

CLOUD_VARIABLES = (
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "ANTHROPIC_VERTEX_BASE_URL",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLOUD_ML_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GEMINI_API_KEY",
)


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, judge_env: Path) -> pytest.MonkeyPatch:
    """No cloud credentials from the machine: AWS and Google config files pointed at nothing."""
    for name in CLOUD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    from anthropic.lib.bedrock import _auth

    _auth._get_session.cache_clear()  # the SDK keeps one boto3 session (and its credentials) per process
    return monkeypatch


@pytest.fixture
def cloud_server() -> Any:
    with FakeLLMServer(answerer=scripted_answerer, api_key=CLOUD_KEY) as server:
        server.cloud_auth.aws_access_key_id = AWS_KEY_ID
        server.cloud_auth.aws_region = "us-west-2"
        server.cloud_auth.aws_secret_access_key = AWS_SECRET  # signatures are recomputed and compared
        yield server


def answer_payload(record: Any) -> dict[str, Any]:
    body = record.answer.json
    if record.provider == "openai":
        message = body["choices"][0]["message"]
        calls = message.get("tool_calls")
        return json.loads(calls[0]["function"]["arguments"] if calls else message["content"])
    return next(block["input"] for block in body["content"] if block["type"] == "tool_use")


def score_with(tmp_path: Path, run_cli: Any, server: FakeLLMServer, toml: str, judge: str) -> Path:
    """`trustmh score` of four items with the one judge of a judges file; the verdicts must be what the
    server answered; returns the out folder."""
    judges = tmp_path / "judges.toml"
    judges.write_text(toml, encoding="utf-8")
    items = write_jsonl(tmp_path / "items.jsonl", make_items(4))
    out = tmp_path / "out"
    result = run_cli("score", items, "--judges-file", judges, "--judges", judge, "--out", out, "-q")
    assert result.code == 0, result.stderr
    answered = [r for r in server.requests if r.status == 200 and r.cloud != "google-oauth"]
    assert len(answered) == 4
    sent = {judged_response(r.parsed): answer_payload(r) for r in answered}
    by_id = {item["id"]: item for item in make_items(4)}
    rows = [r for r in read_jsonl(out / "verdicts.jsonl") if r["status"] == "ok"]
    assert rows and {r["judge"] for r in rows} == {judge}
    for row in rows:
        payload = sent[by_id[row["item_id"]]["response"]][row["criterion"]]
        assert (row["score"], row["rationale"], row["evidence"]) == (
            payload["score"],
            payload["rationale"],
            payload["evidence"],
        )
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_text(encoding="utf-8", errors="replace")
            assert not any(secret in data for secret in SECRETS), path
    return out


def test_azure_with_a_key_from_the_portals_target_uri(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("AZURE_OPENAI_API_KEY", CLOUD_KEY)
    uri = f"{cloud_server.base_url}/openai/deployments/gpt4o-prod/chat/completions?api-version=2025-01-01-preview"
    toml = f'[judges.azure]\nspec = "azure:gpt4o-prod@{uri}"\n'
    score_with(tmp_path, run_cli, cloud_server, toml, "azure")
    for record in cloud_server.requests:
        assert record.cloud == "azure"
        assert record.path == "/openai/deployments/gpt4o-prod/chat/completions"
        assert record.query == "api-version=2025-01-01-preview"
        assert record.headers["api-key"] == CLOUD_KEY and "authorization" not in record.headers
        assert record.parsed is not None and record.parsed.mode == "tools"


def test_azure_with_an_entra_id_token_and_json_schema_mode(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("AZURE_OPENAI_AD_TOKEN", CLOUD_KEY)  # the server accepts this one value
    cloud_env.setenv("AZURE_OPENAI_ENDPOINT", cloud_server.base_url)
    toml = '[judges.azure-entra]\nspec = "azure:gpt4o-eu"\nmode = "json_schema"\n'
    score_with(tmp_path, run_cli, cloud_server, toml, "azure-entra")
    for record in cloud_server.requests:
        assert record.path == "/openai/deployments/gpt4o-eu/chat/completions"
        assert record.query == f"api-version={AZURE_API_VERSION}"
        assert record.headers["authorization"] == f"Bearer {CLOUD_KEY}" and "api-key" not in record.headers
        assert record.parsed is not None and record.parsed.mode == "json_schema"


def test_bedrock_with_an_api_key(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("AWS_BEARER_TOKEN_BEDROCK", CLOUD_KEY)
    toml = f'[judges.claude-bedrock]\nspec = "bedrock:{BEDROCK_MODEL}@{cloud_server.base_url}"\nregion = "us-west-2"\n'
    score_with(tmp_path, run_cli, cloud_server, toml, "claude-bedrock")
    for record in cloud_server.requests:
        assert record.cloud == "bedrock" and record.path == f"/model/{BEDROCK_MODEL}/invoke"
        assert record.headers["authorization"] == f"Bearer {CLOUD_KEY}"
        assert record.body["anthropic_version"] == BEDROCK_VERSION and "model" not in record.body


def test_bedrock_signed_with_aws_credentials(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    pytest.importorskip("boto3")
    cloud_env.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    cloud_env.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    toml = f'[judges.claude-bedrock]\nspec = "bedrock:{BEDROCK_MODEL}@{cloud_server.base_url}"\nregion = "us-west-2"\n'
    score_with(tmp_path, run_cli, cloud_server, toml, "claude-bedrock")
    for record in cloud_server.requests:
        auth = record.headers["authorization"]
        assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
        assert "/us-west-2/bedrock/aws4_request" in auth
        assert "x-amz-date" in record.headers and AWS_SECRET not in auth


@pytest.mark.parametrize(("region", "secret"), [("eu-west-1", AWS_SECRET), ("us-west-2", "another-SECRET")])
def test_a_bedrock_signature_of_another_region_or_secret_is_refused_with_the_servers_message(
    region: str, secret: str, tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    pytest.importorskip("boto3")
    cloud_env.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    cloud_env.setenv("AWS_SECRET_ACCESS_KEY", secret)
    judges = tmp_path / "judges.toml"
    judges.write_text(f'[judges.b]\nspec = "bedrock:{BEDROCK_MODEL}@{cloud_server.base_url}"\nregion = "{region}"\n')
    items = write_jsonl(tmp_path / "items.jsonl", make_items(1))
    result = run_cli("score", items, "--judges-file", judges, "--out", tmp_path / "out", "-q")
    assert result.code == 3, result.stderr  # failed verdicts, recorded with the server's reason
    rows = read_jsonl(tmp_path / "out" / "verdicts.jsonl")
    assert {r["status"] for r in rows} == {"failed"}
    assert "signature we calculated does not match" in rows[0]["error"]
    assert len(cloud_server.requests) == 1  # a 403 is not sent again


def test_vertex_with_an_access_token_from_api_key_env(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("VERTEX_TOKEN", CLOUD_KEY)
    toml = (
        f'[judges.claude-vertex]\nspec = "vertex:{VERTEX_MODEL}@{cloud_server.vertex_base_url}"\n'
        'region = "us-east5"\nproject = "trustmh-test"\napi_key_env = "VERTEX_TOKEN"\n'
    )
    score_with(tmp_path, run_cli, cloud_server, toml, "claude-vertex")
    for record in cloud_server.requests:
        assert record.cloud == "vertex"
        assert record.path == (
            f"/v1/projects/trustmh-test/locations/us-east5/publishers/anthropic/models/{VERTEX_MODEL}:rawPredict"
        )
        assert record.headers["authorization"] == f"Bearer {CLOUD_KEY}"
        assert record.body["anthropic_version"] == VERTEX_VERSION and "model" not in record.body


def service_account_file(path: Path, token_uri: str) -> Path:
    """A service account key file as Google Cloud issues it, with a fresh RSA key and the loopback token URI."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": "trustmh-adc",
        "private_key_id": "0123456789abcdef",
        "private_key": pem.decode("ascii"),
        "client_email": "judge@trustmh-adc.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def test_vertex_with_google_application_default_credentials(
    tmp_path: Path, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    """google-auth reads the key file GOOGLE_APPLICATION_CREDENTIALS names, trades a signed JWT for an access
    token at the file's token_uri (the loopback server), and the SDK sends that token to the project of the file."""
    pytest.importorskip("google.auth")
    pytest.importorskip("cryptography")  # google-auth signs the service account's JWT with it
    with FakeLLMServer(answerer=scripted_answerer) as server:
        credentials = service_account_file(tmp_path / "adc.json", f"{server.base_url}/token")
        cloud_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
        cloud_env.setenv("CLOUD_ML_REGION", "europe-west1")
        toml = f'[judges.v]\nspec = "vertex:{VERTEX_MODEL}@{server.vertex_base_url}"\n'
        score_with(tmp_path, run_cli, server, toml, "v")
        token_requests = [r for r in server.requests if r.cloud == "google-oauth"]
        assert token_requests and all(r.status == 200 for r in token_requests)
        vertex = [r for r in server.requests if r.cloud == "vertex"]
        assert len(vertex) == 4
        for record in vertex:
            assert "/projects/trustmh-adc/locations/europe-west1/" in record.path
            assert record.headers["authorization"] == f"Bearer {GOOGLE_ACCESS_TOKEN}"


@pytest.mark.parametrize("mode", ["tools", "json_schema"])
def test_gemini_on_its_openai_compatible_endpoint_priced_at_its_list_price(
    mode: str, tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("GEMINI_API_KEY", CLOUD_KEY)
    toml = f'[judges.gemini]\nspec = "gemini:gemini-2.5-flash@{cloud_server.gemini_base_url}"\nmode = "{mode}"\n'
    out = score_with(tmp_path, run_cli, cloud_server, toml, "gemini")
    for record in cloud_server.requests:
        assert record.cloud == "gemini" and record.path == "/v1beta/openai/chat/completions"
        assert record.headers["authorization"] == f"Bearer {CLOUD_KEY}"
        assert record.parsed is not None and record.parsed.mode == mode
    price_in, price_out = DEFAULT_PRICES["gemini-2.5-flash"]
    expected = sum(r.input_tokens * price_in + r.output_tokens * price_out for r in cloud_server.requests) / 1e6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cost_usd_this_run"] == pytest.approx(expected, abs=1e-6)  # the summary rounds to 6 places


def test_cloud_targets_answer_through_the_same_sdk_paths(
    tmp_path: Path, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    """`trustmh respond` with one target per cloud provider: each answer is what its endpoint said."""
    cloud_env.setenv("AZURE_OPENAI_API_KEY", CLOUD_KEY)
    cloud_env.setenv("AWS_BEARER_TOKEN_BEDROCK", CLOUD_KEY)
    cloud_env.setenv("GEMINI_API_KEY", CLOUD_KEY)
    cloud_env.setenv("VERTEX_TOKEN", CLOUD_KEY)
    with FakeLLMServer(answerer=default_answerer, api_key=CLOUD_KEY) as server:
        targets = tmp_path / "targets.toml"
        targets.write_text(
            f'[targets.azure]\nspec = "azure:chat-prod@{server.base_url}"\nsystem_prompt = "Be kind."\n'
            f'[targets.bedrock]\nspec = "bedrock:{BEDROCK_MODEL}@{server.base_url}"\nregion = "us-west-2"\n'
            f'[targets.vertex]\nspec = "vertex:{VERTEX_MODEL}@{server.vertex_base_url}"\nregion = "global"\n'
            'project = "p1"\napi_key_env = "VERTEX_TOKEN"\n'
            f'[targets.gemini]\nspec = "gemini:gemini-2.5-flash-lite@{server.gemini_base_url}"\n'
        )
        prompts = write_jsonl(
            tmp_path / "prompts.jsonl",
            [{"id": f"p-{i}", "pillar": "safety", "prompt": f"I feel low (case {i})."} for i in range(3)],
        )
        out = tmp_path / "out"
        result = run_cli("respond", prompts, "--targets-file", targets, "--out", out, "-q")
        assert result.code == 0, result.stderr
        assert {r.cloud for r in server.requests} == {"azure", "bedrock", "vertex", "gemini"}
        assert all(r.status == 200 for r in server.requests)
        said = {}
        for record in server.requests:
            body = record.answer.json
            text = (
                body["choices"][0]["message"]["content"]
                if record.provider == "openai"
                else "".join(b["text"] for b in body["content"])
            )
            said[(record.cloud, record.parsed.last_user_text)] = text
        responses = read_jsonl(out / "responses.jsonl")
        assert len(responses) == 12
        for row in responses:
            prompt = f"I feel low (case {row['meta']['prompt_id'].split('-')[1]})."
            assert row["response"] == said[(row["target"], prompt)]


# ---------------------------------------------------------------- specs and settings


def test_azure_target_uri_naming_another_deployment_is_refused() -> None:
    with pytest.raises(JudgeConfigError, match="names deployment 'other'"):
        parse_judge_spec("azure:gpt4o@https://r.openai.azure.com/openai/deployments/other/chat/completions")
    with pytest.raises(JudgeConfigError, match=r"takes only \?api-version"):
        parse_judge_spec("azure:gpt4o@https://r.openai.azure.com/?api-version=2024-10-21&api-key=k")
    with pytest.raises(JudgeConfigError, match="is an azure: judge; write azure:gpt4o@"):
        parse_judge_spec("openai:gpt4o@https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21")
    with pytest.raises(JudgeConfigError, match="for Azure's /openai/v1 API use openai:MODEL@"):
        parse_judge_spec("azure:gpt4o@https://r.openai.azure.com/openai/v1")
    spec = parse_judge_spec("azure:gpt4o@https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-06-01")
    assert (spec.base_url, spec.api_version) == ("https://r.openai.azure.com", "2024-06-01")
    assert spec.name == "azure:gpt4o@r.openai.azure.com"


def test_a_setting_of_another_provider_is_refused_naming_the_table(tmp_path: Path) -> None:
    path = tmp_path / "judges.toml"
    path.write_text('[judges.x]\nspec = "openai:gpt-4.1-mini"\nregion = "us-east-1"\n')
    with pytest.raises(JudgeConfigError, match=r"\[judges.x\]: region is a setting of bedrock and vertex judges"):
        load_judges_file(path)


def test_missing_cloud_credentials_say_what_to_export(cloud_env: pytest.MonkeyPatch) -> None:
    from judge.calls.client import Connection

    with pytest.raises(JudgeConfigError, match=r"AZURE_OPENAI_API_KEY is not set.*AZURE_OPENAI_AD_TOKEN"):
        Connection(parse_judge_spec("azure:gpt4o@https://r.openai.azure.com"))
    with pytest.raises(JudgeConfigError, match="GEMINI_API_KEY is not set"):
        Connection(parse_judge_spec("gemini:gemini-2.5-flash"))
    with pytest.raises(JudgeConfigError, match="no Vertex AI region"):
        Connection(parse_judge_spec(f"vertex:{VERTEX_MODEL}"))
    cloud_env.setenv("AZURE_OPENAI_API_KEY", "k")
    with pytest.raises(JudgeConfigError, match="no Azure OpenAI endpoint"):
        Connection(parse_judge_spec("azure:gpt4o"))


def test_batch_with_a_provider_without_a_batch_api_stops_before_sending(
    tmp_path: Path, cloud_server: FakeLLMServer, cloud_env: pytest.MonkeyPatch, run_cli: Any
) -> None:
    cloud_env.setenv("GEMINI_API_KEY", CLOUD_KEY)
    items = write_jsonl(tmp_path / "items.jsonl", make_items(2))
    judge = f"gemini:gemini-2.5-flash@{cloud_server.gemini_base_url}"
    result = run_cli("score", items, "--judges", judge, "--batch", "--out", tmp_path / "out", "-q")
    assert result.code == 2
    assert "--batch drives OpenAI's and Anthropic's batch APIs only" in result.stderr
    assert cloud_server.requests == []


# ---------------------------------------------------------------- errors a retry cannot change


def retry_run(tmp_path: Path, run_cli: Any, server: FakeLLMServer) -> dict[str, Any]:
    judges = tmp_path / "judges.toml"
    judges.write_text(
        f'[judges.j]\nspec = "openai:gpt-4.1-mini@{server.openai_base_url}"\nmax_attempts = 6\n'
        "backoff_initial_s = 0\nbackoff_max_s = 0\n"
    )
    items = write_jsonl(tmp_path / "items.jsonl", make_items(1))
    out = tmp_path / "out"
    run_cli("score", items, "--judges-file", judges, "--out", out, "-q")
    return read_jsonl(out / "verdicts.jsonl")[0]


def test_a_server_error_repeated_identically_stops_the_retries_with_its_message(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    fault = Reply.error(500, "server_error", "model weights failed to load on this deployment")
    with FakeLLMServer(answerer=scripted_answerer, faults=FaultPlan.first(100, fault)) as server:
        row = retry_run(tmp_path, run_cli, server)
        assert len(server.requests) == IDENTICAL_SERVER_ERRORS < 6
    assert row["status"] == "failed"
    assert "model weights failed to load on this deployment" in row["error"]
    assert f"the same answer {IDENTICAL_SERVER_ERRORS} times running" in row["error"]


def test_server_errors_that_change_are_retried_to_the_last_attempt(
    tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    def changing(req: Any) -> Reply:
        return Reply.error(500, "server_error", f"worker {req.ordinal} crashed")

    with FakeLLMServer(answerer=scripted_answerer, faults=FaultPlan.first(100, changing)) as server:
        row = retry_run(tmp_path, run_cli, server)
        assert len(server.requests) == 6
    assert "gave up after 6 attempts" in row["error"]


@pytest.mark.parametrize(("status", "sent"), [(400, 1), (422, 1), (409, 6), (503, 6)])
def test_a_4xx_fails_at_once_while_conflicts_and_overload_are_retried(
    status: int, sent: int, tmp_path: Path, judge_env: Path, run_cli: Any
) -> None:
    fault = Reply.error(status, None, f"the server's own words for {status}")
    with FakeLLMServer(answerer=scripted_answerer, faults=FaultPlan.first(100, fault)) as server:
        row = retry_run(tmp_path, run_cli, server)
        assert len(server.requests) == sent
    assert row["status"] == "failed" and f"the server's own words for {status}" in row["error"]


# ---------------------------------------------------------------- the fake clouds refuse what the real ones refuse


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "words"),
    [
        ("/openai/deployments/d/chat/completions", {"api-key": CLOUD_KEY}, {"messages": []}, 404, "Resource not found"),
        ("/openai/deployments/d/chat/completions?api-version=2024-10-21", {}, {"messages": []}, 401, "Access denied"),
        ("/openai/deployments/d/chat/completions?api-version=latest", {"api-key": CLOUD_KEY}, {}, 400, "not supported"),
        (
            f"/model/{BEDROCK_MODEL}/invoke",
            {"authorization": f"Bearer {CLOUD_KEY}"},
            {"model": "x", "anthropic_version": BEDROCK_VERSION, "max_tokens": 5, "messages": []},
            400,
            "extraneous key [model]",
        ),
        (f"/model/{BEDROCK_MODEL}/invoke", {}, {}, 403, "Missing Authentication Token"),
        (
            f"/v1/projects/p/locations/global/publishers/anthropic/models/{VERTEX_MODEL}:rawPredict",
            {"authorization": f"Bearer {CLOUD_KEY}"},
            {"anthropic_version": "2023-06-01", "max_tokens": 5, "messages": []},
            400,
            "vertex-2023-10-16",
        ),
        ("/v1beta/openai/chat/completions", {"authorization": "Bearer wrong"}, {}, 401, "API key not valid"),
    ],
)
def test_the_fake_clouds_refuse_a_wrong_url_key_or_body(
    path: str, headers: dict[str, str], body: dict[str, Any], status: int, words: str, cloud_server: FakeLLMServer
) -> None:
    import httpx

    answer = httpx.post(f"{cloud_server.base_url}{path}", headers=headers, json=body, timeout=10)
    assert answer.status_code == status and words in answer.text
