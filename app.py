"""Image Studio: the entry point. Routes between the pages and draws the shared sidebar."""

import streamlit as st

from ui import services, sidebar

st.set_page_config(page_title="Image Studio", page_icon="🎨", layout="wide")

PAGES = [
    st.Page("pages/studio.py", title="Studio", icon="🖌️", default=True),
    st.Page("pages/compare.py", title="Compare", icon="🆚"),
    st.Page("pages/history.py", title="History", icon="🗂️"),
    st.Page("pages/spend.py", title="Spend", icon="💵"),
    st.Page("pages/settings.py", title="Settings", icon="⚙️"),
]

page = st.navigation(PAGES)
# The runner starts with the first session of this process and resumes unfinished jobs.
services.runner()
sidebar.mark_app_run()
sidebar.render()
page.run()
