"""The provisioning engine as a user sees it: launch, failure and rollback, a platform that dies
mid-step, update and revert (TAINTED), terminate; portfolios deciding who may launch.

Runs on the real database (SQLite, and PostgreSQL when configured) with small in-memory products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.catalog.engine import ProvisioningEngine
from strongroom.catalog.models import ParameterSpec, Product, ProductVersion
from strongroom.catalog.provisioner import Provisioner, ProvisioningContext, Step, StepPending
from strongroom.catalog.service import CatalogService
from strongroom.core.context import Grant, RequestContext
from strongroom.core.errors import Conflict, Forbidden, InvalidInput
from strongroom.platform import Platform
from tests.support import context_for


class PlatformDied(BaseException):
    """Stands for the process being killed in the middle of a step."""


class World:
    """What the fake products create: named things, and switches to make steps fail or hang."""

    def __init__(self) -> None:
        self.things: dict[str, str] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.fail: set[str] = set()
        self.die_after_create: set[str] = set()
        self.pending: set[str] = set()


class ThingStep(Step):
    kind = "thing"

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name  # type: ignore[misc]

    def _key(self, pctx: ProvisioningContext) -> str:
        return f"{pctx.team}/{pctx.name}/{self.name}"

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        if self.name in self.world.fail:
            raise InvalidInput(f"{self.name} cannot be made")
        key = self._key(pctx)
        if key not in self.world.things:  # idempotent: a retry finds what the first attempt made
            self.world.things[key] = pctx.parameters.get("Colour", "")
            self.world.created.append(self.name)
        if self.name in self.world.die_after_create:
            self.world.die_after_create.discard(self.name)
            raise PlatformDied
        return {"key": key}, False

    def ready(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        if self.name in self.world.pending:
            raise StepPending

    def update(self, pctx: ProvisioningContext, ref: Mapping[str, Any], old: Mapping[str, str]) -> dict[str, Any]:
        if pctx.parameters.get("Colour") == "forbidden-colour":
            raise InvalidInput("that colour cannot be applied")
        self.world.things[str(ref["key"])] = pctx.parameters.get("Colour", "")
        return dict(ref)

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        self.world.things.pop(self._key(pctx), None)
        self.world.deleted.append(self.name)


class Widgets(Provisioner):
    product = Product(
        name="widgets",
        display_name="Widgets",
        versions=[
            ProductVersion(
                name="v1",
                parameters=[
                    ParameterSpec(name="TeamName", allowed_pattern="[a-z]+"),
                    ParameterSpec(name="Name", allowed_pattern="[a-z]+"),
                    ParameterSpec(name="Colour", default="blue"),
                ],
            )
        ],
    )

    def __init__(self, world: World) -> None:
        self.world = world

    def steps(self, version: str) -> Sequence[Step]:
        return [ThingStep(self.world, "first"), ThingStep(self.world, "second"), ThingStep(self.world, "third")]

    def outputs(self, pctx: ProvisioningContext) -> dict[str, str]:
        return {"WidgetUrl": f"/widgets/{pctx.team}/{pctx.name}", "Colour": pctx.parameters["Colour"]}


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def catalog(platform: Platform, world: World) -> tuple[CatalogService, ProvisioningEngine]:
    admin = context_for("admin", Grant("PlatformAdmin"))
    platform.identity.create_team(admin, "risk")
    platform.identity.create_team(admin, "fraud")
    provisioners = {"widgets": Widgets(world)}
    service = CatalogService(platform.db, platform.guard, provisioners)
    service.create_portfolio(admin, "risk", "tools", products=["widgets"], grants=["DataScientist"])
    return service, ProvisioningEngine(platform.db, provisioners)


ALICE = context_for("alice", Grant("DataScientist", "risk"))


def settle(engine: ProvisioningEngine, rounds: int = 20) -> None:
    for _ in range(rounds):
        if engine.run_once() == 0:
            return


def launch(service: CatalogService, ctx: RequestContext = ALICE, **params: str) -> None:
    service.launch(ctx, "widgets", {"TeamName": "risk", "Name": "w", **params})


def test_launch_provisions_every_step_and_shows_outputs(catalog: Any, world: World) -> None:
    service, engine = catalog
    launch(service)
    assert service.describe(ALICE, "risk", "w").status == "UNDER_CHANGE"
    settle(engine)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "AVAILABLE"
    assert product.outputs == {"WidgetUrl": "/widgets/risk/w", "Colour": "blue"}
    assert [r.step for r in product.resources] == ["first", "second", "third"]
    assert all(r.state == "created" for r in product.resources)
    kinds = [e.kind for e in product.events]
    assert kinds[0] == "LaunchRequested" and kinds[-1] == "LaunchCompleted"
    assert sorted(world.things) == ["risk/w/first", "risk/w/second", "risk/w/third"]


def test_a_failed_step_rolls_back_what_was_made_newest_first(catalog: Any, world: World) -> None:
    service, engine = catalog
    world.fail.add("third")
    launch(service)
    settle(engine)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "ERROR"
    assert "step third failed: third cannot be made" in product.status_message
    assert world.deleted == ["second", "first"] or world.deleted == ["third", "second", "first"]
    assert world.things == {}
    assert "RollbackCompleted" in [e.kind for e in product.events]


def test_a_platform_that_dies_mid_step_continues_without_duplicates(
    catalog: Any, world: World, platform: Platform
) -> None:
    service, engine = catalog
    world.die_after_create.add("second")
    launch(service)
    with pytest.raises(PlatformDied):
        engine.advance(engine.pending()[0])
    # the second step had made its thing but the platform died before recording it
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "UNDER_CHANGE"
    assert {r.step: r.state for r in product.resources} == {"first": "created", "second": "creating"}
    restarted = ProvisioningEngine(platform.db, {"widgets": Widgets(world)})
    settle(restarted)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "AVAILABLE"
    assert world.created == ["first", "second", "third"]  # nothing made twice
    assert "StepResumed" in [e.kind for e in product.events]


def test_a_step_still_getting_ready_keeps_the_product_under_change(catalog: Any, world: World) -> None:
    service, engine = catalog
    world.pending.add("second")
    launch(service)
    settle(engine, rounds=3)
    assert service.describe(ALICE, "risk", "w").status == "UNDER_CHANGE"
    assert "third" not in world.created
    world.pending.clear()
    settle(engine)
    assert service.describe(ALICE, "risk", "w").status == "AVAILABLE"


def test_terminate_removes_everything_and_frees_the_name(catalog: Any, world: World) -> None:
    service, engine = catalog
    launch(service)
    settle(engine)
    service.terminate(ALICE, "risk", "w")
    settle(engine)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "TERMINATED" and product.outputs == {}
    assert world.things == {} and world.deleted == ["third", "second", "first"]
    assert [p.name for p in service.list(ALICE, "risk")] == []
    launch(service, Colour="red")  # the name is free again
    settle(engine)
    assert service.describe(ALICE, "risk", "w").outputs["Colour"] == "red"


def test_update_applies_new_parameters_or_reverts_to_tainted(catalog: Any, world: World) -> None:
    service, engine = catalog
    launch(service)
    settle(engine)
    service.update(ALICE, "risk", "w", {"Colour": "green"})
    settle(engine)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "AVAILABLE" and product.outputs["Colour"] == "green"
    assert set(world.things.values()) == {"green"}

    service.update(ALICE, "risk", "w", {"Colour": "forbidden-colour"})
    settle(engine)
    product = service.describe(ALICE, "risk", "w")
    assert product.status == "TAINTED"
    assert "that colour cannot be applied" in product.status_message
    assert product.parameters["Colour"] == "green" and set(world.things.values()) == {"green"}
    with pytest.raises(InvalidInput, match="Size"):
        service.update(ALICE, "risk", "w", {"Size": "big"})


def test_portfolios_decide_who_may_launch(catalog: Any, platform: Platform) -> None:
    service, _ = catalog
    admin = context_for("admin", Grant("PlatformAdmin"))
    service.revoke_access(admin, "risk", "tools", "DataScientist")
    with pytest.raises(Forbidden, match="not granted to any of your roles by a portfolio"):
        launch(service)
    service.grant_access(admin, "risk", "tools", "DataScientist")
    fraud = context_for("fred", Grant("DataScientist", "fraud"))
    with pytest.raises(Forbidden):
        launch(service, fraud)  # the risk portfolio does not reach another team...
    with pytest.raises(Forbidden):
        service.launch(fraud, "widgets", {"TeamName": "fraud", "Name": "w"})  # ...and fraud has none
    launch(service)
    with pytest.raises(Conflict):
        launch(service)  # the name is taken
    denials = [e for e in platform.audit.query(admin, AuditFilter(action="LaunchProduct")) if e.decision == "Deny"]
    assert len(denials) == 3
    assert "guardrail-catalog-portfolio" in denials[0].policies


def test_a_data_scientist_terminates_only_their_own(catalog: Any) -> None:
    service, engine = catalog
    launch(service)
    settle(engine)
    bob = context_for("bob", Grant("DataScientist", "risk"))
    with pytest.raises(Forbidden):
        service.terminate(bob, "risk", "w")
    team_admin = context_for("dana", Grant("DataScienceAdmin", "risk"))
    service.terminate(team_admin, "risk", "w")
