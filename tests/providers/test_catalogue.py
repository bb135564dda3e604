"""The price catalogue: published prices, whole-bill estimates, billed costs, exactness."""

from __future__ import annotations

import io
import re
import tomllib
from decimal import Decimal

import pytest
from PIL import Image

from providers import tokens
from providers.catalogue import DEFAULT_PRICES_PATH, Catalogue, Estimate, estimate_all, load_catalogue
from providers.errors import InvalidRequest
from providers.types import ImageRequest, InputImage, JobStatus, ModelCaps

D = Decimal
PER_M = D(1_000_000)


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


def req(model: str = "gpt-image-2", **kw) -> ImageRequest:
    return ImageRequest(prompt=kw.pop("prompt", "a red fox in fresh snow"), model=model, **kw)


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


def openai_caps(model: str = "gpt-image-2", **kw) -> ModelCaps:
    base = {
        "sizes": ("1024x1024", "1536x1024", "1024x1536", "2048x2048", "auto"),
        "free_size": True,
        "max_images_per_call": 10,
    }
    return ModelCaps(provider="openai", model=model, label=model, **{**base, **kw})


def line(estimate: Estimate, starts: str):
    found = [ln for ln in estimate.lines if ln.label.startswith(starts)]
    assert len(found) == 1, [ln.label for ln in estimate.lines]
    return found[0]


def assert_consistent(e: Estimate) -> None:
    assert e.total.amount == sum((ln.amount for ln in e.lines), D(0))
    if e.total.usd is not None:
        assert e.total.usd == sum((ln.usd for ln in e.lines), D(0))


# --- core.today ---------------------------------------------------------------------------


@pytest.mark.parametrize(("quality", "credits"), [("high", 480), ("auto", 480), ("medium", 176), ("low", 45)])
def test_coretoday_credits_per_image(cat, quality, credits):
    e = cat.estimate("coretoday", req(quality=quality))
    assert e.per_image.amount == credits and e.per_image.unit == "credits"
    assert e.per_image.usd == D(credits) * D("0.001")
    assert e.total == e.per_image
    assert e.confirmed
    assert_consistent(e)


def test_coretoday_high_is_48_cents_and_wire_id_is_accepted(cat):
    e = cat.estimate("coretoday", req("openai/gpt-image-2", quality="high"))
    assert e.per_image.usd == D("0.48")
    assert e.model == "openai/gpt-image-2"


def test_coretoday_reports_nothing_to_bill(cat):
    done = JobStatus(job_id="pred_1", state="succeeded", result_urls=("https://cdn.core.today/x.png",))
    assert cat.billed("coretoday", req(quality="high"), done) is None


# --- Apiframe -----------------------------------------------------------------------------


@pytest.mark.parametrize(("quality", "credits"), [("low", 4), ("medium", 9), ("high", 23), ("auto", 23)])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_apiframe_credits_times_n(cat, quality, credits, n):
    e = cat.estimate("apiframe", req(quality=quality, n=n))
    assert e.per_image.amount == credits
    assert e.total.amount == credits * n
    assert e.images == n
    # Apiframe publishes no dollar value for a v2 credit: no confident dollar amount.
    assert e.total.usd is None and e.per_image.usd is None
    assert not e.confirmed
    assert any("USD value per credit is unknown: set it in Settings" in note for note in e.notes)
    priced = cat.with_overrides({"apiframe": D("0.04")}).estimate("apiframe", req(quality=quality, n=n))
    assert priced.total.usd == D(credits * n) * D("0.04") and priced.confirmed
    assert_consistent(priced)


def test_apiframe_gpt_image_1_5_uses_the_higher_snapshot_and_is_unconfirmed(cat):
    e = cat.estimate("apiframe", req("gpt-image-1.5", quality="high"))
    assert e.per_image.amount == 24
    assert not e.confirmed
    assert any("disagree" in n for n in e.notes)


def test_apiframe_billed_from_credit_cost(cat):
    r = req(quality="high", n=2)
    done = JobStatus(job_id="j", state="succeeded", billed={"credits": 46})
    cost = cat.billed("apiframe", r, done)
    assert cost is not None and cost.amount == 46 and cost.usd is None and not cost.confirmed
    priced = cat.with_overrides({"apiframe": D("0.04")}).billed("apiframe", r, done)
    assert priced.usd == D("1.84") and priced.confirmed
    failed = JobStatus(job_id="j", state="failed", billed={"creditCost": 0})
    assert cat.billed("apiframe", r, failed).amount == 0
    assert cat.billed("apiframe", r, JobStatus(job_id="j", state="running")) is None


