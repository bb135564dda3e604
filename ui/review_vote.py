"""The voter's page of a review link: two images of one prompt, blind; left, right or can't tell.

Nothing here may name where an image came from: no provider, model, quality, price or file
name in the page (the items are only numbers here; ``core.review.blind`` gives the pictures
as bytes, so their URLs are hashes). The vote is stored by the button's callback with the pair
it was drawn for, so a click in a stale second tab is refused by the database, not counted twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from core.review import blind, browser_id
from core.review.schedule import next_pair, progress
from core.review.store import Choice, Review, ReviewError, ReviewStore, voter_key
from providers.errors import ProviderError
from ui import auth, services, text

__all__ = ["TITLE", "current_browser_id", "render"]

TITLE = "Which image is better?"  # voters see this, never the review's own name (the maker may name a provider)
_OUTCOME = "_review_vote_outcome"

_SAID = {
    "recorded": None,
    "already_voted": "You had already voted on that pair (in another tab?). Here is the next one.",
    "closed": "This review has just been closed: your last vote was not counted.",
    "not_a_pair": "That pair is not part of this review.",
}


def current_browser_id() -> str | None:
    """This browser's voter id (the cookie ``core.review.browser_id`` sets), None when it has none."""
    return browser_id.valid(st.context.cookies.get(browser_id.COOKIE))


def reviews() -> ReviewStore:
    return ReviewStore(services.store())


@st.cache_data(max_entries=256, show_spinner=False)
def _picture(path: str, sha256: str) -> bytes | None:
    try:
        return blind.blind_jpeg(Path(path))
    except (OSError, ValueError, ProviderError):
        return None


def _cast(token: str, left: int, right: int, choice: Choice, comment_key: str) -> None:
    user = auth.current_user()
    store = reviews()
    review = store.by_token(token)
    if review is None:
        return
    try:
        voter = voter_key(user, current_browser_id())
        outcome = store.vote(review, user, voter, left, right, choice, st.session_state.get(comment_key))
    except ReviewError as err:
        st.session_state[_OUTCOME] = str(err)
        return
    st.session_state[_OUTCOME] = _SAID[outcome]
    st.session_state.pop(comment_key, None)


def render(token: str) -> None:
    st.title(TITLE)
    user = auth.current_user()
    store = reviews()
    review = store.by_token(token)
    if review is None:
        st.error("This review link is not valid: it may have been mistyped or the review deleted. "
                 "Ask whoever sent it for the link again.", icon=":material/link_off:")
        return
    if not user.can("rate"):
        st.warning("Your role does not let you vote. Ask an owner of this app to make you a viewer.",
                   icon=":material/lock:")
        return
    said = st.session_state.pop(_OUTCOME, None)
    if said:
        st.toast(text.md(said), icon=":material/info:")
    if review.closed:
        st.info("This review is closed: it takes no more votes. Thank you for looking.", icon=":material/lock:")
        return
    try:
        voter = voter_key(user, current_browser_id())
    except ReviewError as err:
        st.warning(f"{err} (This browser must accept cookies for this site.)", icon=":material/cookie:")
        return
    _pair(review, store, voter, token)


def _pair(review: Review, store: ReviewStore, voter: str, token: str) -> None:
    everyone = store.votes(review.id)
    mine = [v.pair for v in everyone if v.voter == voter]
    done, total = progress(review.items, mine)
    shown = next_pair(review.items, [v.pair for v in everyone], mine, seed=review.seed, voter=voter)
    if shown is None:
        st.success(f"You have voted on all {total} pairs. Thank you!", icon=":material/check_circle:")
        return
    st.progress(done / total if total else 1.0, text=f"{done} of {total} pairs")
    left, right = review.item(shown.left), review.item(shown.right)
    assert left is not None and right is not None  # the schedule only hands out the review's own items
    st.markdown(f"**Prompt:** {text.md(left.prompt)}")
    cols = st.columns(2, gap="medium")
    for col, item, side in ((cols[0], left, "Left"), (cols[1], right, "Right")):
        with col:
            path = store.image_path(item)
            data = _picture(str(path), item.sha256) if path is not None else None
            if data is None:
                st.warning("This image could not be shown. Pick the other one, or “Can't tell”.")
            else:
                st.image(data, width="stretch")
            st.caption(side)
    # Widget keys reach the page: a hash of the pair, not the items' numbers (their order is the review's).
    tag = hashlib.sha256(f"{review.seed}|{shown.left}|{shown.right}".encode()).hexdigest()[:12]
    comment_key = f"review_comment_{tag}"
    st.text_input("Comment (optional)", key=comment_key, max_chars=500,
                  placeholder="What made the difference?")
    row = st.columns(3)
    for col, choice, label, key, icon in (
        (row[0], "left", "Left is better", "Left", ":material/arrow_back:"),
        (row[1], "tie", "Can't tell", "Down", ":material/arrow_downward:"),
        (row[2], "right", "Right is better", "Right", ":material/arrow_forward:"),
    ):
        col.button(label, key=f"review_vote_{choice}_{tag}", icon=icon, shortcut=key,
                   width="stretch", type="primary" if choice != "tie" else "secondary",
                   on_click=_cast, args=(token, shown.left, shown.right, choice, comment_key))
    st.caption("Keyboard: ← left · → right · ↓ can't tell. Images are shown without their source; "
               "which side each is on is random.")
