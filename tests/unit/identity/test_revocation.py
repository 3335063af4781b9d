"""Revocation reaches what was derived: sessions assumed with an API token, notebook cookies made from
them, and the open sockets registered against them."""

from __future__ import annotations

import threading

import pytest

from strongroom.audit.events import Event
from strongroom.core.context import Grant, RequestContext
from strongroom.core.errors import Unauthenticated
from strongroom.identity.models import IssuedToken
from strongroom.notebooks.sockets import OpenSocket
from strongroom.platform import Platform


def _alice(platform: Platform, admin: RequestContext) -> tuple[IssuedToken, IssuedToken]:
    platform.identity.create_user(admin, "alice")
    platform.identity.add_member(admin, "risk", "alice", "DataScientist")
    first = platform.identity.create_token(admin, "laptop", user="alice")
    second = platform.identity.create_token(admin, "ci", user="alice")
    return first, second


def _assume(platform: Platform, issued: IssuedToken) -> str:
    ctx = RequestContext(principal=platform.identity.authenticate(issued.secret))
    return platform.identity.assume_role(ctx, "DataScientist", "risk").token


def test_revoking_an_api_token_ends_the_sessions_assumed_with_it_only(teams: Platform, admin: RequestContext) -> None:
    identity = teams.identity
    laptop, ci = _alice(teams, admin)
    from_laptop, from_ci = _assume(teams, laptop), _assume(teams, ci)
    session = identity.authenticate(from_laptop)  # cached now: revocation must clear it
    assert session.parent_token == laptop.token.id and session.root_token == laptop.token.id

    identity.revoke_token(admin, laptop.token.id)

    with pytest.raises(Unauthenticated, match="revoked"):
        identity.authenticate(from_laptop)
    assert identity.authenticate(from_ci).user == "alice"


def test_a_notebook_cookie_dies_with_its_parent_token_and_with_its_user(teams: Platform, admin: RequestContext) -> None:
    laptop, ci = _alice(teams, admin)
    notebooks = teams.notebooks
    cookie = notebooks.session_cookie("alice", "DataScientist", "risk", "nb-1", parent=laptop.token.id)
    other = notebooks.session_cookie("alice", "DataScientist", "risk", "nb-1", parent=ci.token.id)
    principal, _ = notebooks.principal_from_cookie(cookie, "nb-1")
    assert principal.root_token == laptop.token.id

    teams.identity.revoke_token(admin, laptop.token.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        notebooks.principal_from_cookie(cookie, "nb-1")
    assert notebooks.principal_from_cookie(other, "nb-1")[0].user == "alice"

    teams.identity.set_user_disabled(admin, "alice", True)  # no 5-second grace: refused at once
    with pytest.raises(Unauthenticated, match="disabled"):
        notebooks.principal_from_cookie(other, "nb-1")


@pytest.mark.parametrize("change", ["revoke", "disable", "remove"])
def test_revocation_closes_the_open_sockets_that_depend_on_it(
    teams: Platform, admin: RequestContext, change: str
) -> None:
    identity = teams.identity
    laptop, ci = _alice(teams, admin)
    closed: dict[str, threading.Event] = {"laptop": threading.Event(), "ci": threading.Event()}

    def watch(name: str, issued: IssuedToken) -> OpenSocket:
        principal = identity.authenticate(issued.secret)
        return OpenSocket(
            "alice",
            "nb-1",
            lambda: identity.still_holds("alice", "DataScientist", "risk", principal.root_token),
            lambda reason: closed[name].set(),
        )

    events: list[Event] = []
    teams.bus.subscribe(events.append, kinds={"state"})
    with teams.notebooks.sockets.holding(watch("laptop", laptop)), teams.notebooks.sockets.holding(watch("ci", ci)):
        if change == "revoke":
            identity.revoke_token(admin, laptop.token.id)
        elif change == "disable":
            identity.set_user_disabled(admin, "alice", True)
        else:
            identity.remove_member(admin, "risk", "alice", "DataScientist")
        assert closed["laptop"].wait(1.0), "the socket stayed open after the revocation"
        assert teams.bus.drain()
        assert closed["ci"].is_set() == (change != "revoke")  # another token's socket stays unless the user went
    names = {e.name for e in events}
    assert names & {"ApiTokenRevoked", "UserDisabled", "TeamMemberRemoved"}
    assert all(e.data.get("user") == "alice" for e in events)


def test_a_membership_removal_ends_the_role_but_not_the_others(teams: Platform, admin: RequestContext) -> None:
    identity = teams.identity
    laptop, _ = _alice(teams, admin)
    identity.add_member(admin, "fraud", "alice", "DataScientist")
    ctx = RequestContext(principal=identity.authenticate(laptop.secret))
    risk = identity.assume_role(ctx, "DataScientist", "risk").token
    fraud = identity.assume_role(ctx, "DataScientist", "fraud").token
    identity.remove_member(admin, "risk", "alice", "DataScientist")
    with pytest.raises(Unauthenticated, match="no longer holds"):
        identity.authenticate(risk)
    assert identity.authenticate(fraud).grants == (Grant("DataScientist", "fraud"),)
