"""User and provider text on the page: always shown as text, never as Markdown or HTML, and never with a key in it.

Prompts, names, notes, file names, recipe contents and provider messages come
from visitors and from remote servers. Streamlit renders Markdown in
``st.markdown``, ``st.caption``, alerts, toasts, ``help=`` and widget labels: a
prompt ``A fox ![p](http://127.0.0.1:9/pixel.png)`` drawn there makes every
visitor's browser fetch that address. So every such string goes through ``md``
before it is drawn, or ``plain`` into a text-only element (``st.text``,
``st.code``); both take out any key (``providers.redact``: the configured ones,
this session's, and anything shaped like one), since History is shared.
"""

from __future__ import annotations

import re

from core import services as app_services
from providers import redact
from providers.registry import PROVIDERS
from ui import state

__all__ = ["md", "plain", "said", "short_md"]

# The marks that start Markdown inside a line: images and links ``![..](..)``, ``<autolinks>`` and HTML,
# emphasis, code, strike-through, entities, "$maths$", and Streamlit's ":color[...]" / ":material/icon:"
# directives (":" also breaks a bare "http://" autolink). A backslash makes each show as itself.
_INLINE = re.compile(r"([\\`*_\[\]<>!~$:&|])")
# What only matters at the start of a line: a heading, a quote, a list item.
_LINE_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d+)([.)]))")


def md(text: object) -> str:
    """``text`` on one line, escaped so Streamlit's Markdown shows it literally: no image, link, HTML,
    emphasis, heading, list or directive; and with no key in it (a prompt is drawn for every visitor)."""
    flat = " ".join(plain("" if text is None else str(text)).splitlines())
    escaped = _INLINE.sub(r"\\\1", flat)
    return _LINE_START.sub(_line_start, escaped)


def _line_start(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"  # "1." and "1)" start a list: escape the mark


def short_md(text: str, limit: int = 80) -> str:
    """The first ``limit`` characters of ``text`` on one line, escaped (``md``)."""
    flat = " ".join(text.split())
    return md(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _keys() -> list[str]:
    """This session's keys and the configured ones (Settings, secrets.toml, the environment)."""
    found: list[str] = []
    session = state.session_keys()
    for name in PROVIDERS:
        value, _ = app_services.provider_key(name, session=session)
        if value:
            found.append(value)
    return found


def said(text: str | None) -> str:
    """Provider or error text for a Markdown element (``md``: keys taken out, then escaped)."""
    return md(text or "")


def plain(text: str | None) -> str:
    """Text for a text-only element (``st.text`` / ``st.code``): keys taken out, nothing escaped."""
    return redact.redact(text or "", _keys()) or ""
