"""Prompt templates: built-ins from ``templates.toml`` plus the person's saved ones.

A template's prompt may hold ``{{variables}}``. Giving several values for
variables turns one prompt into a batch: :func:`expand` makes the cartesian
product, :func:`batch_size` says how many requests that is before anything is
built (every request costs money).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import threading
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from providers.errors import InvalidRequest

__all__ = [
    "BUILTIN_PATH",
    "Expansion",
    "Template",
    "TemplateLibrary",
    "batch_size",
    "build_prompt",
    "builtin_templates",
    "expand",
    "malformed",
    "variables",
]

BUILTIN_PATH = Path(__file__).with_name("templates.toml")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ -]*")
# A candidate placeholder: two braces, anything but braces, two braces.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")


# --------------------------------------------------------------------------- variables


def _valid_name(inner: str) -> str | None:
    name = inner.strip()
    return name if _NAME.fullmatch(name) else None


def variables(prompt: str) -> list[str]:
    """Every ``{{name}}`` in order of first appearance, names trimmed; malformed braces are skipped."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(prompt):
        name = _valid_name(match.group(1))
        if name is not None:
            seen.setdefault(name, None)
    return list(seen)


def malformed(prompt: str) -> list[str]:
    """Brace fragments that are not valid ``{{name}}`` placeholders, described for the person."""
    problems: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _PLACEHOLDER.finditer(prompt):
        spans.append(match.span())
        if _valid_name(match.group(1)) is None:
            inner = match.group(1).strip()
            why = (
                "is empty"
                if not inner
                else ("is not a valid name (letters, digits, _, - and spaces; not starting with a digit)")
            )
            problems.append(f"{match.group(0)} at position {match.start()} {why}")
    # Braces outside any placeholder: unclosed openings and stray closings.
    masked = list(prompt)
    for start, end in spans:
        masked[start:end] = " " * (end - start)
    rest = "".join(masked)
    for match in re.finditer(r"\{\{|\}\}", rest):
        if match.group() == "{{":
            problems.append(f"'{{{{' at position {match.start()} is never closed with '}}}}'")
        else:
            problems.append(f"'}}}}' at position {match.start()} has no matching '{{{{'")
    return problems


def _values_of(raw: str | Sequence[str] | None) -> list[str]:
    """Usable values, in order, blanks and duplicates dropped (each duplicate would be a paid repeat)."""
    if raw is None:
        return []
    items: Iterable[Any] = [raw] if isinstance(raw, str) else raw
    out: dict[str, None] = {}
    for item in items:
        text = str(item)
        if text.strip():
            out.setdefault(text, None)
    return list(out)


@dataclass(frozen=True)
class Expansion:
    """One concrete prompt from a template, and the variable values that made it."""

    prompt: str
    variables: dict[str, str] = field(default_factory=dict)


def _substitute(prompt: str, chosen: Mapping[str, str]) -> str:
    def put(match: re.Match[str]) -> str:
        name = _valid_name(match.group(1))
        return chosen[name] if name is not None and name in chosen else match.group(0)

    return _PLACEHOLDER.sub(put, prompt)  # a function, so backslashes in values stay literal


def batch_size(values: Mapping[str, str | Sequence[str]], prompt: str | None = None) -> int:
    """How many prompts ``expand`` would make: the product of each variable's value count.

    With ``prompt``, only the variables it uses count (others given are ignored by expand too).
    """
    names = variables(prompt) if prompt is not None else list(values)
    return math.prod(len(_values_of(values.get(name))) for name in names)


