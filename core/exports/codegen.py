""""Copy as code": the exact job-creating request for a provider, as curl and as Python httpx.

Built from the adapter's own ``create_call`` (the same data ``submit`` sends), so
the snippet cannot drift from what the app does. It calls the base URL real jobs
call: the provider's ``*_BASE_URL`` environment variable, else its public API. The
key is always a placeholder that reads the environment variable; no key ever
reaches the snippet.
"""

from __future__ import annotations

import dataclasses
import json
import pprint
import shlex

from providers.http import CreateCall, HttpProvider
from providers.redact import redact
from providers.registry import create, provider_class
from providers.types import ImageRequest

__all__ = ["as_curl", "as_python", "configured_base_url", "create_call"]

_PLACEHOLDER_KEY = "placeholder-not-a-key"  # the adapter needs some key to build; it is swapped out below


def configured_base_url(provider: str) -> str:
    """The base URL real jobs call for ``provider``: its ``*_BASE_URL`` environment variable, else the public API.

    Read from an adapter built the way the runner builds one, so any normalising it does
    (EvoLink drops a trailing ``/v1``) is the same here.
    """
    adapter = create(provider, api_key=_PLACEHOLDER_KEY)
    try:
        return str(adapter.base_url)
    finally:
        adapter.close()


def create_call(provider: str, request: ImageRequest, *, base_url: str | None = None) -> tuple[str, CreateCall]:
    """(url, call) at the provider's configured base URL (or ``base_url``); nothing is sent or uploaded."""
    adapter = create(provider, api_key=_PLACEHOLDER_KEY, base_url=base_url)
    # A key pasted into a prompt is not written into a snippet that is shown and copied (the
    # key header itself is the environment variable's name, never a value).
    request = dataclasses.replace(request, prompt=redact(request.prompt) or "")
    try:
        if not isinstance(adapter, HttpProvider):  # every registered provider is one; a test double may not be
            raise TypeError(f"{provider} does not describe its requests, so it cannot be written as code")
        call = adapter.create_call(request, display=True)
        return f"{adapter.base_url}{call.path}", call
    finally:
        adapter.close()


def _auth(provider: str) -> tuple[str, str, str]:
    """(header name, shell value, python expression) for the provider's key header."""
    cls = provider_class(provider)
    env = cls.key_env
    header = getattr(cls, "key_header", "Authorization")
    if header == "Authorization":
        return header, f"Bearer ${env}", f'f"Bearer {{os.environ[{env!r}]}}"'
    return header, f"${env}", f"os.environ[{env!r}]"


def as_curl(provider: str, request: ImageRequest, *, base_url: str | None = None) -> str:
    url, call = create_call(provider, request, base_url=base_url)
    header, shell_value, _ = _auth(provider)
    lines = [f"curl -X POST {shlex.quote(url)}", f'-H "{header}: {shell_value}"']
    for name, value in call.headers.items():
        if name.lower() == "idempotency-key":
            # A fresh key per run; reuse the same one only when retrying that very request.
            lines.append(f'-H "{name}: $(cat /proc/sys/kernel/random/uuid)"')
        else:
            lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if call.json is not None:
        lines.append('-H "Content-Type: application/json"')
        lines.append(f"-d {shlex.quote(json.dumps(call.json, indent=2, ensure_ascii=False))}")
    for name, value in (call.data or {}).items():
        lines.append(f"-F {shlex.quote(f'{name}={value}')}")
    for field, (filename, _, mime) in call.files:
        lines.append(f"-F {shlex.quote(f'{field}=@{filename};type={mime}')}")
    return " \\\n  ".join(lines)


def as_python(provider: str, request: ImageRequest, *, base_url: str | None = None) -> str:
    url, call = create_call(provider, request, base_url=base_url)
    header, _, py_value = _auth(provider)
    headers = [f"{header!r}: {py_value}"]
    for name, value in call.headers.items():
        headers.append(f"{name!r}: str(uuid.uuid4())" if name.lower() == "idempotency-key" else f"{name!r}: {value!r}")
    uses_uuid = any(name.lower() == "idempotency-key" for name in call.headers)
    out = ["import os", *(["import uuid"] if uses_uuid else []), "", "import httpx", "",
           "response = httpx.post(", f"    {url!r},"]
    out.append("    headers={" + ", ".join(headers) + "},")
    if call.json is not None:
        body = pprint.pformat(call.json, indent=1, width=100, sort_dicts=False)
        out.append("    json=" + body.replace("\n", "\n    ") + ",")
    if call.data:
        out.append(f"    data={call.data!r},")
    if call.files:
        files = ", ".join(f"({field!r}, open({filename!r}, 'rb'))" for field, (filename, _, _) in call.files)
        out.append(f"    files=[{files}],")
    # Image models can take minutes at high quality; httpx's 5 s default would give up early.
    out.append("    timeout=600,")
    out.append(")")
    out.append("response.raise_for_status()")
    out.append("print(response.json())")
    return "\n".join(out)
