"""Image Studio: the entry point. Routes between the pages and draws the shared sidebar.

``streamlit run app.py`` finds ``app`` (an ``st.App``) and serves it; its lifespan
starts the job runner when the server starts, so jobs left unfinished by a crash
or restart resume before anyone opens a browser. Streamlit then runs this same
file as the script of every session (the part under ``st.runtime.exists()``).
"""

from contextlib import asynccontextmanager

import streamlit as st

from studio import app_services


@asynccontextmanager
async def lifespan(_app):
    app_services.runner()
    yield
    app_services.shutdown()


app = st.App(__file__, lifespan=lifespan)

if st.runtime.exists():
    from ui import services, sidebar

    st.set_page_config(page_title="Image Studio", page_icon="🎨", layout="wide")
    page = st.navigation(
        [
            st.Page("pages/studio.py", title="Studio", icon="🖌️", default=True),
            st.Page("pages/compare.py", title="Compare", icon="🆚"),
            st.Page("pages/history.py", title="History", icon="🗂️"),
            st.Page("pages/spend.py", title="Spend", icon="💵"),
            st.Page("pages/settings.py", title="Settings", icon="⚙️"),
        ]
    )
    services.runner()  # already running under `streamlit run`; started here when run by AppTest
    sidebar.mark_app_run()
    sidebar.render()
    page.run()