def expand(
    prompt: str,
    values: Mapping[str, str | Sequence[str]],
    *,
    limit: int | None = None,
) -> list[Expansion]:
    """Every combination of the variables' values (cartesian product, in order of appearance).

    A bare string counts as one value. Raises ``InvalidRequest(field="variables")``
    when a variable has no value, or when the batch would exceed ``limit``.
    """
    names = variables(prompt)
    choices: list[list[str]] = []
    for name in names:
        vals = _values_of(values.get(name))
        if not vals:
            raise InvalidRequest(
                f"The prompt uses {{{{{name}}}}} but no value was given for it; fill it in or take it out of "
                "the prompt.",
                field="variables",
                value=name,
                allowed="at least one non-empty value",
            )
        choices.append(vals)
    size = math.prod(len(c) for c in choices)
    if limit is not None and size > limit:
        counts = " × ".join(f"{len(c)} {n}" for n, c in zip(names, choices, strict=True))
        raise InvalidRequest(
            f"These values make {size} prompts ({counts}); at most {limit} can run in one batch. Remove some values.",
            field="variables",
            value=size,
            allowed=f"at most {limit}",
        )
    out = []
    for combo in itertools.product(*choices):
        chosen = dict(zip(names, combo, strict=True))
        out.append(Expansion(prompt=_substitute(prompt, chosen), variables=chosen))
    return out


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """A named prompt with suggested settings. ``defaults`` holds one default value per variable."""

    name: str
    prompt: str
    description: str = ""
    size: str = "1:1"
    quality: str = "auto"
    output_format: str = "png"
    defaults: dict[str, str] = field(default_factory=dict)
    needs_image: bool = False
    builtin: bool = False
    source: str = ""
    tags: tuple[str, ...] = ()

    @property
    def variables(self) -> list[str]:
        return variables(self.prompt)

    def values(self, overrides: Mapping[str, str | Sequence[str]] | None = None) -> dict[str, list[str]]:
        """Values per variable: the given ones where non-empty, else the default."""
        merged: dict[str, list[str]] = {}
        for name in self.variables:
            given = _values_of((overrides or {}).get(name))
            merged[name] = given or _values_of(self.defaults.get(name))
        return merged

    def expand(
        self, overrides: Mapping[str, str | Sequence[str]] | None = None, *, limit: int | None = None
    ) -> list[Expansion]:
        return expand(self.prompt, self.values(overrides), limit=limit)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data.pop("builtin")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, builtin: bool = False) -> Template:
        name = str(data.get("name", "")).strip()
        prompt = str(data.get("prompt", ""))
        if not name or not prompt.strip():
            raise InvalidRequest(
                "A template needs a name and a prompt.",
                field="template",
                value=name or None,
                allowed="a name and a prompt",
            )
        defaults = data.get("defaults") or {}
        return cls(
            name=name,
            prompt=prompt,
            description=str(data.get("description", "")),
            size=str(data.get("size", "1:1")),
            quality=str(data.get("quality", "auto")),
            output_format=str(data.get("output_format", "png")),
            defaults={str(k).strip(): str(v) for k, v in dict(defaults).items()},
            needs_image=bool(data.get("needs_image", False)),
            builtin=builtin,
            source=str(data.get("source", "")),
            tags=tuple(str(t) for t in data.get("tags", ())),
        )


@lru_cache(maxsize=4)
def _load_builtins(path: Path, mtime: float) -> tuple[Template, ...]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return tuple(Template.from_dict(item, builtin=True) for item in data.get("template", []))


def builtin_templates(path: Path | None = None) -> list[Template]:
    """The templates shipped in ``templates.toml`` (re-read when the file changes)."""
    source = path or BUILTIN_PATH
    return list(_load_builtins(source, source.stat().st_mtime))


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


# One lock per file: two browser sessions saving at once must not lose each other's templates.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.Lock())


