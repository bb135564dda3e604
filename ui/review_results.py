"""The makers' side of reviews: every review with its link, its results and a way to close it."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from core.accounts import PermissionDenied
from core.exports.report import ReportItem, build_report
from core.review.results import Results, candidate_words, results
from core.review.store import Review, ReviewError
from core.spend.money import format_usd
from ui import auth, text
from ui.review_vote import reviews

__all__ = ["link_for", "render", "table"]


def link_for(review: Review) -> str:
    """The address a voter opens: this app's root with the review's unguessable token (app.py then serves
    the voting page alone, as the only, default page, so no other path is needed)."""
    base = (st.context.url or "").split("?")[0].split("#")[0].rstrip("/")
    for tail in ("/review", "/compare", "/history"):
        if base.endswith(tail):
            base = base[: -len(tail)]
    return f"{base}/?review={review.token}"


def table(res: Results) -> pd.DataFrame:
    rows = []
    for c in res.candidates:
        rows.append({
            "Candidate": candidate_words(c) + ("  ★ best value" if c.best_value else ""),
            "Rating": f"{c.score:.0f} ± {(c.high - c.low) / 2:.0f}",
            "95% interval": f"{c.low:.0f}–{c.high:.0f}",
            "Win rate": f"{c.win_rate:.0%}" if c.votes else "–",
            "Votes": str(c.votes),
            "Price per image": format_usd(c.price) if c.price is not None else "unknown",
            "Cost per winning image": format_usd(c.cost_per_win) if c.cost_per_win is not None else "no wins",
        })
    return pd.DataFrame(rows)


def report_html(review_id: str) -> str:
    """The stakeholder HTML report (core.exports.report) of a review: its verdict, then every image in it."""
    store = reviews()
    review = store.get(review_id)
    if review is None:
        return ""
    jobs = {j.id: j for j in store.store.get_jobs(list(dict.fromkeys(i.job_id for i in review.items)))}
    items = []
    for it in review.items:
        job = jobs.get(it.job_id)
        image = next((im for im in job.images if im.idx == it.image_idx), None) if job else None
        if job is not None:
            items.append(ReportItem(job, image, heading=candidate_words(it)))
    return build_report(review.name, items, subtitle="Blind review",
                        reviews=[(review.name, results(review, store.votes(review.id)))])


def _close(review_id: str) -> None:
    try:
        reviews().close(review_id, auth.current_user())
    except (PermissionDenied, ReviewError) as err:
        st.session_state["_review_close_error"] = str(err)


def render() -> None:
    user = auth.current_user()
    if not user.can("generate"):
        st.info("Open the review link you were sent to vote. Results are for the people who made the review.",
                icon=":material/how_to_vote:")
        return
    err = st.session_state.pop("_review_close_error", None)
    if err:
        st.error(text.md(err))
    store = reviews()
    found = store.list_reviews()
    if not found:
        st.info("No reviews yet. Make one from a comparison's results in Compare, or from a selection in History "
                "(“Make a review link”).", icon=":material/how_to_vote:")
        return
    for review in found:
        res = results(review, store.votes(review.id))
        state = "closed" if review.closed else "open"
        with st.container(border=True, key=f"review_card_{review.id}"):
            st.markdown(f"### {text.md(review.name)}")
            made = f"{review.created_at.astimezone():%Y-%m-%d %H:%M}"
            st.caption(f"{state.capitalize()} · made {made} · {res.votes} votes from "
                       f"{res.voters} voter{'s' if res.voters != 1 else ''} · {len(review.items)} images")
            if not review.closed:
                st.code(link_for(review), language=None)
            st.table(table(res), hide_index=True)
            st.caption("Rating: Bradley–Terry on the Elo scale (1000 = average of these candidates), ± half its "
                       "95% interval. “Can't tell” counts half a win for each side. Cost per winning image: price "
                       "per image ÷ win rate. ★ best value: the cheapest candidate whose interval reaches the best "
                       "one's.")
            if res.comments:
                with st.expander(f"Comments ({len(res.comments)})"):
                    for c in res.comments:
                        st.markdown(f"- {text.md(c)}")
            st.download_button("Report (HTML)", data=functools.partial(report_html, review.id),
                               file_name="review-report.html", mime="text/html", key=f"review_report_{review.id}",
                               icon=":material/description:", on_click="ignore",
                               help="One file with the verdict and every image, for people without the app.")
            if not review.closed and store.may_close(review, user):
                st.button("Close this review", key=f"review_close_{review.id}", icon=":material/lock:",
                          on_click=_close, args=(review.id,), help="Stop taking votes. The results stay.")

