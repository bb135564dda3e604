"""Provider callbacks ("webhooks"): the address a job's create carries, and what a callback may do.

With ``IMAGE_STUDIO_PUBLIC_URL`` set, a job on a provider that calls back (core.today, Apiframe,
EvoLink: ``Provider.accepts_callback``) is created with ``<public url>/hooks/<provider>/<job id>/<token>``,
the token an HMAC of the job id under this install's secret, so nobody can guess another job's
address. A callback is never trusted for its content: an accepted one only wakes the job's worker,
which asks the provider once (one status read) and finishes the job through the claims as any
poll would. Refused: an unknown job or provider, a wrong token (forged), a bad Apiframe signature,
a job already finished, and a body already received for that job (replayed). Polling stays as
the fallback, slower while a callback is expected.

The secret is the first of ``IMAGE_STUDIO_SECRET_KEY`` when set (give every app process the same
one), else a random one kept in the data directory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import config
from core.history.store import Store
from core.history.views import JobView

__all__ = [
    "CALLBACK_PROVIDERS",
    "POLL_SLOWDOWN",
    "Receiver",
    "Verdict",
    "apiframe_signature_ok",
    "callback_url",
    "token_for",
]

CALLBACK_PROVIDERS = frozenset({"coretoday", "apiframe", "evolink"})
# While a callback is expected, polls wait this many times longer (at least POLL_FLOOR_SECONDS).
POLL_SLOWDOWN = 5.0
POLL_FLOOR_SECONDS = 15.0
_SEEN_MAX = 4096  # bodies remembered to refuse replays


def _secret() -> bytes:
    value, _ = config.get_secret("IMAGE_STUDIO_SECRET_KEY")
    if value:
        return hashlib.sha256(b"image-studio webhooks\0" + value.split(",")[0].strip().encode()).digest()
    path = Path(config.data_dir()) / "webhook.secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_bytes(secrets.token_bytes(32))
    return path.read_bytes()


def token_for(provider: str, job_id: str, secret: bytes | None = None) -> str:
    digest = hmac.new(secret or _secret(), f"{provider}:{job_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def callback_url(provider: str, job_id: str) -> str | None:
    """The address a create for ``job_id`` carries, or None (no public address, or a provider that
    does not call back)."""
    base = config.public_url()
    if base is None or provider not in CALLBACK_PROVIDERS:
        return None
    return f"{base}/hooks/{provider}/{job_id}/{token_for(provider, job_id)}"


def apiframe_signature_ok(api_key: str, raw: bytes, signature: str) -> bool:
    """Apiframe's X-Webhook-Signature: HMAC-SHA256 of the raw body keyed with the SHA-256 of the API key.
    Its docs name neither the key's form nor the signature's encoding: hex or base64 of either key form."""
    given = signature.strip().removeprefix("sha256=")
    digest = hashlib.sha256(api_key.encode())
    for key in (digest.digest(), digest.hexdigest().encode()):
        mac = hmac.new(key, raw, hashlib.sha256).digest()
        for shown in (mac.hex(), base64.b64encode(mac).decode()):
            if hmac.compare_digest(shown, given):
                return True
    return False


@dataclass(frozen=True)
class Verdict:
    status: int  # the HTTP status the route answers
    reason: str  # what happened, for the log and the answer


# The provider's job id in each callback body (checked against the stored one, never trusted further).
_BODY_ID = {"coretoday": "id", "apiframe": "jobId", "evolink": "id"}


class Receiver:
    """Checks one callback and wakes its job; ``nudge(job_id)`` wakes a worker (False: none here)."""

    def __init__(self, store: Store, nudge: Callable[[str], bool], key_for: Callable[[JobView], str | None],
                 secret: bytes | None = None) -> None:
        self.store = store
        self.nudge = nudge
        self.key_for = key_for
        self.secret = secret
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def receive(self, provider: str, job_id: str, token: str, raw: bytes, headers: Mapping[str, str]) -> Verdict:
        if provider not in CALLBACK_PROVIDERS:
            return Verdict(404, "no such provider")
        if not hmac.compare_digest(token, token_for(provider, job_id, self.secret)):
            return Verdict(403, "forged: the token does not match this job")
        job = self.store.get_job(job_id)
        if job is None or job.provider != provider:
            return Verdict(404, "no such job")
        refused = self._check_body(job, raw, headers)
        if refused is not None:
            return refused
        if job.done:
            return Verdict(409, "replayed: the job has already finished")
        with self._lock:
            key = (job_id, hashlib.sha256(raw).hexdigest())
            if key in self._seen:
                return Verdict(409, "replayed: this callback was already received")
            self._seen[key] = None
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
        if not self.nudge(job_id):
            return Verdict(202, "accepted; the job is not driven in this process, polling will find it")
        return Verdict(202, "accepted; the job is confirmed by one status read")

    def _check_body(self, job: JobView, raw: bytes, headers: Mapping[str, str]) -> Verdict | None:
        if job.provider == "apiframe":
            key = self.key_for(job)
            signature = headers.get("x-webhook-signature", "")
            if not key or not signature or not apiframe_signature_ok(key, raw, signature):
                return Verdict(403, "forged: the Apiframe signature does not match")
        try:
            body: Any = json.loads(raw)
        except ValueError:
            return Verdict(400, "not JSON")
        said = body.get(_BODY_ID[job.provider]) if isinstance(body, dict) else None
        if job.provider_job_id and said is not None and said != job.provider_job_id:
            return Verdict(403, "forged: the body names another provider job")
        return None
