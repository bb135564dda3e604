"""Accounts tests: no role list or server secret leaks in from the machine's environment."""

from __future__ import annotations

import pytest

from core.accounts.sources import ENV_NAMES, SECRET_KEY_NAME


@pytest.fixture(autouse=True)
def _no_accounts_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ENV_NAMES.values(), SECRET_KEY_NAME):
        monkeypatch.delenv(name, raising=False)
