"""Alibaba Cloud's V3 request signature (ACS3-HMAC-SHA256), checked as a service checks it, from Alibaba's
documented algorithm rather than the SDK's code: the canonical request over the method, the encoded path, the
sorted query, the signed headers (which must include ``host``, ``content-type`` and every ``x-acs-*``
header) and the body's SHA-256 (which must match ``x-acs-content-sha256``), signed with the access key's
secret. The local twins of OpenAPI services (tests/fake_fc.py, tests/fake_emr.py) share it; each says which
error codes its service answers with."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from tests.fake_http import RecordedRequest

MAX_CLOCK_SKEW_S = 15 * 60


class Refusal(Exception):
    """An error answer: the HTTP status and the service's error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class SignatureCodes:
    """The error codes a service answers a refused signature with (they differ between services)."""

    unknown_key: str = "InvalidAccessKeyId.NotFound"
    bad_signature: str = "SignatureDoesNotMatch"
    bad_token: str = "InvalidSecurityToken.Mismatch"


@dataclass(frozen=True)
class AcsKey:
    """The one access key a twin accepts, with the STS security token that must come with it (if any)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def check_acs3(request: RecordedRequest, key: AcsKey, codes: SignatureCodes) -> None:
    """Refuse a request that is not signed with ``key`` as Alibaba documents V3 (a Refusal, 4xx)."""
    headers = request.headers
    auth = headers.get("authorization", "")
    algorithm, _, rest = auth.partition(" ")
    if algorithm != "ACS3-HMAC-SHA256":
        raise Refusal(403, "AccessDenied", "Authorization is missing or not ACS3-HMAC-SHA256.")
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if fields.get("Credential") != key.access_key_id:
        raise Refusal(403, codes.unknown_key, f"invalid access key ID '{fields.get('Credential', '')}'")
    signed = fields.get("SignedHeaders", "").split(";")
    required = {"host", "x-acs-date", "x-acs-content-sha256", "x-acs-signature-nonce"}
    required |= {name for name in headers if name.startswith("x-acs-") or name == "content-type"}
    if not required <= set(signed) or signed != sorted(signed):
        raise Refusal(403, codes.bad_signature, "SignedHeaders must list host, content-type, x-acs-*.")
    payload = hashlib.sha256(request.raw).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        raise Refusal(403, codes.bad_signature, "x-acs-content-sha256 is not the body's SHA-256.")
    stamp = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if abs((datetime.now(UTC) - stamp).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise Refusal(403, "RequestTimeTooSkewed", "x-acs-date is too far from now.")
    query = sorted((k, v) for k, values in request.query.items() for v in values)
    canonical = "\n".join(
        [
            request.method,
            request.path or "/",  # as sent: percent-encoded by RFC 3986
            "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query),
            "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
            ";".join(signed),
            payload,
        ]
    )
    to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(key.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        raise Refusal(
            403,
            codes.bad_signature,
            "The request signature we calculated does not match the signature you provided. "
            "Check your access key and signing method",
        )
    token = headers.get("x-acs-security-token")
    if key.security_token is not None and token != key.security_token:
        raise Refusal(403, codes.bad_token, "The security token is missing or does not match the key.")
    if key.security_token is None and token is not None:
        raise Refusal(403, codes.bad_token, "A security token was sent for a long-term access key.")
