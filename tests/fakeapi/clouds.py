"""The cloud providers' URL schemes and authentication, in front of the OpenAI and Anthropic wire formats.

Azure OpenAI and Gemini's OpenAI-compatible endpoint take OpenAI's Chat Completions body; Claude on
Amazon Bedrock and on Google Vertex AI takes Anthropic's Messages body with the model in the URL and
`anthropic_version` in the body. What is checked here follows the providers' documentation:

- Azure OpenAI: POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...,
  the resource key in an `api-key` header or a Microsoft Entra ID token as `Authorization: Bearer`
  (learn.microsoft.com/azure/ai-services/openai/reference).
- Bedrock: POST /model/{modelId}/invoke, body `anthropic_version: "bedrock-2023-05-31"` and no `model`,
  signed with AWS Signature Version 4 for the service `bedrock` (`Authorization: AWS4-HMAC-SHA256
  Credential=KEY/DATE/REGION/bedrock/aws4_request, SignedHeaders=..., Signature=...` and `X-Amz-Date`)
  or an Amazon Bedrock API key as a bearer token (docs.aws.amazon.com/bedrock/latest/userguide/
  model-parameters-anthropic-claude-messages.html, .../api-keys-use.html).
- Vertex AI: POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict,
  body `anthropic_version: "vertex-2023-10-16"` and no `model`, a Google OAuth access token as bearer
  (docs.anthropic.com/en/api/claude-on-vertex-ai, cloud.google.com/vertex-ai/generative-ai/docs/
  partner-models/claude/use-claude).
- Gemini: POST /v1beta/openai/chat/completions with the Gemini API key as bearer
  (ai.google.dev/gemini-api/docs/openai).

Pure: no sockets; `server.py` routes requests here.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from .protocol import Answer, Provider, error_answer

Cloud = Literal["azure", "bedrock", "vertex", "gemini"]
BEDROCK_VERSION = "bedrock-2023-05-31"
VERTEX_VERSION = "vertex-2023-10-16"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_ROUTES: list[tuple[Cloud, Provider, re.Pattern[str]]] = [
    ("azure", "openai", re.compile(r"^/openai/deployments/(?P<model>[^/]+)/chat/completions$")),
    ("gemini", "openai", re.compile(r"^/v1beta/openai/chat/completions$")),
    ("bedrock", "anthropic", re.compile(r"^/model/(?P<model>[^/]+)/invoke$")),
    (
        "vertex",
        "anthropic",
        re.compile(
            r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/anthropic/models/"
            r"(?P<model>[^/:]+):rawPredict$"
        ),
    ),
]


@dataclass(frozen=True)
class CloudRoute:
    """A request to one of the cloud providers' endpoints: which one, the API its body speaks, URL parts."""

    cloud: Cloud
    provider: Provider
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class CloudAuth:
    """What the fake clouds accept: a key or token (None: any non-empty one), and for Bedrock's SigV4
    the access key id and region the signature must be scoped to (None: any)."""

    key: str | None = None
    aws_access_key_id: str | None = None
    aws_region: str | None = None
    aws_secret_access_key: str | None = None  # when set (and botocore is installed), signatures are recomputed


def route(path: str, query: str) -> CloudRoute | None:
    for cloud, provider, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            return CloudRoute(cloud, provider, params, parse_qs(query, keep_blank_values=True))
    return None


def _bearer(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _azure_error(status: int, code: str, message: str) -> Answer:
    return Answer(status=status, json={"error": {"code": code, "message": message}}, headers={})


def _google_error(status: int, state: str, message: str) -> Answer:
    return Answer(status=status, json={"error": {"code": status, "message": message, "status": state}}, headers={})


def _aws_error(status: int, kind: str, message: str) -> Answer:
    return Answer(
        status=status,
        json={"message": message},
        headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
    )


def check(
    r: CloudRoute, headers: Mapping[str, str], auth: CloudAuth, require_auth: bool, signed: SignedRequest
) -> Answer | None:
    """The error the provider would answer for this URL and these headers, or None."""
    if r.cloud == "azure":
        version = (r.query.get("api-version") or [""])[0]
        if not version:
            return _azure_error(404, "404", "Resource not found")
        if not _API_VERSION.match(version):
            return _azure_error(400, "BadRequest", "API version not supported")
        key = headers.get("api-key", "") or _bearer(headers)
        if require_auth and (not key or (auth.key is not None and key != auth.key)):
            return _azure_error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                "key for an active subscription and use a correct regional API endpoint for your resource.",
            )
        return None
    if r.cloud == "gemini":
        key = _bearer(headers)
        if require_auth and (not key or (auth.key is not None and key != auth.key)):
            return error_answer(
                "openai", 401, "invalid_request_error", "API key not valid. Please pass a valid API key."
            )
        return None
    if r.cloud == "vertex":
        token = _bearer(headers)
        if require_auth and (not token or (auth.key is not None and token != auth.key)):
            return _google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )
        return None
    return _check_bedrock(headers, auth, require_auth, signed)


