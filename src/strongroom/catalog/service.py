"""Catalog service: products, portfolios, and the launch / update / terminate requests.

Requests are recorded here (status UNDER_CHANGE) and carried out by the provisioning engine
(``strongroom.catalog.engine``) on the catalog worker, so a launch survives a platform restart.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalog.db import PortfolioRow, ProvisionedProductRow, ProvisionedResourceRow, ProvisioningEventRow
from strongroom.catalog.models import Operation, Portfolio, Product, ProvisionedProduct, Status
from strongroom.catalog.provisioner import Provisioner
from strongroom.core.context import PLATFORM_ROLES, ROLES, Grant, Principal, RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.core.names import check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.policy.engine import Target

PLATFORM_PORTFOLIO = "platform"
LAUNCH_ROLE = "CatalogProvisioner"
LAUNCH_ROLE_USER = "catalog"


def launch_role_context(team: str, product_id: str = "", launched_by: str = "") -> RequestContext:
    """The catalog's own launch role in ``team``: what provisioning steps act as (audited as ``catalog``)."""
    principal = Principal(user=LAUNCH_ROLE_USER, token_kind="system", grants=(Grant(LAUNCH_ROLE, team),))
    source = f"catalog:{product_id}" if product_id else "catalog"
    return RequestContext(principal=principal, source=source, user_agent=f"launched by {launched_by}"[:256])


def product_target(name: str) -> Target:
    return Target("product", "", name)


def portfolio_target(team: str, name: str) -> Target:
    return Target("portfolio", team, name)


def provisioned_target(team: str, name: str, owner: str = "") -> Target:
    return Target("provisioned-product", team, name, owner=owner)


