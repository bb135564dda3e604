"""“Make a review link”: a blind review of some finished results, for Compare's grids and History's selections."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.accounts import PermissionDenied
from core.review.store import ReviewError
from ui import auth, pages, text
from ui.review_results import link_for
from ui.review_vote import reviews

__all__ = ["action"]

_MADE = "_review_made"  # {key: review id}: the link just made here, shown until the selection changes


def _make(job_ids: tuple[str, ...], key: str) -> None:
    name = (st.session_state.get(f"{key}_name") or "").strip() or "Review"
    try:
        review = reviews().create(name, job_ids, auth.current_user())
    except (ReviewError, PermissionDenied) as err:
        st.session_state[f"{key}_error"] = str(err)
        return
    st.session_state.setdefault(_MADE, {})[key] = (job_ids, review.id)


def action(job_ids: Sequence[str], *, key: str) -> None:
    """The button and what it made; only for those who may make reviews (the store checks it again)."""
    if not auth.current_user().can("generate"):
        return
    ids = tuple(job_ids)
    with st.popover("Make a review link", icon=":material/how_to_vote:"):
        st.caption("Stakeholders open the link and pick the better of two images of one prompt, blind: they see "
                   "no provider, model, quality or price. Results (ratings, win rates, cost per winning image) "
                   "are on the Review page.")
        st.text_input("Name (only you and other makers see it)", key=f"{key}_name", placeholder="Review")
        st.button("Make the link", key=f"{key}_make", icon=":material/link:", on_click=_make, args=(ids, key),
                  type="primary")
        err = st.session_state.pop(f"{key}_error", None)
        if err:
            st.error(text.md(err))
        made = st.session_state.get(_MADE, {}).get(key)
        if made and made[0] == ids:
            review = reviews().get(made[1])
            if review is not None:
                st.success("Send this link to the people who should vote:")
                st.code(link_for(review), language=None)
                try:
                    st.page_link(pages.REVIEW, label="See the results", icon=":material/leaderboard:")
                except StreamlitAPIException:  # this page was run on its own, outside app.py's navigation
                    st.caption("The results are on the Review page.")
