"""Role lists: emails and @domain, case-insensitive, exact entries before domains, where they are read from."""

from __future__ import annotations

import pytest

from core.accounts import ANONYMOUS, LOCAL_OPERATOR, Identity, PermissionDenied
from core.accounts.claims import SignInClaims, read_claims
from core.accounts.roles import RoleRules, normalize_pattern, parse_list
from core.accounts.sources import configured_roles, read_setting


def rules(owners: str = "", makers: str = "", viewers: str = "") -> RoleRules:
    return configured_roles(
        {"image_studio": {"IMAGE_STUDIO_OWNERS": owners, "IMAGE_STUDIO_MAKERS": makers,
                          "IMAGE_STUDIO_VIEWERS": viewers}}
    ).rules


def test_a_list_takes_emails_and_domains_and_ignores_the_rest() -> None:
    parsed = parse_list(" Ana@Example.COM, @Team.Example.org ,bob@x.io;carol@x.io\nnot-an-email, @nodot, a@b@c.com")
    assert parsed.patterns == {"ana@example.com", "@team.example.org", "bob@x.io", "carol@x.io"}
    assert parsed.ignored == ("not-an-email", "@nodot", "a@b@c.com")
    assert parse_list(["Ana@Example.com", "@y.org"]).patterns == {"ana@example.com", "@y.org"}  # a TOML list
    assert parse_list(None).patterns == frozenset() and parse_list("  ,, ").patterns == frozenset()
    assert normalize_pattern("@Example.com") == "@example.com"
    assert normalize_pattern("example.com") is None


def test_emails_match_whatever_their_case() -> None:
    r = rules(owners="Ana@Example.com", makers="@Makers.IO")
    assert r.role_of("ana@example.com") == "owner"
    assert r.role_of("  ANA@EXAMPLE.COM ") == "owner"
    assert r.role_of("Someone@makers.io") == "maker"


def test_a_domain_matches_only_itself() -> None:
    r = rules(viewers="@example.com")
    assert r.role_of("kim@example.com") == "viewer"
    assert r.role_of("kim@sub.example.com") == "none"
    assert r.role_of("kim@example.com.evil.io") == "none"
    assert r.role_of("kim@notexample.com") == "none"
    assert r.role_of("not an email") == "none"


def test_an_exact_entry_decides_before_a_domain_and_the_highest_role_wins_among_equals() -> None:
    r = rules(owners="boss@example.com", makers="@example.com", viewers="guest@example.com, boss@example.com")
    assert r.role_of("guest@example.com") == "viewer"  # named as a viewer: the maker domain does not apply
    assert r.role_of("boss@example.com") == "owner"  # named twice: the higher role
    assert r.role_of("anyone@example.com") == "maker"
    assert rules(makers="@example.com", viewers="@example.com").role_of("x@example.com") == "maker"


def test_someone_in_no_list_has_no_access() -> None:
    assert rules(owners="ana@example.com").role_of("eve@example.com") == "none"
    assert not rules().has_owner() and rules(owners="@example.com").has_owner()


def test_configuration_comes_from_secrets_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_OWNERS", "env-owner@example.com")
    monkeypatch.setenv("IMAGE_STUDIO_MAKERS", "@env.example.com")
    assert configured_roles({}).rules.role_of("env-owner@example.com") == "owner"
    secrets = {"image_studio": {"IMAGE_STUDIO_OWNERS": ["file-owner@example.com"]}, "IMAGE_STUDIO_VIEWERS": "v@x.io"}
    found = configured_roles(secrets).rules
    assert found.role_of("file-owner@example.com") == "owner"  # [image_studio] wins over the environment
    assert found.role_of("env-owner@example.com") == "none"
    assert found.role_of("m@env.example.com") == "maker"  # not in the file: the environment's
    assert found.role_of("v@x.io") == "viewer"  # the top level of secrets.toml works too
    assert read_setting("IMAGE_STUDIO_OWNERS", {"image_studio": {"IMAGE_STUDIO_OWNERS": "  "}}) == \
        "env-owner@example.com"  # an empty entry is not a setting


def test_what_each_role_may_do() -> None:
    def who(role: str) -> Identity:
        return Identity(user_id="u", email="u@x.io", name="u", role=role)  # type: ignore[arg-type]

    assert who("viewer").can("rate") and not who("viewer").can("generate")
    assert who("maker").can("generate") and not who("maker").can("set_caps")
    assert not who("maker").can("manage_settings") and not who("maker").can("delete_any")
    assert all(who("owner").can(a) for a in ("set_caps", "manage_roles", "manage_team_keys", "see_all_spend"))
    assert not any(who("none").can(a) for a in ("view", "rate", "generate"))
    with pytest.raises(PermissionDenied, match=r"u@x.io is a viewer and may not generate"):
        who("viewer").require("generate")
    LOCAL_OPERATOR.require("set_caps")  # no sign-in configured: the operator does everything, as before
    assert LOCAL_OPERATOR.local and not LOCAL_OPERATOR.signed_in and who("maker").signed_in
    assert not ANONYMOUS.local and not ANONYMOUS.signed_in and not ANONYMOUS.can("view")


def test_what_the_sign_in_claims_say() -> None:
    assert read_claims({}).state == "signed_out"  # no [auth], or not signed in
    assert read_claims({"is_logged_in": False, "email": "a@x.io"}).state == "signed_out"
    assert read_claims({"is_logged_in": True, "email": " Ana@X.io ", "email_verified": True, "name": " Ana "}) == \
        SignInClaims("signed_in", "ana@x.io", "Ana")
    assert read_claims({"is_logged_in": True, "email": "ana@x.io"}).state == "signed_in"  # no word on verification
    assert read_claims({"is_logged_in": True, "email": "ana@x.io", "email_verified": False}).state == "unverified"
    assert read_claims({"is_logged_in": True, "sub": "1234"}).state == "no_email"
    assert read_claims({"is_logged_in": True, "email": "@x.io"}).state == "no_email"  # a domain is nobody
