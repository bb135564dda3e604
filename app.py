"""Image Studio: the entry point. Routes between the pages and draws the shared sidebar.

The pages live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/``
folder beside the entry script as its legacy multipage app (a shared deep link
opened first would bypass this navigation, and a page run alone would put that
folder on ``sys.path``, where ``studio.py`` hides the ``studio`` package).

``streamlit run app.py`` finds ``app`` (an ``st.App``) and serves it; its lifespan
starts the job runner when the server starts, so jobs left unfinished by a crash
or restart resume before anyone opens a browser. Streamlit then runs this same
file as the script of every session (the part under ``st.runtime.exists()``).

Every session run passes the sign-in gate first (``ui.auth.gate``): with ``[auth]`` in
secrets.toml, only a signed-in person with a role gets past it, and only to the pages
their role allows (``PAGES``); without ``[auth]`` the one local operator sees every page.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware

from core import services as app_services
from core.accounts import Action, Identity, PermissionDenied
from core.review.browser_id import BrowserIdMiddleware
from ui import media_route, webhook_route


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    app_services.runner()
    yield
    app_services.shutdown()


# The browser-id cookie: a voter without sign-in is one voter across tabs (core.review.browser_id).
app = st.App(__file__, lifespan=lifespan, routes=[*media_route.ROUTES, *webhook_route.ROUTES],
             middleware=[Middleware(BrowserIdMiddleware)])

# Each page and what one must be allowed to do to open it (core.accounts.identity.PERMISSIONS): a page
# not allowed is left out of st.navigation, so its address leads nowhere. The local operator (no
# sign-in configured) may do everything, so sees every page, as before accounts existed.
PAGES: tuple[tuple[str, str, str, Action], ...] = (
    ("app_pages/studio.py", "Studio", ":material/brush:", "generate"),
    ("app_pages/compare.py", "Compare", ":material/compare:", "generate"),
    ("app_pages/history.py", "History", ":material/photo_library:", "view"),
    ("app_pages/spend.py", "Spend", ":material/payments:", "generate"),
    # Makers come for their own keys; the owner-only parts check "manage_settings" / "set_caps" themselves.
    ("app_pages/settings.py", "Settings", ":material/settings:", "use_own_key"),
    ("app_pages/review.py", "Review", ":material/how_to_vote:", "rate"),
)
REVIEW_PAGE = "app_pages/review.py"


def pages_for(user: Identity) -> list[st.Page]:
    allowed = [(path, title, icon) for path, title, icon, action in PAGES if user.can(action)]
    if not allowed or allowed[0][0] == PAGES[0][0]:
        return [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(allowed)]
    # Someone without the Studio (a viewer): their first page keeps its own address (/history, which share
    # links carry; a default page answers only at the root), and the root forwards to it.
    pages = [st.Page(path, title=title, icon=icon) for path, title, icon in allowed]
    first = pages[0]
    return [st.Page(lambda: st.switch_page(first), title=first.title, url_path="start", default=True,
                    visibility="hidden"), *pages]


if st.runtime.exists():
    from ui import auth, services, sidebar

    st.set_page_config(page_title="Image Studio", page_icon=":material/palette:", layout="wide")
    # With [auth] configured, a visitor not signed in (or in no role) gets the sign-in (or "ask an
    # owner") screen and st.stop(): st.navigation is never called, so no page of the app is served.
    user = auth.gate()
    if st.query_params.get("review") and user.can("rate"):
        # A review link: the voting page alone, no menu and no sidebar (they name providers and models).
        st.navigation([st.Page(REVIEW_PAGE, title="Review", icon=":material/how_to_vote:")], position="hidden").run()
        st.stop()
    page = st.navigation(pages_for(user))
    services.runner()  # already running under `streamlit run`; started here when run by AppTest
    sidebar.mark_app_run()
    try:
        page.run()
    except PermissionDenied as denied:  # the server's check said no, whatever the page showed: say so
        st.error(str(denied), icon=":material/block:")
    finally:
        # The sidebar after the page (also after a page's st.stop): the page's first elements, the Studio's
        # prompt box, reach the browser first (issue 17), and the sidebar names what the page chose this run.
        sidebar.render()
        auth.account_box(user)