@dataclass(frozen=True)
class SignedRequest:
    """What a SigV4 signature covers besides the headers: the method, the path as sent, the body."""

    method: str
    raw_path: str
    body: bytes


def sigv4_signature(headers: Mapping[str, str], signed_headers: list[str], request: SignedRequest, auth: CloudAuth,
                    region: str) -> str:  # fmt: skip
    """The signature botocore computes for this request with the server's copy of the secret key."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws = AWSRequest(
        method=request.method,
        url=f"http://{headers['host']}{request.raw_path}",
        headers={name: headers[name] for name in signed_headers if name in headers},
        data=request.body,
    )
    aws.context["timestamp"] = headers["x-amz-date"]
    credentials = Credentials(auth.aws_access_key_id, auth.aws_secret_access_key, headers.get("x-amz-security-token"))
    signer = SigV4Auth(credentials, "bedrock", region)
    return signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)


def _check_bedrock(
    headers: Mapping[str, str], auth: CloudAuth, require_auth: bool, request: SignedRequest
) -> Answer | None:
    token = _bearer(headers)
    if token:
        if auth.key is not None and token != auth.key:
            return _aws_error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        return None
    signed = _SIGV4.match(headers.get("authorization", ""))
    if signed is None:
        if not require_auth:
            return None
        return _aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    wrong = (
        signed["service"] != "bedrock"
        or "x-amz-date" not in headers
        or not set(signed["signed"].split(";")) >= {"host", "x-amz-date"}
        or (auth.aws_access_key_id is not None and signed["key"] != auth.aws_access_key_id)
        or (auth.aws_region is not None and signed["region"] != auth.aws_region)
    )
    if not wrong and auth.aws_secret_access_key is not None and importlib.util.find_spec("botocore") is not None:
        names = signed["signed"].split(";")
        wrong = sigv4_signature(headers, names, request, auth, signed["region"]) != signed["signature"]
    if wrong:
        return _aws_error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


def body_error(r: CloudRoute, body: dict[str, Any]) -> Answer | None:
    """Bedrock and Vertex take the model in the URL and the API version in the body."""
    if r.cloud == "bedrock":
        if "model" in body:
            return _aws_error(
                400,
                "ValidationException",
                "Malformed input request: extraneous key [model] is not permitted, please reformat your input and "
                "try again.",
            )
        if body.get("anthropic_version") != BEDROCK_VERSION:
            return _aws_error(
                400, "ValidationException", f"Malformed input request: anthropic_version must be {BEDROCK_VERSION}"
            )
    if r.cloud == "vertex":
        if "model" in body:
            return _google_error(400, "INVALID_ARGUMENT", "model: Extra inputs are not permitted")
        if body.get("anthropic_version") != VERTEX_VERSION:
            return _google_error(400, "INVALID_ARGUMENT", f"anthropic_version: must be {VERTEX_VERSION}")
    return None


def as_wire_body(r: CloudRoute, body: dict[str, Any]) -> dict[str, Any]:
    """The body as the OpenAI / Anthropic parser reads it: the model named in the URL put back (an Azure
    body may leave it out: the deployment decides), the cloud's own fields taken out."""
    if r.cloud == "azure":
        return {**body, "model": body.get("model", r.params["model"])}
    if r.cloud in ("bedrock", "vertex"):
        return {**{k: v for k, v in body.items() if k != "anthropic_version"}, "model": r.params["model"]}
    return body


# Google's OAuth token endpoint, as a service account's key file names it in `token_uri`: google-auth signs a
# JWT with the account's key and trades it for an access token there
# (developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests).
GOOGLE_TOKEN_PATH = "/token"
GOOGLE_ACCESS_TOKEN = "ya29.fake-access-token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def google_token(raw: bytes, token: str) -> Answer:
    form = parse_qs(raw.decode("utf-8", "replace"))
    assertion = (form.get("assertion") or [""])[0]
    if form.get("grant_type") != [JWT_BEARER] or assertion.count(".") != 2:
        return Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {})
    return Answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {})
