"""Review: a blind pairwise vote at ?review=<token>; without a token, the reviews and their results (makers)."""

import streamlit as st

from ui import review_results, review_vote

st.set_page_config(layout="wide")

token = st.query_params.get("review")
if token:
    # No sidebar here (app.py leaves it out for a review link): it names providers and models.
    review_vote.render(token)
else:
    st.title("Reviews")
    st.caption("Blind pairwise votes on your own images: which candidate wins, and what a winning image costs.")
    review_results.render()
