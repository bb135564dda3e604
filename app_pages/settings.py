"""Settings: sign-in and roles, keys for this session, where base URLs come from, defaults, budget caps, data
directory, prices."""

from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from core import config
from core import settings as app_settings
from core.accounts import TEAM, PermissionDenied, SecretKeyInvalid, SecretKeyMissing
from core.accounts import service as accounts_service
from core.exports import codegen
from core.spend.money import format_usd
from providers import registry
from providers.registry import PROVIDERS
from providers.types import QUALITY_WORDS
from ui import auth, services, sidebar, state

sidebar.ensure()
st.title("Settings")

user = auth.current_user()  # every save below checks this person's role on the server, not the page
auth.settings_section(user)

saved = app_settings.load()

def _session_keys_form() -> None:
    """No sign-in: keys typed here live only in this browser session, as always."""
    st.caption(
        "A key typed here lives only in this browser session: it is never stored, logged or shown again. "
        "For a permanent key use `.streamlit/secrets.toml` or an environment variable. "
        "A provider with no key runs on the built-in emulator."
    )
    with st.form("keys_form", border=False):
        typed: dict[str, str] = {}
        cols = st.columns(2)
        for i, (name, cls) in enumerate(PROVIDERS.items()):
            source = services.route(name, user).key_source
            typed[cls.key_env] = cols[i % 2].text_input(
                f"{registry.label(name)} key",
                type="password",
                placeholder={"session": "set for this session", "secrets": "set in secrets.toml",
                             "environment": "set in the environment", "none": "none: emulator"}.get(source, source),
                help=f"Or set {cls.key_env}. {cls.key_help}".strip(),
                key=f"settings_key_{name}",
            )
        c1, c2 = st.columns([1, 5])
        if c1.form_submit_button("Save keys", type="primary"):
            keys = dict(state.session_keys())
            for env, value in typed.items():
                if value.strip():
                    keys[env] = value.strip()
            st.session_state[state.SESSION_KEYS] = keys
            # Jobs sent with a typed key that a restart forgot wait for it; this one is the operator's too.
            resumed = sum(services.runner().supply_session_key(name, typed[cls.key_env], by=user)
                          for name, cls in PROVIDERS.items() if typed[cls.key_env].strip())
            st.success("Saved for this session." + (f" {resumed} waiting job(s) go on with it." if resumed else ""))
        if c2.form_submit_button("Forget typed keys"):
            st.session_state[state.SESSION_KEYS] = {}
            st.info("Keys typed in this session are forgotten.")


def _stored_keys_form() -> None:
    """Signed in: a typed key is stored encrypted for its holder (you, or the team), never shown again."""
    vault = accounts_service.vault()
    team = user.can("manage_team_keys") and st.toggle(
        "Keys for the whole team", key="settings_keys_team",
        help="A team key pays for the jobs of every maker who has no key of their own.")
    holder = TEAM if team else user.user_id
    st.caption(
        ("The team's keys pay for makers who have no key of their own. " if team else
         "Your own keys pay for your jobs (before the team's). ")
        + "A key typed here is stored encrypted and is never shown again; the jobs sent with it are followed "
        "with it after any restart, and never with another. A provider with no key runs on the emulator."
    )
    statuses = vault.statuses(holder)
    with st.form("stored_keys_form", border=False):
        typed: dict[str, str] = {}
        cols = st.columns(2)
        for i, name in enumerate(PROVIDERS):
            found = statuses.get(name)
            typed[name] = cols[i % 2].text_input(
                f"{registry.label(name)} key", type="password", key=f"settings_stored_key_{name}",
                placeholder="none" if found is None else
                f"set by {found.set_by or 'someone'} on {found.set_at:%Y-%m-%d %H:%M} UTC",
            )
        c1, c2 = st.columns([1, 4])
        if c1.form_submit_button("Store keys", type="primary"):
            try:
                done = [name for name, value in typed.items() if value.strip()
                        and vault.store(user, name, value, team=team)]
            except (PermissionDenied, SecretKeyMissing, SecretKeyInvalid, ValueError) as err:
                st.error(str(err), icon=":material/block:")
            else:
                st.success("Stored: " + ", ".join(registry.label(n) for n in done) if done else "Nothing typed.")
        forget = c2.form_submit_button("Forget these keys")
        if forget:
            try:
                gone = [n for n in PROVIDERS if vault.forget(user, n, team=team)]
            except PermissionDenied as err:
                st.error(str(err), icon=":material/block:")
            else:
                st.info(f"Forgotten: {len(gone)} key(s). Jobs sent with them wait until a key is stored again.")


st.subheader("API keys")
if user.local:
    _session_keys_form()
else:
    _stored_keys_form()

if not user.can("manage_settings"):
    st.caption("Defaults, budget caps, credit values and the price catalogue are for owners.")
    st.stop()

