"""What a finished job costs: the rules for a failure, and how the ledger records the outcome.

Every finished job settles its reservation one of three ways (``Billing.mode``):
``billed`` (the provider reported the cost), ``estimated`` (no report: the
estimate stands as billed, flagged "may have been charged") or ``released``
(not charged). The rules below pick one from the provider's typed error and its
documented behaviour (``Provider.charges_failed_jobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from core.history.views import Billing
from core.spend import budget
from core.spend.money import usd_to_nanos
from providers.base import Provider
from providers.errors import (
    AuthError,
    InvalidRequest,
    JobFailed,
    ModelUnavailable,
    ModerationBlocked,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from providers.redact import redact_value
from providers.types import ImageRequest, JobStatus, ModelCaps

__all__ = [
    "Cost",
    "Pricing",
    "billing_for_failure",
    "billing_for_report",
    "refused",
    "reported_cost",
    "settle",
    "unsent_billing",
]

log = logging.getLogger(__name__)


class Cost(Protocol):
    """A priced amount (``providers.catalogue.Cost``)."""

    @property
    def usd(self) -> Decimal | None: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def unit(self) -> str: ...


class Estimate(Protocol):
    @property
    def total(self) -> Cost: ...


class Pricing(Protocol):
    """What the runner needs of ``providers.catalogue.Catalogue``."""

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None) -> Estimate: ...

    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Cost | None: ...


def billing_for_report(reported: Cost | None, raw: Mapping[str, Any] | None = None) -> Billing:
    """The provider's own report when it priced, else the estimate standing, flagged."""
    if reported is None:
        return Billing("estimated", raw=raw)
    return Billing("billed", usd=reported.usd, amount=reported.amount, unit=reported.unit, raw=raw)


def billing_for_failure(
    provider: Provider | type[Provider],
    err: BaseException | None,
    reported: Cost | None = None,
    raw: Mapping[str, Any] | None = None,
) -> Billing:
    """How a failed job's reservation settles.

    A failure the provider says it does not charge for gives the reservation
    back: a moderation block at the input stage or marked unbilled, and any
    failed job at a provider that ``charges_failed_jobs`` is False for (EvoLink,
    Apiframe: their reports on a failed job, such as EvoLink's
    ``credits_reserved``, are holds that are refunded). Otherwise the provider's
    own report wins, and with none the estimate stands as billed, flagged: it
    may have been charged.
    """
    if isinstance(err, ModerationBlocked) and (err.billed is False or (err.billed is None and err.stage == "input")):
        return Billing("released", raw=raw)
    unbilled_failure = err is None or isinstance(err, JobFailed | ModerationBlocked)
    said_billed = isinstance(err, ModerationBlocked) and err.billed
    if not provider.charges_failed_jobs and unbilled_failure and not said_billed:
        return Billing("released", raw=raw)
    return billing_for_report(reported, raw)


def refused(err: ProviderError) -> bool:
    """The provider answered the create with a definite no, so no job exists.

    A 4xx answer (other than 408 timeout / 409 conflict, which may follow work
    already done) or a typed refusal. A 5xx, a timeout or a dropped connection
    leaves the outcome unknown instead.
    """
    if isinstance(err, AuthError | InvalidRequest | ModelUnavailable | ModerationBlocked | QuotaExceeded | RateLimited):
        return True
    return err.status_code is not None and 400 <= err.status_code < 500 and err.status_code not in (408, 409)


def unsent_billing(err: ProviderError) -> Billing:
    """A create refused by the provider: nothing to pay unless it says so.

    A moderation block on the generated image (output stage) came after the work
    was done and may be billed: the estimate stands, flagged.
    """
    if isinstance(err, ModerationBlocked) and (err.billed is True or (err.billed is None and err.stage == "output")):
        return Billing("estimated")
    return Billing("released")


def reported_cost(pricing: Pricing, provider: str, request: ImageRequest, status: JobStatus) -> Cost | None:
    """What the provider's report on a job prices at; None when it reported nothing it can be priced by."""
    try:
        return pricing.billed(provider, request, status)
    except (ProviderError, ValueError, KeyError, TypeError) as err:
        log.warning("could not price the billed cost of a %s job: %s", provider, err)
        return None


def settle(conn: Connection, job_id: str, billing: Billing, estimate_nanos: int | None) -> dict[str, Any]:
    """Write the job's ledger entry as ``billing`` says; returns the ``jobs`` columns that show it."""
    values: dict[str, Any]
    if billing.mode == "released":
        budget.release(conn, job_id)
        values = {"billed_usd_nanos": 0, "billed_amount": None, "billed_unit": None, "billed_estimated": False}
    elif billing.mode == "billed":
        budget.settle(conn, job_id, usd=billing.usd, amount=billing.amount, unit=billing.unit, estimated=False)
        values = {
            # A report in credits with no USD rate keeps the estimate's USD figure.
            "billed_usd_nanos": usd_to_nanos(billing.usd) if billing.usd is not None else estimate_nanos,
            "billed_amount": None if billing.amount is None else str(billing.amount),
            "billed_unit": billing.unit,
            "billed_estimated": billing.usd is None,
        }
    elif billing.mode == "estimated":
        budget.settle(conn, job_id, usd=None, estimated=True)
        values = {"billed_usd_nanos": estimate_nanos, "billed_amount": None, "billed_unit": None,
                  "billed_estimated": True}
    else:
        raise ValueError(f"unknown billing mode {billing.mode!r}")
    if billing.raw is not None:  # the provider's own report: kept, with any key in it taken out
        values["billed_raw"] = redact_value(dict(billing.raw))
    return values
