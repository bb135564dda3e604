"""The edit-spill line under a masked edit's result (Studio's job panel, Compare's cells), and the offer
to put the original back outside the mask when the model repainted too much of it."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.history.views import ImageView, JobView
from core.images import keep_outside as maskkeep
from core.review import locality
from ui import services

__all__ = ["spill_caption"]


def spill_caption(job: JobView, image: ImageView, *, key: str, kept: bool = False, offer: bool = True,
                  spills: Mapping[tuple[str, int], locality.Spill] | None = None) -> None:
    """Nothing for a job that is not a masked edit (no score was stored). ``spills``: already looked up."""
    if spills is None:
        spills = locality.spill_for(services.store().engine, [job.id])
    spill = spills.get((job.id, image.idx))
    if spill is None:
        return
    icon = ":material/warning:" if spill.high else ":material/center_focus_strong:"
    st.caption(f"{icon} Edit spill: {spill.percent:g}% of the pixels outside the mask changed "
               f"(mean change there {spill.mean_change:.1%})."
               + (" The model repainted beyond the mask." if spill.high and not kept else ""))
    if spill.high and not kept and offer:
        if st.button("Keep the original outside the mask", key=f"{key}_keep_outside", icon=":material/layers:",
                     help="Show and download this result with the original's pixels everywhere outside the mask "
                          "(the provider's own output stays in History)."):
            maskkeep.remember(services.store().data_dir, job.run_id, True)
            st.rerun()
