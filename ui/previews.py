"""A streamed preview shown in place of a job's progress picture while the image forms.

The job panel calls ``show(job_id)`` inside an unfinished job's card: it draws the
latest preview the provider streamed (kept in this process's memory by
``core.jobs.previews``), and says whether it drew one. Previews are never results:
once the job ends they are gone and the card shows the stored image.
"""

from __future__ import annotations

import streamlit as st

from core.jobs import previews

__all__ = ["DEFAULT", "WIDGET_KEY", "show"]

DEFAULT = 2  # previews asked of a model that streams, unless the person changes it (0 = none)
WIDGET_KEY = "studio_previews"


def show(job_id: str) -> bool:
    """Draw the latest streamed preview of ``job_id``; False when there is none (in this process)."""
    preview = previews.STORE.latest(job_id)
    if preview is None:
        return False
    st.image(preview.data, caption=f"Preview {preview.count}: still forming, not the final image",
             width="stretch")
    return True