def test_override_of_apiframe_credit_value_changes_usd(cat):
    ours = cat.with_overrides({"apiframe": D("0.05")})
    e = ours.estimate("apiframe", req(quality="high"))
    assert e.per_image.usd == D("1.15")
    assert ours.usd_per_credit("apiframe") == D("0.05")
    assert e.confirmed  # the person's own figure
    # The original catalogue is untouched.
    assert cat.estimate("apiframe", req(quality="high")).per_image.usd is None
    unknown = cat.with_overrides({"apiframe": None}).estimate("apiframe", req(quality="high"))
    assert unknown.per_image.usd is None and unknown.total.usd is None and not unknown.confirmed


def test_overrides_refuse_floats_and_usd_providers(cat):
    with pytest.raises(TypeError):
        cat.with_overrides({"apiframe": 0.05})  # type: ignore[dict-item]
    with pytest.raises(InvalidRequest):
        cat.with_overrides({"openai": D("1")})


# --- OpenAI -------------------------------------------------------------------------------


def test_gpt_image_2_square_high_output(cat):
    e = cat.estimate("openai", req(size="1024x1024", quality="high"), openai_caps())
    out = line(e, "output image tokens")
    assert out.quantity == 7024
    assert out.unit_price == D(30) / PER_M
    assert out.amount == D("0.21072")
    assert e.per_image == type(e.per_image)(D("0.21072"), "USD", D("0.21072"), True)
    assert_consistent(e)


@pytest.mark.parametrize(
    ("size", "quality", "expected"),
    [
        ("1024x1024", "low", 196),
        ("1024x1024", "medium", 1756),
        ("1024x1024", "high", 7024),
        ("1536x1024", "low", 158),
        ("1536x1024", "medium", 1372),
        ("1536x1024", "high", 5488),
        ("1024x1536", "high", 5488),
        ("2048x1152", "medium", 1413),
        ("2048x2048", "high", 14272),
        ("3840x2160", "low", 371),
    ],
)
def test_gpt_image_2_reference_table(cat, size, quality, expected):
    e = cat.estimate("openai", req(size=size, quality=quality), openai_caps())
    assert line(e, "output image tokens").quantity == expected
    assert e.per_image.amount == expected * D(30) / PER_M


def test_ratio_sizes_without_caps_use_the_standard_pixels(cat):
    e = cat.estimate("openai", req(size="3:2", quality="medium"))
    assert "1536x1024" in line(e, "output image tokens").label
    assert line(e, "output image tokens").quantity == 1372


def test_quality_auto_is_estimated_as_high_with_a_note(cat):
    auto = cat.estimate("openai", req(size="1024x1024", quality="auto"), openai_caps())
    high = cat.estimate("openai", req(size="1024x1024", quality="high"), openai_caps())
    assert auto.per_image == high.per_image
    assert any("quality=auto" in n for n in auto.notes)


def test_size_auto_is_estimated_at_the_dearest_standard_size(cat):
    # auto picks among the standard sizes, never a large custom one such as 2048x2048
    e = cat.estimate("openai", req(size="auto", quality="high"), openai_caps())
    assert "1024x1024" in line(e, "output image tokens").label
    assert line(e, "output image tokens").quantity == 7024
    assert any("Size auto" in n for n in e.notes)
    gpt1 = openai_caps("gpt-image-1.5", sizes=("1024x1024", "1536x1024", "1024x1536", "auto"))
    e1 = cat.estimate("openai", req("gpt-image-1.5", size="auto", quality="high"), gpt1)
    assert line(e1, "output image tokens").quantity == 6240  # 1024x1536 high


def test_edit_includes_input_image_and_text_tokens(cat):
    prompt = "x" * 40  # 10 text tokens at four characters each
    images = (InputImage(data=png(1536, 1024), mime="image/png"), InputImage(url="https://example.com/in.png"))
    e = cat.estimate("openai", req(prompt=prompt, size="1024x1024", quality="high", images=images), openai_caps())
    text = line(e, "prompt text tokens")
    assert text.quantity == 10 and text.unit_price == D(5) / PER_M
    assert line(e, "edit request overhead").quantity == 32
    first = line(e, "input image 1")
    assert "1536x1024 measured" in first.label
    assert first.quantity == tokens.input_image_tokens("gpt-image-2", 1536, 1024) == 1536
    assert first.unit_price == D(8) / PER_M
    second = line(e, "input image 2")
    assert "1024x1024 assumed" in second.label and second.quantity == 1024
    expected = (D(7024) * 30 + D(10 + 32) * 5 + D(1536 + 1024) * 8) / PER_M
    assert e.total.amount == expected == D("0.23141")
    assert e.per_image.amount == D("0.21072")  # input is per request, not per image
    assert_consistent(e)