st.subheader("Base URLs")
st.markdown(
    "Each provider is called at its public API. To go through a proxy or gateway instead, set its base URL in "
    "the environment of the machine that runs this app ("
    + ", ".join(f"`{cls.base_url_env}`" for cls in PROVIDERS.values())
    + ") and restart the app. Base URLs are not set on this page: one typed in a browser would let any visitor "
    "point the app at another address. Jobs and “Copy as code” both use the address below; a provider without "
    "a key runs on the built-in emulator instead."
)
st.dataframe(
    pd.DataFrame(
        [(registry.label(name), cls.base_url_env, codegen.configured_base_url(name))
         for name, cls in PROVIDERS.items()],
        columns=["Provider", "Environment variable", "Base URL in use"],
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Defaults")
with st.form("defaults_form", border=False):
    c1, c2, c3 = st.columns(3)
    provider = c1.selectbox(
        "Provider", list(PROVIDERS), index=list(PROVIDERS).index(saved.default_provider)
        if saved.default_provider in PROVIDERS else 0, format_func=registry.label,
    )
    qualities = ["low", "medium", "high", "auto"]
    quality = c2.selectbox("Quality", qualities, format_func=lambda q: QUALITY_WORDS.get(q, q),
                           index=qualities.index(saved.default_quality) if saved.default_quality in qualities else 1)
    sizes = ["1:1", "3:2", "2:3"]
    size = c3.selectbox("Aspect ratio", sizes,
                        index=sizes.index(saved.default_size) if saved.default_size in sizes else 0)
    if st.form_submit_button("Save defaults"):
        user.require("manage_settings")
        saved.default_provider, saved.default_quality, saved.default_size = provider, quality, size
        app_settings.save(saved)
        st.success("Defaults saved for everyone using this app.")

st.subheader("Budget")
caps = services.store().get_caps()
st.caption(
    "Caps in USD. A submission whose estimate does not fit in what is left is refused before any request is "
    "sent. Simulated (emulator) spend is metered separately against the same caps. "
    "Empty = no cap (or the `IMAGE_STUDIO_BUDGET_USD_DAILY` / `_TOTAL` environment variable). "
    "The per-member cap holds each signed-in member to their own share of a day, within the team's caps."
)
with st.form("budget_form", border=False):
    c1, c2 = st.columns(2)
    daily_text = c1.text_input("Daily cap (USD)", value="" if caps.daily is None else str(caps.daily),
                               help=f"Now: {format_usd(caps.daily)} ({caps.daily_source or 'no cap'})")
    total_text = c2.text_input("Total cap (USD)", value="" if caps.total is None else str(caps.total),
                               help=f"Now: {format_usd(caps.total)} ({caps.total_source or 'no cap'})")
    member_text = st.text_input("Daily cap per member (USD)",
                                value="" if caps.member_daily is None else str(caps.member_daily),
                                help="Each signed-in member's own daily budget. Empty: only the team's caps.")
    if st.form_submit_button("Save budget"):
        try:
            daily = Decimal(daily_text) if daily_text.strip() else None
            total = Decimal(total_text) if total_text.strip() else None
            member = Decimal(member_text) if member_text.strip() else None
            if any(v is not None and (v < 0 or not v.is_finite()) for v in (daily, total, member)):
                raise InvalidOperation
        except InvalidOperation:
            st.error("A cap is a positive amount in USD, such as 5 or 2.50. Leave it empty for no cap.")
        else:
            services.store().set_caps(daily, total, member_daily=member, by=user)
            st.success("Budget saved.")

st.subheader("Credit values")
st.caption("Apiframe does not publish what one credit costs in USD. Set the value from your invoice; "
           "until then the catalogue's unconfirmed figure is used and marked so.")
current = services.catalogue().usd_per_credit("apiframe")
with st.form("credit_form", border=False):
    credit_text = st.text_input("Apiframe: USD per credit", value="" if current is None else str(current))
    if st.form_submit_button("Save credit value"):
        try:
            per_credit = Decimal(credit_text)
            if per_credit <= 0:
                raise InvalidOperation
        except InvalidOperation:
            st.error("Enter a positive amount in USD, such as 0.01.")
        else:
            user.require("manage_settings")
            saved.usd_per_credit["apiframe"] = str(per_credit)
            app_settings.save(saved)
            st.success("Saved: Apiframe estimates now use this value.")

st.subheader("Data")
st.markdown(f"Images, thumbnails and the history live in `{config.data_dir()}` "
            f"(database: {services.store().backend}). Set `IMAGE_STUDIO_DATA_DIR` or "
            "`IMAGE_STUDIO_DATABASE_URL` to move them.")

st.subheader("Price catalogue")
rows = services.catalogue().rows()
if rows:
    frame = pd.DataFrame(rows)
    shown = [c for c in ("provider", "model", "item", "price", "unit", "usd", "confirmed", "source", "checked")
             if c in frame.columns]
    st.dataframe(
        frame[shown],
        hide_index=True,
        width="stretch",
        column_config={
            "confirmed": st.column_config.CheckboxColumn("confirmed", help="Unconfirmed prices rest on no public "
                                                         "source of the provider's own; treat them as guesses."),
            "source": st.column_config.LinkColumn("source"),
        },
    )
