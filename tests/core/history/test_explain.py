"""explain(): a failed job in words, from the typed fields of its error and nothing parsed out of prose."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.history import explain
from core.history.views import JobView, Money
from core.jobs.lifecycle import STATE_WORDS

FINISHED = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)

BASE = JobView(
    id="j" * 32, run_id="r" * 32, seq=0, provider="openai", model="gpt-image-2", quality="low", size="1:1",
    endpoint="live", prompt="a fox", variables=None, n=1, status="failed", provider_job_id=None, progress=None,
    expected_seconds=None, can_cancel=False, cancel_requested=False, attempts=1, queued_at=FINISHED,
    submitted_at=FINISHED, finished_at=FINISHED, updated_at=FINISHED, error_kind=None, error_message=None,
    error_detail=None, estimate=Money(Decimal("0.01")), billed=Money(Decimal(0)), rating=None, parent_job_id=None,
    claimed_by=None,
)


def failed(**fields: object) -> JobView:
    return dataclasses.replace(BASE, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("stage", "inputs", "words"), [
    ("output", False, "OpenAI made the image, then its safety filter withheld it."),
    ("input", False, "OpenAI's safety filter refused the prompt."),
    ("input", True, "OpenAI's safety filter refused the prompt or one of the input images."),
    (None, False, "OpenAI's safety filter refused this request."),
])
def test_moderation_says_the_stage_from_the_field(stage: str | None, inputs: bool, words: str) -> None:
    # The message says the opposite of the field on purpose: only the field counts.
    message = "The image was withheld." if stage == "input" else "The prompt was refused at the input stage."
    why = explain.explain(failed(error_kind="moderation", error_message=message, error_stage=stage),
                          had_input_images=inputs)
    assert why.title == "Blocked by the safety filter" and why.body == words and why.tone == "warning"


def test_input_stage_block_counted_as_an_estimate_says_it_is_not_billed() -> None:
    job = failed(error_kind="moderation", error_message="No.", error_stage="input",
                 billed=Money(Decimal("0.01"), estimated=True))
    assert explain.explain(job).charge.startswith("Refused before any image was made, so OpenAI does not bill it")
    job = dataclasses.replace(job, error_stage="output")
    assert explain.explain(job).charge.startswith("It may have been charged. The estimate of $0.01")


def test_rate_limit_wait_comes_from_retry_after_only() -> None:
    local = FINISHED.astimezone()
    job = failed(error_kind="rate_limited", error_message="Slow down.", error_retry_after=19.2)
    assert explain.explain(job).hint == f"Try again after {local.replace(second=20):%H:%M:%S} (about 20 s after " \
        "the refusal)."
    assert explain.explain(dataclasses.replace(job, finished_at=None)).hint == "Try again in about 20 s."
    # A number in the message is the adapter's wording, not a fact the app relies on.
    wordy = failed(error_kind="rate_limited", error_message="Slow down. Wait about 20 s and try again.")
    assert explain.explain(wordy).hint == "Wait a minute, then try again."


def test_old_rows_are_explained_from_their_kind_alone() -> None:
    # Schema 2's runner wrote an unsure refusal as "unknown" with the real error's words in the detail.
    legacy = failed(status="unknown", error_kind="unknown", error_message="lost contact",
                    error_detail="rate_limited: Slow down. Wait about 20 s and try again.\n{}")
    why = explain.explain(legacy)
    assert why.title == "Outcome unknown" and "dashboard" in why.hint
    assert why.detail == "rate_limited: Slow down. Wait about 20 s and try again.\n{}"
    # The keyword form pages used before the typed fields gives the same.
    same = explain.explain(status="unknown", error_kind="unknown", error_message="lost contact",
                           error_detail="rate_limited: Slow down. Wait about 20 s and try again.\n{}",
                           provider="openai", had_input_images=False, billed_usd=Decimal(0),
                           finished_at=FINISHED)
    assert same == why


@pytest.mark.parametrize(("kind", "status", "title"), [
    ("auth", "failed", "No working OpenAI key"),
    ("quota", "failed", "OpenAI account out of credit"),
    ("timeout", "failed", "OpenAI did not answer in time"),
    ("unavailable", "unknown", "OpenAI is unavailable"),
    ("auth", "unknown", "No working OpenAI key"),  # a revoked key while following: still a key problem
    ("invalid_request", "failed", "OpenAI refused the request"),
    ("canceled", "canceled", "Canceled"),
    (None, "canceled", "Canceled"),
    (None, "failed", "OpenAI could not make this image"),
    ("no_image", "failed", "OpenAI could not make this image"),
])
def test_each_kind_has_its_words(kind: str | None, status: str, title: str) -> None:
    why = explain.explain(failed(status=status, error_kind=kind, error_message="x"))
    assert why.title == title
    assert why.settings_link == (kind == "auth")


def test_charge_and_the_providers_own_words() -> None:
    assert explain.charge_text("running", None, False, None) is None
    assert explain.charge_text("failed", Decimal(0), False, None) == "Not charged."
    assert explain.charge_text("succeeded", Decimal("0.0425"), False, None) == "Charged $0.0425."
    assert explain.provider_words('{"error": {"message": "No.", "code": "moderation_blocked"}}') == (
        "No. (code: moderation_blocked)"
    )
    assert explain.provider_words("plain words\n[1, 2]") == "plain words\n[1, 2]"
    assert explain.provider_words("  ") is None


def test_state_words_have_one_home() -> None:
    assert not hasattr(explain, "STATUS_WORDS")
    assert STATE_WORDS["queued"] == "Waiting to be sent" and set(STATE_WORDS) >= {"succeeded", "unknown"}
