"""Everything an AppTest run put on the page, as text: what a visitor could read (or their browser load)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

_KINDS = ("markdown", "caption", "error", "warning", "info", "success", "toast", "code", "text", "title",
          "header", "subheader", "exception", "expander", "button", "image", "metric", "badge", "dataframe")


def page_texts(at: AppTest) -> list[str]:
    out: list[str] = []
    for kind in _KINDS:
        for element in at.get(kind):
            for attr in ("value", "label", "body", "message", "help", "caption"):
                value = getattr(element, attr, None)
                if isinstance(value, str):
                    out.append(value)
            proto = getattr(element, "proto", None)
            if proto is not None:
                out.append(str(proto))
    return out


def page_text(at: AppTest) -> str:
    return "\n".join(page_texts(at))


def tracebacks(at: AppTest) -> list[str]:
    """Exceptions the page showed (Streamlit draws an uncaught one with its traceback)."""
    return [str(e.value) for e in at.exception]