def test_given_input_sizes_win_and_fidelity_counts_on_1_5(cat):
    images = (InputImage(data=png(64, 64), mime="image/png"),)
    r = req("gpt-image-1.5", size="1024x1024", quality="low", images=images, input_fidelity="high")
    e = cat.estimate("openai", r, input_sizes=[(1536, 1024)])
    inp = line(e, "input image 1")
    assert inp.quantity == tokens.input_image_tokens("gpt-image-1.5", 1536, 1024, "high") == 323 + 6000
    assert "high fidelity" in inp.label
    assert any("input_fidelity=high" in n for n in e.notes)


def test_batch_of_three_triples_the_per_image_part(cat):
    caps = openai_caps()
    images = (InputImage(url="https://example.com/in.png"),)
    one = cat.estimate("openai", req(size="1536x1024", quality="medium", images=images), caps)
    three = cat.estimate("openai", req(size="1536x1024", quality="medium", images=images, n=3), caps)
    assert three.images == 3
    assert three.per_image == one.per_image
    assert line(three, "output image tokens").amount == 3 * one.per_image.amount
    per_request = one.total.amount - one.per_image.amount
    assert three.total.amount == 3 * one.per_image.amount + per_request
    # A provider making one image per call pays the per-request part per call.
    single = openai_caps(max_images_per_call=1)
    calls = cat.estimate("openai", req(size="1536x1024", quality="medium", images=images, n=3), single)
    assert calls.total.amount == 3 * one.total.amount
    assert_consistent(calls)


def test_billed_prices_the_usage_like_the_estimate(cat):
    usage = {
        "input_tokens": 1234,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 1184},
        "output_tokens": 7100,
        "output_tokens_details": {"image_tokens": 7024, "text_tokens": 76},
        "total_tokens": 8334,
    }
    done = JobStatus(job_id=None, state="succeeded", billed=usage)
    cost = cat.billed("openai", req(quality="high"), done)
    # 50 x $5 + 1184 x $8 + 7024 x $30 + 76 x $10, per 1M tokens
    assert cost is not None
    assert cost.amount == D("0.00025") + D("0.009472") + D("0.21072") + D("0.00076") == D("0.221202")
    assert cost.unit == "USD" and cost.usd == cost.amount and cost.confirmed
    # Also accepted wrapped as {"usage": ...}; no usage at all means nothing to price.
    assert cat.billed("openai", req(quality="high"), JobStatus(None, "succeeded", billed={"usage": usage})) == cost
    assert cat.billed("openai", req(), JobStatus(None, "succeeded")) is None


def test_billed_without_details_and_estimate_agree(cat):
    r = req(size="1024x1024", quality="high", prompt="abcd" * 5)
    e = cat.estimate("openai", r, openai_caps())
    usage = {"input_tokens": 5, "output_tokens": 7024}  # what the estimate assumed
    assert cat.billed("openai", r, JobStatus(None, "succeeded", billed=usage)).amount == e.total.amount


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-1.5", "gpt-image-2"])
def test_token_prices_reproduce_published_per_image_prices(cat, model):
    out_price = next(
        r["price"]
        for r in cat.rows()
        if r["provider"] == "openai" and r["model"] == model and r["item"] == "image_output"
    )
    published = cat.published_per_image("openai", model)
    assert set(published) == {"1024x1024", "1536x1024", "1024x1536"}
    for size, by_quality in published.items():
        for quality, price in by_quality.items():
            computed = tokens.output_image_tokens(model, quality, size) * out_price / PER_M
            # Published prices are rounded, and one figure covers both portrait and landscape
            # (1.x counts 1024x1536 about 1% dearer): agree within 2% or half a tenth of a cent.
            assert abs(computed - price) <= max(D("0.0005"), price * D("0.02")), (size, quality, computed, price)


