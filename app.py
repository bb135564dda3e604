"""Image Studio: the entry point. Routes between the pages and draws the shared sidebar.

The pages live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/``
folder beside the entry script as its legacy multipage app (a shared deep link
opened first would bypass this navigation, and a page run alone would put that
folder on ``sys.path``, where ``studio.py`` hides the ``studio`` package).

``streamlit run app.py`` finds ``app`` (an ``st.App``) and serves it; its lifespan
starts the job runner when the server starts, so jobs left unfinished by a crash
or restart resume before anyone opens a browser. Streamlit then runs this same
file as the script of every session (the part under ``st.runtime.exists()``).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st

from core import services as app_services


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    app_services.runner()
    yield
    app_services.shutdown()


app = st.App(__file__, lifespan=lifespan)

if st.runtime.exists():
    from ui import services, sidebar

    st.set_page_config(page_title="Image Studio", page_icon=":material/palette:", layout="wide")
    page = st.navigation(
        [
            st.Page("app_pages/studio.py", title="Studio", icon=":material/brush:", default=True),
            st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
            st.Page("app_pages/history.py", title="History", icon=":material/photo_library:"),
            st.Page("app_pages/spend.py", title="Spend", icon=":material/payments:"),
            st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:"),
        ]
    )
    services.runner()  # already running under `streamlit run`; started here when run by AppTest
    sidebar.mark_app_run()
    sidebar.render()
    page.run()
