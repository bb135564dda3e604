"""Baseline of "provider done -> image on screen": the seed documents' 2-second loop on a bare page.

A text area and a Generate button. The click submits one core.today job to an
emulator that this server starts in its own process, exactly as the app starts
its built-in one (same latency and jitter variables, renders on first download),
then runs the loop as the documents write it (``while True: get; if done: break;
sleep(2)``), downloads the result, writes it to a file and shows it with
``st.image(path, width="stretch")``, as the app's result card does. No database,
no runner, no fragment: the least a page can do to show a finished job.
"""

import os
import time
import uuid
from pathlib import Path

import streamlit as st

from emulator import Emulator
from providers import registry
from providers.registry import PROVIDERS
from providers.types import ImageRequest

PROVIDER = "coretoday"


@st.cache_resource
def emulator() -> Emulator:
    return Emulator(
        port=int(os.environ["IMAGE_STUDIO_EMULATOR_PORT"]),
        data_dir=Path(os.environ["IMAGE_STUDIO_DATA_DIR"]),
        latency=float(os.environ.get("IMAGE_STUDIO_EMULATOR_LATENCY", "3")),
        jitter=float(os.environ.get("IMAGE_STUDIO_EMULATOR_JITTER", "0")),
        prerender=True,  # as the app's built-in emulator does (core/services.py): the result is ready at "done"
    ).start()


emu = emulator()
prompt = st.text_area("Prompt", key="prompt")
if st.button("Generate", type="primary"):
    provider = registry.create(PROVIDER, api_key="bench", base_url=emu.url(PROVIDER))
    request = ImageRequest(prompt=prompt, model=PROVIDERS[PROVIDER].default_model, quality="medium", size="1:1")
    status = provider.submit(request, idempotency_key=uuid.uuid4().hex)
    job_id = status.job_id
    assert job_id is not None  # core.today always answers a create with its job id
    while True:
        status = provider.status(job_id)
        if status.done:
            break
        time.sleep(2)
    out = provider.result(status)[0]
    path = Path(os.environ["IMAGE_STUDIO_DATA_DIR"]) / f"{job_id}.{out.format}"
    path.write_bytes(out.data)
    provider.close()
    st.session_state["shown"] = str(path)
if st.session_state.get("shown"):
    st.image(st.session_state["shown"], width="stretch")
