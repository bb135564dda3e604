"""The accounts directory on a real database (SQLite and PostgreSQL): users, grants, the floor, sessions."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import clock
from core import db
from core.accounts import Accounts, CannotChangeOwnRole, Identity, PermissionDenied
from core.accounts.roles import RoleRules
from core.accounts.sources import configured_roles


def configured(owners: str = "", makers: str = "", viewers: str = "") -> Callable[[], RoleRules]:
    secrets = {"IMAGE_STUDIO_OWNERS": owners, "IMAGE_STUDIO_MAKERS": makers, "IMAGE_STUDIO_VIEWERS": viewers}
    return lambda: configured_roles(secrets).rules


@pytest.fixture
def engine(db_url: str) -> Engine:
    found = db.get_engine(db_url)
    db.migrate(found)
    return found


def users(engine: Engine) -> int:
    with db.read(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(db.users)).scalar_one())


def test_a_fresh_install_with_no_owner_configured_makes_nobody_owner(engine: Engine) -> None:
    accounts = Accounts(engine, configured())
    first = accounts.sign_in("first@example.com", "First")
    assert first.role == "none" and not first.has_access  # arriving first is not a credential
    assert not accounts.has_owner()
    with pytest.raises(PermissionDenied):
        accounts.grant(first, "first@example.com", "owner")
    assert accounts.grants() == []
    assert accounts.sign_in("second@example.com").role == "none"
    assert [m.email for m in accounts.members()] == ["first@example.com", "second@example.com"]  # waiting


def test_a_configured_owner_is_owner_and_emails_are_one_person_whatever_the_case(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="Ana@Example.com"))
    ana = accounts.sign_in("ana@example.com", "Ana")
    again = accounts.sign_in("  ANA@example.COM ", "Ana B.")
    assert ana.role == again.role == "owner" and ana.user_id == again.user_id and again.email == "ana@example.com"
    assert users(engine) == 1 and ana.session_id != again.session_id
    found = accounts.identity(ana.user_id)
    assert found is not None and found.name == "Ana B." and found.role == "owner"
    assert accounts.identity("no-such-user") is None
    for nobody in ("not an email", "@example.com"):
        with pytest.raises(ValueError, match="email"):
            accounts.sign_in(nobody)


def test_an_owner_changes_who_is_what_above_the_configured_floor(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="ana@example.com", makers="max@example.com"))
    ana = accounts.sign_in("ana@example.com")
    assert accounts.role_of("bob@example.com") == "none"
    accounts.grant(ana, "Bob@Example.com", "maker")
    accounts.grant(ana, "@partner.io", "viewer")
    assert accounts.role_of("bob@example.com") == "maker"
    assert accounts.role_of("Lee@partner.io") == "viewer"
    accounts.grant(ana, "lee@partner.io", "owner")  # an exact grant decides before the domain's
    assert accounts.role_of("lee@partner.io") == "owner"

    # The configuration is the floor: a grant can raise a configured maker, never lower one.
    accounts.grant(ana, "max@example.com", "viewer")
    assert accounts.role_of("max@example.com") == "maker"
    accounts.grant(ana, "max@example.com", "owner")
    assert accounts.role_of("max@example.com") == "owner"
    assert accounts.revoke(ana, "max@example.com") is True
    assert accounts.role_of("max@example.com") == "maker"  # back to the configured role
    assert accounts.revoke(ana, "max@example.com") is False

    assert [(g.pattern, g.role, g.granted_by) for g in accounts.grants()] == [
        ("@partner.io", "viewer", "ana@example.com"),
        ("bob@example.com", "maker", "ana@example.com"),
        ("lee@partner.io", "owner", "ana@example.com"),
    ]
    with pytest.raises(ValueError, match="not an email"):
        accounts.grant(ana, "partner.io", "viewer")


def test_only_owners_change_roles_and_never_their_own(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="ana@example.com", makers="max@example.com"))
    ana, max_ = accounts.sign_in("ana@example.com"), accounts.sign_in("max@example.com")
    with pytest.raises(PermissionDenied):
        accounts.grant(max_, "max@example.com", "owner")
    with pytest.raises(PermissionDenied):
        accounts.revoke(max_, "bob@example.com")
    with pytest.raises(CannotChangeOwnRole):
        accounts.grant(ana, "ANA@example.com", "viewer")
    accounts.grant(ana, "lee@example.com", "owner")
    lee = accounts.sign_in("lee@example.com")
    with pytest.raises(CannotChangeOwnRole):
        accounts.revoke(lee, "lee@example.com")  # no owner removes themselves (another owner can)
    assert accounts.has_owner()


def test_members_show_where_each_role_comes_from(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="ana@example.com", viewers="@example.com"))
    ana = accounts.sign_in("ana@example.com")
    accounts.sign_in("vic@example.com")
    accounts.sign_in("eve@elsewhere.io")
    accounts.grant(ana, "vic@example.com", "maker")
    by_email = {m.email: m for m in accounts.members()}
    assert (by_email["ana@example.com"].role, by_email["ana@example.com"].configured) == ("owner", "owner")
    vic = by_email["vic@example.com"]
    assert (vic.role, vic.configured, vic.granted) == ("maker", "viewer", "maker")
    assert by_email["eve@elsewhere.io"].role == "none"


def test_a_session_is_started_touched_and_ended(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="ana@example.com"))
    ana = accounts.sign_in("ana@example.com")
    assert ana.session_id is not None
    session = accounts.session(ana.session_id)
    assert session is not None and session.active and session.user_id == ana.user_id
    with clock.pin(clock.now() + timedelta(minutes=5)):
        assert accounts.touch_session(ana.session_id)
        later = accounts.session(ana.session_id)
        assert later is not None and later.last_seen_at > session.last_seen_at
        accounts.end_session(ana.session_id)
    ended = accounts.session(ana.session_id)
    assert ended is not None and not ended.active
    assert not accounts.touch_session(ana.session_id)
    assert not accounts.touch_session("never-was")
    assert accounts.sign_in("ana@example.com", start_session=False).session_id is None


def test_one_person_signing_in_from_many_threads_at_once_is_one_user(engine: Engine) -> None:
    accounts = Accounts(engine, configured(owners="ana@example.com"))
    seen: list[Identity] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            seen.append(accounts.sign_in("ana@example.com"))
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({i.user_id for i in seen}) == 1 and users(engine) == 1


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_engines_on_one_postgresql_agree(db_url: str, engine: Engine) -> None:
    """Two app processes are two engines (two pools) on one database: a change by one is seen by the other."""
    other = sa.create_engine(db.normalize_url(db_url))  # a separate pool, as another process has
    try:
        rules = configured(owners="ana@example.com")
        a, b = Accounts(engine, rules), Accounts(other, rules)
        ana = a.sign_in("ana@example.com")
        assert b.identity(ana.user_id) == dataclasses.replace(ana, session_id=None)
        a.grant(ana, "bob@example.com", "maker")
        assert b.role_of("bob@example.com") == "maker"
        bob = b.sign_in("Bob@example.com")
        b.grant(b.sign_in("ana@example.com"), "bob@example.com", "viewer")
        assert a.role_of("bob@example.com") == "viewer"
        assert bob.session_id is not None
        b.end_session(bob.session_id)
        session = a.session(bob.session_id)
        assert session is not None and not session.active
    finally:
        other.dispose()
