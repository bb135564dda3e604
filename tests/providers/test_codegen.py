"""'Copy as code' snippets are runnable: executed against the emulator they create a real job."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess

import pytest

from core.exports.codegen import as_curl, as_python
from providers.registry import PROVIDERS
from providers.types import ImageRequest, InputImage

REQUEST = ImageRequest(prompt='A poster that says "true" and null', model="gpt-image-2", size="3:2",
                       quality="medium", output_format="webp")


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_python_snippet_creates_one_job(provider, emu, monkeypatch):
    monkeypatch.setenv(PROVIDERS[provider].key_env, "sk-test-snippet")
    code = as_python(provider, REQUEST, base_url=emu.url(provider))
    assert "sk-test-snippet" not in code and "os.environ[" in code
    before = emu.stats()["creates"].get(provider, 0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"<{provider} snippet>", "exec"), {})
    assert out.getvalue().strip().startswith("{")
    assert emu.stats()["creates"].get(provider, 0) == before + 1


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_curl_snippet_creates_one_job(provider, emu):
    command = as_curl(provider, REQUEST, base_url=emu.url(provider))
    env = {**os.environ, PROVIDERS[provider].key_env: "sk-test-snippet"}
    before = emu.stats()["creates"].get(provider, 0)
    done = subprocess.run(["bash", "-c", command + " --fail --silent --show-error"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert emu.stats()["creates"].get(provider, 0) == before + 1


def test_edit_snippet_names_the_file_and_never_the_bytes():
    edit = REQUEST.with_(images=(InputImage(data=b"\x89PNG" + b"\0" * 64, mime="image/png", name="portrait.png"),))
    curl = as_curl("openai", edit)
    assert "image=@portrait.png" in curl and "/v1/images/edits" in curl
    # URL-only providers cannot take a local file: the snippet shows where a public URL goes.
    assert "https://example.com/portrait.png" in as_python("apiframe", edit)
