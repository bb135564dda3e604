"""Every write the pages make names the person acting (``by=``).

The core's write methods (submit, cancel, recheck, delete, share, rate, caps, session keys)
default to the local operator so that scripts, the bench and older tests keep working; a
page that forgot ``by=`` would therefore act as an owner once sign-in is on. This test reads
the pages' source (ui/, app_pages/, app.py) and fails on any such call without ``by=``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WRITES = {"submit", "cancel", "recheck", "delete_jobs", "delete_run", "share_jobs", "share_link",
          "set_rating", "set_caps", "supply_session_key", "mark_winner"}
# Calls on these names are not the core's write methods: Streamlit's own, and the pages' own
# wrapper (ui.studio_actions), which looks the person up itself; its calls into the core are
# among those read here.
NOT_CORE = {"st", "form", "executor", "pool", "studio_actions"}


def _page_sources() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "ui").rglob("*.py")), *sorted((ROOT / "app_pages").rglob("*.py"))]


def _calls_without_by(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in WRITES:
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in NOT_CORE:
            continue
        if not any(k.arg == "by" for k in node.keywords):
            found.append(f"{path.relative_to(root)}:{node.lineno} .{node.func.attr}(...)")
    return found


def test_every_write_from_a_page_names_who_acts():
    missing = [c for p in _page_sources() for c in _calls_without_by(p)]
    assert not missing, "writes that would act as the operator: " + ", ".join(missing)


def test_the_check_sees_a_call_without_by(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("runner.cancel(job_id)\nstore.delete_jobs(ids, by=who)\nstudio_actions.submit(p)\n")
    assert _calls_without_by(page, tmp_path) == ["page.py:1 .cancel(...)"]