class TemplateLibrary:
    """Built-in templates plus the person's saved ones, kept in a JSON file (e.g. ``data_dir()/templates.json``).

    Names are unique (ignoring case and spacing); a saved template cannot take a built-in's name.
    """

    def __init__(self, path: str | os.PathLike[str], builtins: Sequence[Template] | None = None) -> None:
        self.path = Path(path)
        self._builtins = list(builtins) if builtins is not None else builtin_templates()
        self.load_error: str | None = None  # set when the file could not be read; shown by the page

    # --- reading -----------------------------------------------------------------
    def _read(self) -> list[Template]:
        self.load_error = None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            self.load_error = f"Saved templates could not be read from {self.path.name}: {exc}"
            return []
        items = raw.get("templates", []) if isinstance(raw, dict) else raw
        out: list[Template] = []
        for item in items if isinstance(items, list) else []:
            try:
                out.append(Template.from_dict(item))
            except (InvalidRequest, TypeError, ValueError, AttributeError):
                continue  # one bad entry must not hide the rest
        return out

    def saved(self) -> list[Template]:
        return self._read()

    def builtins(self) -> list[Template]:
        return list(self._builtins)

    def all(self) -> list[Template]:
        builtin_keys = {_key(t.name) for t in self._builtins}
        return self.builtins() + [t for t in self._read() if _key(t.name) not in builtin_keys]

    def get(self, name: str) -> Template | None:
        wanted = _key(name)
        return next((t for t in self.all() if _key(t.name) == wanted), None)

    # --- writing -----------------------------------------------------------------
    def _write(self, templates: list[Template]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.load_error and self.path.exists():
            # Keep the unreadable file for rescue instead of silently overwriting it.
            self.path.replace(self.path.with_suffix(self.path.suffix + ".unreadable"))
        tmp = self.path.with_suffix(self.path.suffix + f".{os.getpid()}.tmp")
        payload = {"version": 1, "templates": [t.to_dict() for t in templates]}
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one, never half of one

    def save(self, template: Template) -> Template:
        """Add or replace a saved template (by name); returns it as stored."""
        name = " ".join(template.name.split())
        if not name or not template.prompt.strip():
            raise InvalidRequest(
                "A template needs a name and a prompt.",
                field="name",
                value=template.name,
                allowed="a name and a prompt",
            )
        if _key(name) in {_key(t.name) for t in self._builtins}:
            raise InvalidRequest(
                f"“{name}” is a built-in template's name; save yours under another name.",
                field="name",
                value=name,
                allowed="a name no built-in template uses",
            )
        stored = replace(template, name=name, builtin=False)
        with _lock_for(self.path):
            current = [t for t in self._read() if _key(t.name) != _key(name)]
            current.append(stored)
            self._write(current)
        return stored

    def delete(self, name: str) -> bool:
        """Remove a saved template; False if there was none. Built-ins cannot be deleted."""
        if _key(name) in {_key(t.name) for t in self._builtins}:
            raise InvalidRequest(
                f"“{name}” is a built-in template and cannot be deleted.",
                field="name",
                value=name,
                allowed="a saved template's name",
            )
        with _lock_for(self.path):
            current = self._read()
            kept = [t for t in current if _key(t.name) != _key(name)]
            if len(kept) == len(current):
                return False
            self._write(kept)
        return True


# --------------------------------------------------------------------------- prompt builder


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…。！？" else text + "."


def _quoted(text: str) -> str:
    # Straight quotes delimit the exact text; if it contains some itself, use typographic ones.
    return f"“{text}”" if '"' in text else f'"{text}"'


def build_prompt(
    subject: str = "",
    style: str = "",
    composition: str = "",
    lighting: str = "",
    text_to_render: str = "",
    language: str = "",
) -> str:
    """A well-formed prompt from parts; empty parts are left out.

    Text to render is quoted and asked for verbatim, because GPT Image models
    render quoted text most reliably; ``language`` says which language it is in
    (or, without text, which language any text should use).
    """
    parts = [_sentence(subject)]
    if style.strip():
        parts.append(_sentence(f"Style: {style.strip()}"))
    if composition.strip():
        parts.append(_sentence(f"Composition: {composition.strip()}"))
    if lighting.strip():
        parts.append(_sentence(f"Lighting: {lighting.strip()}"))
    text = text_to_render.strip()
    lang = " ".join(language.split())
    if text:
        parts.append(f"With the text {_quoted(text)} rendered exactly, letter for letter, with correct spelling.")
        if lang:
            parts.append(f"The text is in {lang}: keep it in {lang} as written, do not translate it.")
    elif lang:
        parts.append(f"Any text in the image should be in {lang}.")
    return " ".join(p for p in parts if p)
