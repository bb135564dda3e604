"""Run as a separate process: what a restarted app's runner (or a second app process) reads from the database.

``python key_child.py <database url> <holder> <provider> <email>`` prints the key it opens (with the
server secret from the environment) and the role the directory gives ``email``, as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from core import db  # noqa: E402
from core.accounts import Accounts, KeyUnreadable, SecretKeyMissing, open_key  # noqa: E402
from core.accounts.sources import configured_roles  # noqa: E402


def main() -> None:
    url, holder, provider, email = sys.argv[1:5]
    engine = db.get_engine(url)
    try:
        key: str | None = open_key(engine, holder, provider, secrets={})
        error = None
    except (KeyUnreadable, SecretKeyMissing) as exc:
        key, error = None, type(exc).__name__
    role = Accounts(engine, lambda: configured_roles({}).rules).role_of(email)
    print(json.dumps({"key": key, "error": error, "role": role}))


if __name__ == "__main__":
    main()
