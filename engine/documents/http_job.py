"""The built-in `http` job of chart documents: POST the run to a URL, its answer is the outcome.

The body is `{run_id, state, attempt, input}` as JSON. With `secret: NAME` in the
document, the request is signed with the value of the environment variable
`SIGNOFF_SECRET_<NAME>` (a document never holds a secret): `Signoff-Signature: t=<unix time>,
v1=<hex HMAC-SHA256 of "<t>.<body>">`. `Idempotency-Key` is the run id and state, the same on
every attempt, so the receiver can drop repeats. A 2xx answer's JSON object (or nothing) becomes
the success event's data; a timeout, a dropped connection, 408, 429 or a 5xx is transient
(retried with backoff); any other answer, or a 2xx whose body is not a JSON object within
the size limit, fails the job for good. The receiver's answer is input too. With
SIGNOFF_HTTP_ALLOWED_HOSTS set, a document may only name those hosts (checked when it is
deployed, and again before each call).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
import msgspec

from signoff.engine.model.jobs import (
    JobContext,
    JobKind,
    JobOutcome,
    PermanentJobError,
    TransientJobError,
)

KIND = "http"
MAX_ANSWER_BYTES = 32 * 1024
TRANSIENT = frozenset({408, 425, 429})
_ENCODER = msgspec.json.Encoder()


def secret_variable(name: str) -> str:
    return f"SIGNOFF_SECRET_{name.upper()}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def host_allowed(url: str, patterns: Sequence[str]) -> bool:
    """Whether `url`'s host is one of `patterns` (`pay.example.com`, `*.example.com`, `*`);
    no patterns: any host."""
    if not patterns:
        return True
    host = (urlsplit(url).hostname or "").lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


async def call(ctx: JobContext, allowed_hosts: Sequence[str] = ()) -> JobOutcome:
    p = ctx.payload
    if not host_allowed(str(p["url"]), allowed_hosts):
        raise PermanentJobError(
            f"{p['url']}: its host is not in SIGNOFF_HTTP_ALLOWED_HOSTS, so it is not called"
        )
    body = _ENCODER.encode(
        {"run_id": ctx.run_id, "state": p.get("state"), "attempt": ctx.attempt, "input": ctx.input}
    )
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": f"{ctx.run_id}:{p.get('state')}",
        "User-Agent": "signoff",
    }
    if p.get("secret"):
        variable = secret_variable(str(p["secret"]))
        secret = os.environ.get(variable)
        if not secret:
            raise PermanentJobError(f"{variable} is not set, so the request cannot be signed")
        headers["Signoff-Signature"] = sign(secret, int(time.time()), body)
    try:
        async with (
            httpx.AsyncClient(timeout=float(p.get("timeout_s", 10.0))) as client,
            client.stream("POST", str(p["url"]), content=body, headers=headers) as answer,
        ):
            content = await _bounded(answer)
    except httpx.TimeoutException as exc:
        slow = type(exc).__name__
        raise TransientJobError(f"{p['url']} did not answer in time ({slow})") from exc
    except httpx.TransportError as exc:
        raise TransientJobError(f"{p['url']} could not be reached: {exc!r}") from exc
    status = answer.status_code
    if status >= 500 or status in TRANSIENT:
        raise TransientJobError(f"{p['url']} answered {status}")
    if not 200 <= status < 300:
        raise PermanentJobError(f"{p['url']} answered {status}: {content[:200]!r}")
    return JobOutcome(str(p["success"]), _data(content))


async def _bounded(answer: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise PermanentJobError(f"the answer is over {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _data(content: bytes) -> dict[str, object]:
    if not content.strip():
        return {}
    try:
        data = msgspec.json.decode(content)
    except msgspec.DecodeError:
        raise PermanentJobError("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise PermanentJobError(f"the answer is JSON but not an object ({type(data).__name__})")
    return data


def http_job(allowed_hosts: Sequence[str] = ()) -> JobKind:
    """The `http` kind; each job's document says its URL, events, timeout and retries. With
    `allowed_hosts`, it calls only those hosts."""
    hosts = tuple(allowed_hosts)

    async def handler(ctx: JobContext) -> JobOutcome:
        return await call(ctx, hosts)

    return JobKind(KIND, handler, failure_event="failed")
