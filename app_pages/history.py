"""History: every result, newest first, with filters; one result in full at ?job=<id>."""

import streamlit as st

from ui import history_detail, history_filters, history_gallery, sidebar

# Additive to app.py's call: a page opened on its own (a link before app.py ran) still gets
# the wide layout its grids need.
st.set_page_config(layout="wide")
sidebar.ensure()

job_id = st.query_params.get("job")
if st.query_params.get("experiment"):
    # A link from Compare: show that experiment's results.
    st.session_state[history_filters.EXPERIMENT] = st.query_params["experiment"]
    if history_detail.opened_by_link("experiment", st.query_params["experiment"]):
        # A share link to an experiment: its results open read-only for whoever signed in (this session).
        st.session_state[history_filters.LINKED_EXPERIMENT] = st.query_params["experiment"]
        del st.query_params["share"]
    del st.query_params["experiment"]

st.title("History")
if job_id:
    history_detail.render(job_id)
else:
    st.caption("Everything made in Studio and Compare, newest first. Open a result for its details, "
               "or select several to export them or write a report.")
    history_gallery.render()