class CatalogService:
    """Products come from the provisioners the platform registers; everything else is in the database."""

    def __init__(
        self,
        db: Database,
        guard: Guard,
        provisioners: Mapping[str, Provisioner],
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.guard = guard
        self.provisioners = dict(provisioners)
        self._wake = wake or (lambda: None)

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Called by the catalog worker so new requests start at once instead of on the next round."""
        self._wake = wake

    # -- products ---------------------------------------------------------------------------

    def _product(self, name: str) -> Product:
        provisioner = self.provisioners.get(name)
        if provisioner is None:
            raise NotFound(f"the catalog has no product {name!r}; products: {', '.join(sorted(self.provisioners))}")
        return provisioner.product.model_copy(update={"srn": f"srn:strongroom::product/{name}"})

    def list_products(self, ctx: RequestContext) -> list[Product]:
        with self.guard.begin(ctx, "ListProducts", product_target("*")) as call, call.transaction(write=False):
            return [self._product(name) for name in sorted(self.provisioners)]

    def describe_product(self, ctx: RequestContext, name: str) -> Product:
        with self.guard.begin(ctx, "DescribeProduct", product_target(name)) as call, call.transaction(write=False):
            return self._product(name)

    # -- portfolios -------------------------------------------------------------------------

    @staticmethod
    def _portfolio_row(session: Session, team: str, name: str) -> PortfolioRow:
        row = session.scalars(select(PortfolioRow).where(PortfolioRow.team == team, PortfolioRow.name == name)).first()
        if row is None:
            where = f"team {team}" if team else "the platform"
            raise NotFound(f"{where} has no portfolio {name!r}", field="portfolio")
        return row

    def create_portfolio(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        description: str = "",
        products: list[str] | None = None,
        grants: list[str] | None = None,
    ) -> Portfolio:
        """A portfolio of ``team`` ("" = the platform portfolio) granting ``products`` to ``grants`` (roles)."""
        if team:
            check_name(team, "team")
        check_name(name, "name")
        for product in products or []:
            self._product(product)
        for role in grants or []:
            self._check_grant_role(role)
        params = {"team": team, "name": name, "products": products or [], "grants": grants or []}
        with (
            self.guard.begin(ctx, "CreatePortfolio", portfolio_target(team, name), params=params) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(Portfolio)) is not None:
                return replayed
            exists = call.session.scalars(
                select(PortfolioRow).where(PortfolioRow.team == team, PortfolioRow.name == name)
            ).first()
            if exists is not None:
                raise Conflict(f"portfolio {name!r} already exists", field="name")
            row = PortfolioRow(
                team=team,
                name=name,
                description=description,
                products=sorted(set(products or [])),
                grants=sorted(set(grants or [])),
                created_by=ctx.principal.user,
                created_at=utcnow(),
            )
            call.session.add(row)
            call.emit("PortfolioCreated", portfolio=name)
            return call.result(row.to_entity())

    @staticmethod
    def _check_grant_role(role: str) -> None:
        if role not in ROLES:
            raise InvalidInput(f"role {role!r} is unknown; roles are {', '.join(ROLES)}", field="role")

    def delete_portfolio(self, ctx: RequestContext, team: str, name: str) -> None:
        with (
            self.guard.begin(ctx, "DeletePortfolio", portfolio_target(team, name), params={"name": name}) as call,
            call.transaction(),
        ):
            call.session.delete(self._portfolio_row(call.session, team, name))
            call.emit("PortfolioDeleted", portfolio=name)

    def _change_portfolio(
        self, ctx: RequestContext, action: str, team: str, name: str, field: str, value: str, add: bool
    ) -> Portfolio:
        with (
            self.guard.begin(ctx, action, portfolio_target(team, name), params={field: value}) as call,
            call.transaction(),
        ):
            row = self._portfolio_row(call.session, team, name)
            current = set(row.products if field == "product" else row.grants)
            current = current | {value} if add else current - {value}
            if field == "product":
                row.products = sorted(current)
            else:
                row.grants = sorted(current)
            return row.to_entity()

    def associate_product(self, ctx: RequestContext, team: str, name: str, product: str) -> Portfolio:
        self._product(product)
        return self._change_portfolio(ctx, "AssociateProductWithPortfolio", team, name, "product", product, True)

    def disassociate_product(self, ctx: RequestContext, team: str, name: str, product: str) -> Portfolio:
        return self._change_portfolio(ctx, "DisassociateProductFromPortfolio", team, name, "product", product, False)

    def grant_access(self, ctx: RequestContext, team: str, name: str, role: str) -> Portfolio:
        self._check_grant_role(role)
        return self._change_portfolio(ctx, "GrantPortfolioAccess", team, name, "role", role, True)

    def revoke_access(self, ctx: RequestContext, team: str, name: str, role: str) -> Portfolio:
        return self._change_portfolio(ctx, "RevokePortfolioAccess", team, name, "role", role, False)

    def list_portfolios(self, ctx: RequestContext, team: str = "") -> list[Portfolio]:
        """The platform portfolio and, with ``team``, that team's portfolios."""
        with (
            self.guard.begin(ctx, "ListPortfolios", portfolio_target(team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(PortfolioRow).where(PortfolioRow.team.in_({"", team})).order_by(PortfolioRow.name)
            )
            return [self.platform_portfolio(), *(r.to_entity() for r in rows)]

    def platform_portfolio(self) -> Portfolio:
        """The built-in platform portfolio: each product granted to the roles its provisioner names."""
        products = sorted(n for n, p in self.provisioners.items() if p.platform_grants)
        grants = sorted({r for p in self.provisioners.values() for r in p.platform_grants})
        return Portfolio(
            team="",
            name=PLATFORM_PORTFOLIO,
            description="Products every team may use, granted by role (defined by the platform)",
            products=products,
            grants=grants,
            created_by="platform",
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            srn=f"srn:strongroom::portfolio/{PLATFORM_PORTFOLIO}",
        )

    def _granted(self, session: Session, principal: Principal, product: str, team: str) -> bool:
        rows = [r.to_entity() for r in session.scalars(select(PortfolioRow).where(PortfolioRow.team.in_({"", team})))]
        for row in [self.platform_portfolio(), *rows]:
            if product not in row.products:
                continue
            allowed = self.provisioners[product].platform_grants if row.team == "" else row.grants
            for grant in principal.grants:
                if grant.role not in allowed:
                    continue
                if row.team == "" and (grant.team in ("", team) or grant.role in PLATFORM_ROLES):
                    return True
                if row.team == team and grant.team == team:
                    return True
        return False

    # -- provisioned products ---------------------------------------------------------------

    def _provisioner(self, product: str) -> Provisioner:
        self._product(product)
        return self.provisioners[product]

    def launch(
        self,
        ctx: RequestContext,
        product: str,
        parameters: Mapping[str, Any],
        *,
        version: str | None = None,
    ) -> ProvisionedProduct:
        """Record a launch (status UNDER_CHANGE); the catalog worker provisions it.

        Raises:
            InvalidInput: a parameter is unknown, missing, or refused by its constraints.
            Forbidden: no portfolio grants the product to the caller's roles, or the policy denies it.
        """
        provisioner = self._provisioner(product)
        definition = provisioner.product
        chosen = definition.version(version)
        raw_team = parameters.get("TeamName")
        team = check_name(raw_team, "parameters.TeamName")
        params_for_audit = {"product": product, "version": chosen.name, "parameters": _auditable(parameters)}
        owner_hint = str(parameters.get("Owner") or ctx.principal.user)
        target = provisioned_target(team, "*", owner=owner_hint)
        with self.db.read() as session:
            granted = self._granted(session, ctx.principal, product, team)
        with (
            self.guard.begin(
                ctx, "LaunchProduct", target, params=params_for_audit, context={"product_granted": granted}
            ) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(ProvisionedProduct)) is not None:
                return replayed
            resolved = chosen.resolve(parameters)
            resolved = provisioner.check_launch(ctx, team, resolved)
            team, name = provisioner.name_of(resolved)
            owner = resolved.get("Owner", ctx.principal.user)
            call.check(provisioned_target(team, name, owner=owner), {"product_granted": granted})
            live = call.session.scalars(
                select(ProvisionedProductRow).where(
                    ProvisionedProductRow.team == team, ProvisionedProductRow.live_name == name
                )
            ).first()
            if live is not None:
                raise Conflict(f"team {team} already has a provisioned product named {name!r}", field="name")
            now = utcnow()
            row = ProvisionedProductRow(
                id="pp-" + secrets.token_hex(6),
                team=team,
                name=name,
                product=product,
                version=chosen.name,
                owner=owner,
                launched_by=ctx.principal.user,
                status=Status.UNDER_CHANGE.value,
                operation=Operation.LAUNCH.value,
                status_message="launch requested",
                parameters=resolved,
                previous={},
                outputs={},
                live_name=name,
                created_at=now,
                updated_at=now,
            )
            call.session.add(row)
            call.session.flush()
            call.session.add(
                ProvisioningEventRow(
                    product_id=row.id, time=now, kind="LaunchRequested", message=f"by {ctx.principal.user}"
                )
            )
            call.emit("ProductLaunched", product=product, provisioned_product=row.id)
            entity = call.result(row.to_entity())
        self._wake()
        return entity

    def _live_row(self, session: Session, team: str, name: str) -> ProvisionedProductRow:
        row = session.scalars(
            select(ProvisionedProductRow).where(
                ProvisionedProductRow.team == team, ProvisionedProductRow.live_name == name
            )
        ).first()
        if row is None:
            raise NotFound(f"team {team} has no provisioned product {name!r}", field="name")
        return row

    def _owner(self, team: str, name: str) -> str:
        with self.db.read() as session:
            row = session.scalars(
                select(ProvisionedProductRow.owner).where(
                    ProvisionedProductRow.team == team, ProvisionedProductRow.live_name == name
                )
            ).first()
        return row or ""

    def update(
        self, ctx: RequestContext, team: str, name: str, parameters: Mapping[str, Any], *, version: str | None = None
    ) -> ProvisionedProduct:
        """Change parameters (unchanged ones keep their values) and/or the product version."""
        target = provisioned_target(team, name, owner=self._owner(team, name))
        params = {"parameters": _auditable(parameters), "version": version}
        with self.guard.begin(ctx, "UpdateProvisionedProduct", target, params=params) as call, call.transaction():
            row = self._live_row(call.session, team, name)
            if row.status in (Status.UNDER_CHANGE, Status.TERMINATED):
                raise Conflict(f"{name} is {row.status}; wait until it settles", field="name", status=row.status)
            provisioner = self._provisioner(row.product)
            chosen = provisioner.product.version(version or row.version)
            resolved = chosen.resolve(parameters, previous=row.parameters)
            provisioner.check_update(row.parameters, resolved)
            row.previous = {"version": row.version, "parameters": dict(row.parameters)}
            row.version = chosen.name
            row.parameters = resolved
            row.status = Status.UNDER_CHANGE.value
            row.operation = Operation.UPDATE.value
            row.status_message = "update requested"
            row.updated_at = utcnow()
            call.session.add(
                ProvisioningEventRow(
                    product_id=row.id, time=row.updated_at, kind="UpdateRequested", message=str(params)
                )
            )
            entity = row.to_entity()
        self._wake()
        return entity

    def terminate(self, ctx: RequestContext, team: str, name: str) -> ProvisionedProduct:
        """Remove everything the product created (newest first); the name is free again afterwards."""
        target = provisioned_target(team, name, owner=self._owner(team, name))
        with (
            self.guard.begin(ctx, "TerminateProvisionedProduct", target, params={"name": name}) as call,
            call.transaction(),
        ):
            row = self._live_row(call.session, team, name)
            if row.operation == Operation.TERMINATE:
                return row.to_entity()
            self._provisioner(row.product).check_terminate(ctx, team, name)
            row.status = Status.UNDER_CHANGE.value
            row.operation = Operation.TERMINATE.value
            row.status_message = "terminate requested"
            row.updated_at = utcnow()
            call.session.add(
                ProvisioningEventRow(
                    product_id=row.id,
                    time=row.updated_at,
                    kind="TerminateRequested",
                    message=f"by {ctx.principal.user}",
                )
            )
            entity = row.to_entity()
        self._wake()
        return entity

    def describe(self, ctx: RequestContext, team: str, name: str) -> ProvisionedProduct:
        """A provisioned product with what it created and its event log."""
        target = provisioned_target(team, name, owner=self._owner(team, name))
        with self.guard.begin(ctx, "DescribeProvisionedProduct", target) as call, call.transaction(write=False):
            row = call.session.scalars(
                select(ProvisionedProductRow)
                .where(ProvisionedProductRow.team == team, ProvisionedProductRow.name == name)
                .order_by(ProvisionedProductRow.created_at.desc())
            ).first()
            if row is None:
                raise NotFound(f"team {team} has no provisioned product {name!r}", field="name")
            return self._full(call.session, row)

    @staticmethod
    def _full(session: Session, row: ProvisionedProductRow) -> ProvisionedProduct:
        resources = session.scalars(
            select(ProvisionedResourceRow)
            .where(ProvisionedResourceRow.product_id == row.id)
            .order_by(ProvisionedResourceRow.position)
        )
        events = session.scalars(
            select(ProvisioningEventRow)
            .where(ProvisioningEventRow.product_id == row.id)
            .order_by(ProvisioningEventRow.id)
        )
        return row.to_entity([r.to_entity() for r in resources], [e.to_entity() for e in events])

    def list(self, ctx: RequestContext, team: str, *, include_terminated: bool = False) -> list[ProvisionedProduct]:
        with (
            self.guard.begin(ctx, "ListProvisionedProducts", provisioned_target(team, "*")) as call,
            call.transaction(write=False),
        ):
            query = select(ProvisionedProductRow).where(ProvisionedProductRow.team == team)
            if not include_terminated:
                query = query.where(ProvisionedProductRow.status != Status.TERMINATED.value)
            return [r.to_entity() for r in call.session.scalars(query.order_by(ProvisionedProductRow.created_at))]


def _auditable(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as the audit log keeps them: long scripts are summarised, not copied."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        text = str(value)
        out[str(key)] = text if len(text) <= 200 else f"<{len(text)} characters>"
    return out
