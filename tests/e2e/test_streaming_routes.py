"""The app's own HTTP routes on its st.App, served by the real server: /healthz and the callback route."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser  # a real app server, like the browser tests


def test_healthz_and_a_forged_callback(app_server):
    with httpx.Client(timeout=30) as http:
        health = http.get(f"{app_server.url}/healthz")
        assert health.status_code == 200, health.text
        assert health.json() == {"ok": True, "database": "ok", "runner": "running"}
        forged = http.post(f"{app_server.url}/hooks/evolink/0123abcd/not-the-token", content=b'{"id": "x"}')
        assert forged.status_code == 403 and "forged" in forged.json()["result"]
        unknown = http.post(f"{app_server.url}/hooks/openai/0123abcd/whatever", content=b"{}")
        assert unknown.status_code == 404
