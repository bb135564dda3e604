"""Opt-in prerendering: results exist when the job completes, as at a real provider; served only after it."""

from __future__ import annotations

import socket
import time

import httpx

from emulator import Emulator

KEY = {"X-API-Key": "k"}
BODY = {"model": "openai/gpt-image-2", "input": {"prompt": "rendered while it runs", "output_format": "png"}}


def _submit(emu: Emulator, http: httpx.Client) -> str:
    created = http.post(emu.url("coretoday") + "/v1/predictions", headers=KEY, json=BODY)
    assert created.status_code == 200, created.text
    return created.json()["id"]


def _result_file(emu: Emulator, job_id: str):
    return emu.store.files_dir / emu.store.result_name(emu.store.get(job_id), 0)


def test_prerendered_result_is_on_disk_before_completion_and_served_only_after(tmp_path):
    with Emulator(data_dir=tmp_path, latency=30, prerender=True) as emu, httpx.Client(timeout=15) as http:
        job_id = _submit(emu, http)
        path = _result_file(emu, job_id)
        deadline = time.monotonic() + 20
        while not path.exists():  # rendered in the background, long before the job's 30 s
            assert time.monotonic() < deadline, "the result was not prerendered"
            time.sleep(0.05)
        status = http.get(emu.url("coretoday") + f"/v1/predictions/{job_id}", headers=KEY).json()
        assert status["status"] in ("pending", "processing")
        url = emu.store.result_urls(emu.store.get(job_id))[0]
        assert http.get(url).status_code == 404  # not served before the job is done

        emu.store.get(job_id).job_time = 0  # let it complete now
        done = http.get(emu.url("coretoday") + f"/v1/predictions/{job_id}", headers=KEY).json()
        assert done["status"] == "succeeded" and done["output"] == [url]
        answer = http.get(url)
        assert answer.status_code == 200 and answer.content == path.read_bytes()


def test_without_prerender_results_are_rendered_on_first_download(tmp_path):
    with Emulator(data_dir=tmp_path, latency=0.2) as emu, httpx.Client(timeout=15) as http:
        job_id = _submit(emu, http)
        time.sleep(0.5)
        assert not _result_file(emu, job_id).exists()
        done = http.get(emu.url("coretoday") + f"/v1/predictions/{job_id}", headers=KEY).json()
        assert http.get(done["output"][0]).status_code == 200
        assert _result_file(emu, job_id).exists()


def test_listening_socket_says_it_is_tcp_so_asyncio_turns_nagle_off(tmp_path):
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; without it a response
    # body can wait for the client's delayed ACK of the headers.
    with Emulator(data_dir=tmp_path) as emu:
        assert emu._sock is not None and emu._sock.proto == socket.IPPROTO_TCP