def test_mini_conflict_is_recorded_not_hidden(cat):
    e = cat.estimate("openai", req("gpt-image-1-mini", size="1024x1024", quality="low"))
    assert e.per_image.amount == 272 * D(8) / PER_M  # tokens x price...
    assert e.per_image.amount < cat.published_per_image("openai", "gpt-image-1-mini")["1024x1024"]["low"]
    assert not e.confirmed and any("Conflict" in n for n in e.notes)


@pytest.mark.parametrize(
    ("quality", "tokens_1024"), [("low", 196), ("medium", 439), ("high", 1756), ("xhigh", 3122), ("max", 7024)]
)
def test_gpt_image_2_5_prices_every_quality_with_its_own_token_counts(cat, quality, tokens_1024):
    # OpenAI's calculator: the 2.5 models use fewer tokens per quality than gpt-image-2; max = gpt-image-2's high.
    e = cat.estimate("openai", req("gpt-image-2.5-sunburst-2026-09-08", size="1024x1024", quality=quality))
    assert e.confirmed and e.per_image.amount == tokens_1024 * D(30) / PER_M
    assert_consistent(e)


def test_gpt_image_2_6_is_unconfirmed_and_unknown_qualities_refused(cat):
    e = cat.estimate("openai", req("gpt-image-2.6-flare", size="1024x1024", quality="high"))
    assert not e.confirmed and e.per_image.amount == D("0.21072")  # gpt-image-2's counts, assumed
    with pytest.raises(InvalidRequest) as err:
        cat.estimate("openai", req("gpt-image-2.6-sunburst", quality="xhigh"))  # only the 2.5 models take it
    assert err.value.field == "quality"
    with pytest.raises(InvalidRequest):
        cat.estimate("openai", req("gpt-image-2.5-flare", quality="ultra"))


def test_snapshot_ids_resolve(cat):
    e = cat.estimate("openai", req("gpt-image-2-2026-04-21", size="1024x1024", quality="high"))
    assert e.per_image.amount == D("0.21072") and e.model == "gpt-image-2-2026-04-21"


# --- EvoLink ------------------------------------------------------------------------------


def test_evolink_tokens_in_credits(cat):
    e = cat.estimate("evolink", req("gpt-image-1", size="1024x1024", quality="high"))
    assert e.per_image.unit == "credits"
    assert e.per_image.amount == 4160 * D("2.448") / 1000 == D("10.18368")
    assert e.per_image.usd == D("10.18368") * D("0.0147")
    assert e.confirmed
    assert_consistent(e)
    two = cat.estimate("evolink", req("gpt-image-2", size="1024x1024", quality="high"))
    assert two.per_image.amount == 7024 * D("1.836") / 1000 and not two.confirmed


def test_evolink_4k_ratio_mode_is_scaled_and_labelled(cat):
    base = cat.estimate("evolink", req("gpt-image-2", size="1:1", quality="high"))
    big = cat.estimate("evolink", req("gpt-image-2", size="1:1", quality="high", resolution="4K"))
    assert big.per_image.amount > base.per_image.amount
    assert any("Resolution 4K" in n for n in big.notes)


def test_evolink_beta_priced_per_call_by_resolution(cat):
    assert cat.estimate("evolink", req("gpt-image-2-beta")).per_image.amount == D("1.02")
    assert cat.estimate("evolink", req("gpt-image-2-beta", resolution="4K", n=2)).total.amount == D("5.304")


def test_evolink_billed_prefers_final_credits(cat):
    r = req("gpt-image-1", quality="high")
    usage = {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"}
    reserved = cat.billed("evolink", r, JobStatus("task-1", "pending", billed=usage))
    assert reserved == type(reserved)(D("2.5"), "credits", D("2.5") * D("0.0147"), True)
    nested = cat.billed("evolink", r, JobStatus("task-1", "pending", billed={"usage": usage}))
    assert nested == reserved
    final = cat.billed("evolink", r, JobStatus("task-1", "completed", billed={**usage, "credits_used": "2.31"}))
    assert final.amount == D("2.31")


# --- the catalogue as data ----------------------------------------------------------------


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))


def test_no_float_anywhere_in_the_toml():
    raw = tomllib.loads(DEFAULT_PRICES_PATH.read_text(encoding="utf-8"))
    floats = [path for path, v in _walk(raw) if isinstance(v, float)]
    assert floats == []


