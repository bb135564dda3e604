"""The History page's filter bar: widgets in, a ``JobFilter`` out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from core.history.views import JobFilter
from core.jobs.lifecycle import ACTIVE_STATES, STATE_WORDS
from providers import registry
from providers.registry import PROVIDERS
from ui import services

# Widget keys (tests drive the page by these); values survive a visit to another page.
TEXT = "history_f_text"
PROVIDERS_KEY = "history_f_providers"
MODELS = "history_f_models"
QUALITIES = "history_f_qualities"
STATUSES = "history_f_statuses"
DATES = "history_f_dates"
RATING = "history_f_rating"
SOURCE = "history_f_source"
WINNERS = "history_f_winners"
LINKED_EXPERIMENT = "history_linked_experiment"  # an experiment opened by its share link (read-only)
MINE = "history_f_mine"  # signed in: only my own work, not what the team shares
EXPERIMENT = "history_f_experiment"  # set from a link (?experiment=...): not a widget

_ALL_KEYS = (TEXT, PROVIDERS_KEY, MODELS, QUALITIES, STATUSES, DATES, RATING, SOURCE, WINNERS)

# Finished states by their own words; the active ones share one entry (nobody filters for "Sending").
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    STATE_WORDS["succeeded"]: ("succeeded",),
    STATE_WORDS["failed"]: ("failed",),
    "In progress": ACTIVE_STATES,
    STATE_WORDS["canceled"]: ("canceled",),
    STATE_WORDS["unknown"]: ("unknown",),
}
SOURCES = {"all": "Real and simulated", "live": "Real only", "emulator": "Simulated only"}
RATINGS = {0: "Any rating", 1: "★ or more", 2: "★★ or more", 3: "★★★ or more", 4: "★★★★ or more", 5: "★★★★★"}


def _rating_text(rating: int) -> str:
    return RATINGS.get(rating, str(rating))


def _source_text(source: str) -> str:
    return SOURCES.get(source, source)


def _local_midnight_utc(day: date) -> datetime:
    # Dates are picked in the host's calendar (as the budget's day is).
    return datetime.combine(day, time.min).astimezone().astimezone(UTC)


def clear() -> None:
    for key in _ALL_KEYS:
        st.session_state.pop(key, None)
    st.session_state.pop(EXPERIMENT, None)


def render(facets: dict[str, list[str]]) -> JobFilter:
    """Draw the filter bar and return what it selects."""
    providers = sorted(set(facets.get("providers", [])) | set(PROVIDERS), key=lambda p: list(PROVIDERS).index(p)
                       if p in PROVIDERS else 99)
    models = facets.get("models", [])
    flt_now = current()
    c0, c1, c2, c3 = st.columns([2, 1, 1, 1])
    c0.text_input(
        "Search prompts",
        key=TEXT,
        placeholder="Search prompts, e.g. lighthouse",
        persist_state="session",
    )
    c1.multiselect("Provider", providers, key=PROVIDERS_KEY, format_func=registry.label, placeholder="All",
                   persist_state="session")
    c2.multiselect("Quality", registry.qualities(), key=QUALITIES, placeholder="All", persist_state="session")
    c3.multiselect("Status", list(STATUS_GROUPS), key=STATUSES, placeholder="Any", persist_state="session")
    extra = sum(bool(x) for x in (flt_now.models, flt_now.since, flt_now.min_rating, flt_now.endpoint,
                                  flt_now.winners_only))
    with st.expander("More filters" + (f" · {extra} on" if extra else ""), icon=":material/tune:"):
        c5, c6, c7, c8, c9 = st.columns([3, 3, 2, 2, 2])
        c5.multiselect("Model", models, key=MODELS, placeholder="All models", persist_state="session")
        c6.date_input("Dates", value=[], key=DATES, format="YYYY-MM-DD", persist_state="session",
                      help="Pick a first and a last day (your computer's calendar).")
        c7.selectbox("Rating", list(RATINGS), key=RATING, format_func=_rating_text, persist_state="session")
        c8.selectbox("Source", list(SOURCES), key=SOURCE, format_func=_source_text, persist_state="session",
                     help="Simulated results come from the built-in emulator and cost nothing.")
        with c9:
            st.space("small")
            st.toggle("Winners only", key=WINNERS, persist_state="session")
            if not services.user().local:
                st.toggle("Mine only", key=MINE, persist_state="session",
                          help="Leave out what others share with the team.")
    return current()


def current() -> JobFilter:
    ss = st.session_state
    statuses: tuple[str, ...] = ()
    for group in ss.get(STATUSES) or ():
        statuses += STATUS_GROUPS.get(group, ())
    since = until = None
    raw = ss.get(DATES) or ()
    picked: tuple[date, ...] = (raw,) if isinstance(raw, date) else tuple(raw)
    if len(picked) >= 1 and picked[0]:
        since = _local_midnight_utc(picked[0])
        last = picked[1] if len(picked) > 1 and picked[1] else picked[0]
        until = _local_midnight_utc(last + timedelta(days=1))
    source = ss.get(SOURCE) or "all"
    rating = ss.get(RATING) or 0
    text = (ss.get(TEXT) or "").strip()
    return JobFilter(
        providers=tuple(ss.get(PROVIDERS_KEY) or ()),
        models=tuple(ss.get(MODELS) or ()),
        qualities=tuple(ss.get(QUALITIES) or ()),
        statuses=statuses,
        endpoint=None if source == "all" else source,
        since=since,
        until=until,
        min_rating=rating or None,
        text=text or None,
        experiment_id=ss.get(EXPERIMENT) or None,
        winners_only=bool(ss.get(WINNERS)),
        # Their own and the team's (owners: all); all of an experiment opened by its share link.
        visible_to=None if ss.get(EXPERIMENT) and ss.get(EXPERIMENT) == ss.get(LINKED_EXPERIMENT)
        else services.user().history_scope,
        mine_only=bool(ss.get(MINE)),
    )


def is_filtered(flt: JobFilter) -> bool:
    return dataclasses.replace(flt, visible_to=None) != JobFilter()
