"""Where each page lives, for ``st.switch_page`` and ``st.page_link`` (app.py's ``st.navigation`` lists them)."""

from __future__ import annotations

STUDIO = "app_pages/studio.py"
COMPARE = "app_pages/compare.py"
HISTORY = "app_pages/history.py"
SPEND = "app_pages/spend.py"
SETTINGS = "app_pages/settings.py"
REVIEW = "app_pages/review.py"