def test_every_entry_has_source_and_checked():
    raw = tomllib.loads(DEFAULT_PRICES_PATH.read_text(encoding="utf-8"))
    entries = []
    for name, provider in raw.items():
        if name == "meta":
            continue
        entries.append((name, provider))
        if "usd_per_credit" in provider:
            entries.append((f"{name}.usd_per_credit", provider["usd_per_credit"]))
        entries += [(f"{name}.notes.{k}", v) for k, v in provider.get("notes", {}).items()]
        for model, m in provider.get("models", {}).items():
            entries.append((f"{name}.{model}", m))
            if "per_image" in m:
                entries.append((f"{name}.{model}.per_image", m["per_image"]))
    assert len(entries) > 20
    for where, entry in entries:
        assert str(entry.get("source", "")).startswith("https://"), where
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(entry.get("checked", ""))), where
        assert isinstance(entry.get("confirmed"), bool), where


def test_rows_are_exact_sourced_and_flag_unconfirmed(cat):
    rows = cat.rows()
    keys = {"provider", "model", "item", "price", "unit", "usd", "confirmed", "source", "checked"}
    for row in rows:
        assert keys <= set(row)
        # A price is exact, or None where it is not published (Apiframe's credit value).
        assert isinstance(row["price"], Decimal) or (row["item"] == "usd_per_credit" and row["price"] is None)
        assert row["usd"] is None or isinstance(row["usd"], Decimal)
        assert row["source"] and row["checked"]

    def find(provider, model, item):
        return next(r for r in rows if (r["provider"], r["model"], r["item"]) == (provider, model, item))

    assert find("openai", "gpt-image-2", "image_output")["confirmed"] is True
    assert find("openai", "gpt-image-2.6-sunburst", "image_output")["confirmed"] is False
    assert find("openai", "gpt-image-2.5-flare", "image_output")["confirmed"] is True
    assert find("apiframe", "gpt-image-1.5", "high")["confirmed"] is False
    assert find("evolink", "gpt-image-2", "image_output")["confirmed"] is False
    rate = find("apiframe", "", "usd_per_credit")
    assert rate["price"] is None and rate["usd"] is None and rate["confirmed"] is False
    assert find("apiframe", "gpt-image-2", "high")["usd_confirmed"] is False
    assert find("coretoday", "gpt-image-2", "high")["usd"] == D("0.480")
    assert find("openai", "gpt-image-2", "published per image 1024x1024 high")["price"] == D("0.211")


def test_results_are_decimals(cat):
    e = cat.estimate("evolink", req("gpt-image-1", images=(InputImage(url="https://e.com/a.png"),)))
    for value in (e.per_image.amount, e.per_image.usd, e.total.amount, e.total.usd):
        assert isinstance(value, Decimal)
    for ln in e.lines:
        assert all(isinstance(v, Decimal) for v in (ln.quantity, ln.unit_price, ln.amount, ln.usd))


def test_unknown_provider_or_model_is_a_clear_error(cat):
    with pytest.raises(InvalidRequest) as err:
        cat.estimate("nowhere", req())
    assert err.value.field == "model" and "nowhere" in str(err.value)
    with pytest.raises(InvalidRequest) as err:
        cat.estimate("coretoday", req("gpt-image-1"))
    assert err.value.field == "model" and "gpt-image-2" in err.value.allowed
    with pytest.raises(InvalidRequest):
        cat.billed("apiframe", req("dall-e-3"), JobStatus("j", "succeeded", billed={"credits": 1}))


def test_source_and_default_catalogue(cat):
    assert cat.source("coretoday", "openai/gpt-image-2") == (
        "https://console.core.today/en/docs/models/openai/gpt-image-2",
        "2026-11-22",
    )
    assert cat.source("apiframe")[1] == "2026-11-22"
    assert load_catalogue() is load_catalogue()
    assert load_catalogue(DEFAULT_PRICES_PATH) is not load_catalogue()
    assert cat.usd_per_credit("openai") is None and cat.currency("openai") == "USD"
    assert "quality_auto" in cat.notes("openai")


def test_estimate_all_covers_every_provider_and_quality(cat):
    pairs = [("openai", "gpt-image-2"), ("coretoday", "openai/gpt-image-2"), ("apiframe", "gpt-image-2")]
    rows = estimate_all(req(size="1:1"), pairs)
    assert [(e.provider, e.quality) for e in rows] == [(p, q) for p, _ in pairs for q in ("low", "medium", "high")]
    caps = {("openai", "gpt-image-2"): openai_caps(qualities=("low", "high"))}
    limited = estimate_all(req(size="1:1"), pairs[:1], caps=caps)
    assert [e.quality for e in limited] == ["low", "high"]
