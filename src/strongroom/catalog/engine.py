"""The provisioning engine: a durable, idempotent state machine over provisioned products.

Every round, each provisioned product that is UNDER_CHANGE advances as far as it can:

* ``launch``: steps in order. A step is recorded as "creating" *before* it acts and "created"
  (with its ref) after, so a restart mid-step calls ``create`` again (steps are idempotent and
  adopt what an interrupted attempt made). Then ``ready`` is polled. All ready -> AVAILABLE.
  A failure switches to ``rollback``.
* ``rollback`` / ``terminate``: every recorded resource, newest first, is deleted (adopted ones
  are left alone). Rollback ends in ERROR (with the failure), terminate in TERMINATED.
* ``update``: each step brings its resource to the new parameters. A failure switches to
  ``revert`` (the previous version and parameters), which ends in TAINTED.

State lives only in the database, so a restarted platform continues where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from strongroom.catalog.db import ProvisionedProductRow, ProvisionedResourceRow, ProvisioningEventRow
from strongroom.catalog.models import Operation, Status
from strongroom.catalog.provisioner import Provisioner, ProvisioningContext, Step, StepPending
from strongroom.catalog.service import launch_role_context
from strongroom.core.errors import StrongroomError
from strongroom.core.workers import Worker
from strongroom.db.base import utcnow
from strongroom.db.engine import Database

log = logging.getLogger(__name__)


class _Superseded(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StrongroomError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"


class ProvisioningEngine:
    """Advances provisioned products; ``run_once`` is safe to call at any time, again and again."""

    def __init__(self, db: Database, provisioners: Mapping[str, Provisioner]) -> None:
        self.db = db
        self.provisioners = dict(provisioners)

    # -- bookkeeping ------------------------------------------------------------------------

    def _event(self, product_id: str, kind: str, step: str = "", message: str = "") -> None:
        with self.db.write() as session:
            session.add(
                ProvisioningEventRow(product_id=product_id, time=utcnow(), kind=kind, step=step, message=message[:4000])
            )

    def _set(self, product_id: str, expected: str, **values: Any) -> None:
        """Change the product's row, but only if no other request changed its operation meanwhile."""
        values["updated_at"] = utcnow()
        with self.db.write() as session:
            done = session.execute(
                update(ProvisionedProductRow)
                .where(ProvisionedProductRow.id == product_id, ProvisionedProductRow.operation == expected)
                .values(**values)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise _Superseded

    def _resources(self, product_id: str) -> list[ProvisionedResourceRow]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(ProvisionedResourceRow)
                    .where(ProvisionedResourceRow.product_id == product_id)
                    .order_by(ProvisionedResourceRow.position)
                )
            )

    def _record(self, product_id: str, position: int, step: Step, **values: Any) -> None:
        with self.db.write() as session:
            row = session.scalars(
                select(ProvisionedResourceRow).where(
                    ProvisionedResourceRow.product_id == product_id, ProvisionedResourceRow.step == step.name
                )
            ).first()
            if row is None:
                row = ProvisionedResourceRow(
                    product_id=product_id,
                    position=position,
                    step=step.name,
                    kind=step.kind,
                    ref={},
                    state="creating",
                    adopted=False,
                    created_at=utcnow(),
                )
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)

    def _context(self, row: ProvisionedProductRow, parameters: Mapping[str, str] | None = None) -> ProvisioningContext:
        refs = {r.step: dict(r.ref or {}) for r in self._resources(row.id) if r.state != "deleted"}
        return ProvisioningContext(
            ctx=launch_role_context(row.team, row.id, row.launched_by),
            product_id=row.id,
            team=row.team,
            name=row.name,
            owner=row.owner,
            version=row.version,
            parameters=dict(parameters if parameters is not None else row.parameters),
            resources=refs,
        )

    # -- rounds -----------------------------------------------------------------------------

    def pending(self) -> list[str]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(ProvisionedProductRow.id)
                    .where(ProvisionedProductRow.status == Status.UNDER_CHANGE.value)
                    .order_by(ProvisionedProductRow.updated_at)
                )
            )

    def run_once(self) -> int:
        """Advance every product under change; return how many are still under change."""
        for product_id in self.pending():
            try:
                self.advance(product_id)
            except _Superseded:
                continue
            except Exception:
                log.exception("catalog: advancing %s failed; retrying next round", product_id)
        return len(self.pending())

    def advance(self, product_id: str) -> None:
        """Take one product as far as it can go now."""
        with self.db.read() as session:
            row = session.get(ProvisionedProductRow, product_id)
        if row is None or row.status != Status.UNDER_CHANGE.value:
            return
        provisioner = self.provisioners.get(row.product)
        if provisioner is None:
            self._set(
                row.id,
                row.operation,
                status=Status.ERROR.value,
                operation=Operation.NONE.value,
                status_message=f"this platform has no provisioner for product {row.product!r}",
            )
            return
        steps = list(provisioner.steps(row.version))
        try:
            if row.operation == Operation.LAUNCH:
                self._launch(row, provisioner, steps)
            elif row.operation in (Operation.UPDATE, Operation.REVERT):
                self._update(row, provisioner, steps)
            elif row.operation in (Operation.ROLLBACK, Operation.TERMINATE):
                self._teardown(row, steps)
        except StepPending:
            return

    def _launch(self, row: ProvisionedProductRow, provisioner: Provisioner, steps: list[Step]) -> None:
        recorded = {r.step: r for r in self._resources(row.id)}
        for position, step in enumerate(steps):
            current = recorded.get(step.name)
            try:
                if current is None or current.state == "creating":
                    if current is None:
                        self._record(row.id, position, step)
                        self._event(row.id, "StepStarted", step.name)
                    else:
                        self._event(row.id, "StepResumed", step.name, "continuing after an interruption")
                    ref, adopted = step.create(self._context(row))
                    self._record(row.id, position, step, ref=ref, state="created", adopted=adopted)
                    self._event(row.id, "StepCreated", step.name, "adopted an existing resource" if adopted else "")
                    recorded[step.name] = self._resources_by_step(row.id)[step.name]
                step.ready(self._context(row), recorded[step.name].ref or {})
            except StepPending:
                raise
            except _Superseded:
                raise
            except Exception as exc:
                message = f"step {step.name} failed: {_describe(exc)}"
                log.info("catalog: %s %s", row.id, message)
                self._event(row.id, "StepFailed", step.name, _describe(exc))
                self._event(row.id, "RollbackStarted")
                self._set(row.id, Operation.LAUNCH.value, operation=Operation.ROLLBACK.value, status_message=message)
                return
        outputs = provisioner.outputs(self._context(row))
        self._set(
            row.id,
            Operation.LAUNCH.value,
            status=Status.AVAILABLE.value,
            operation=Operation.NONE.value,
            outputs=outputs,
            status_message="",
        )
        self._event(row.id, "LaunchCompleted")

    def _resources_by_step(self, product_id: str) -> dict[str, ProvisionedResourceRow]:
        return {r.step: r for r in self._resources(product_id)}

    def _teardown(self, row: ProvisionedProductRow, steps: list[Step]) -> None:
        by_name = {s.name: s for s in steps}
        for resource in reversed(self._resources(row.id)):
            if resource.state == "deleted":
                continue
            step = by_name.get(resource.step)
            try:
                if step is not None and not resource.adopted:
                    step.delete(self._context(row), resource.ref or {})
            except StepPending:
                raise
            except Exception as exc:
                verb = "terminate" if row.operation == Operation.TERMINATE else "rollback"
                self._event(row.id, "DeleteFailed", resource.step, _describe(exc))
                self._set(
                    row.id,
                    row.operation,
                    status=Status.ERROR.value,
                    operation=Operation.NONE.value,
                    status_message=f"{verb} stopped at step {resource.step}: {_describe(exc)}; "
                    "fix the cause and terminate again (what is left is listed in resources)",
                )
                return
            self._record(
                row.id, resource.position, by_name.get(resource.step) or _Named(resource.step), state="deleted"
            )
            self._event(row.id, "StepDeleted", resource.step, "kept (it existed before)" if resource.adopted else "")
        if row.operation == Operation.TERMINATE:
            self._set(
                row.id,
                Operation.TERMINATE.value,
                status=Status.TERMINATED.value,
                operation=Operation.NONE.value,
                live_name=None,
                outputs={},
                status_message="terminated",
            )
            self._event(row.id, "TerminateCompleted")
        else:
            self._set(row.id, Operation.ROLLBACK.value, status=Status.ERROR.value, operation=Operation.NONE.value)
            self._event(row.id, "RollbackCompleted")

    def _update(self, row: ProvisionedProductRow, provisioner: Provisioner, steps: list[Step]) -> None:
        recorded = self._resources_by_step(row.id)
        old = dict((row.previous or {}).get("parameters") or row.parameters)
        if row.operation == Operation.REVERT:
            old = dict((row.previous or {}).get("failed_parameters") or row.parameters)
        pctx = self._context(row)
        for step in steps:
            resource = recorded.get(step.name)
            if resource is None or resource.state == "deleted":
                continue
            try:
                ref = step.update(pctx, resource.ref or {}, old)
                if ref != (resource.ref or {}):
                    self._record(row.id, resource.position, step, ref=ref)
                step.ready(pctx, ref)
            except StepPending:
                raise
            except _Superseded:
                raise
            except Exception as exc:
                self._event(row.id, "StepFailed", step.name, _describe(exc))
                if row.operation == Operation.REVERT:
                    self._set(
                        row.id,
                        Operation.REVERT.value,
                        status=Status.ERROR.value,
                        operation=Operation.NONE.value,
                        status_message=f"{row.status_message}; reverting failed at {step.name}: {_describe(exc)}",
                    )
                    return
                previous = dict(row.previous or {})
                self._event(row.id, "RevertStarted", message="restoring the previous version and parameters")
                self._set(
                    row.id,
                    Operation.UPDATE.value,
                    operation=Operation.REVERT.value,
                    version=previous.get("version", row.version),
                    parameters=previous.get("parameters", row.parameters),
                    previous={**previous, "failed_parameters": dict(row.parameters)},
                    status_message=f"update failed at step {step.name}: {_describe(exc)}",
                )
                return
        if row.operation == Operation.REVERT:
            self._set(row.id, Operation.REVERT.value, status=Status.TAINTED.value, operation=Operation.NONE.value)
            self._event(row.id, "RevertCompleted", message="running with the previous version and parameters")
            return
        self._set(
            row.id,
            Operation.UPDATE.value,
            status=Status.AVAILABLE.value,
            operation=Operation.NONE.value,
            outputs=provisioner.outputs(pctx),
            status_message="",
        )
        self._event(row.id, "UpdateCompleted")


class _Named(Step):
    """Stands in for a step a newer product version no longer has (only its name is needed)."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        raise StrongroomError(
            f"step {self.name!r} is not part of this product version any more; it can only be removed"
        )

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        return None


class CatalogWorker(Worker):
    """Runs the provisioning engine; a new request wakes it at once, and while something is
    under change it polls quickly (steps wait for processes to get ready)."""

    name = "catalog"
    busy_interval_seconds = 0.1

    def __init__(self, engine: ProvisioningEngine, interval_seconds: float) -> None:
        self.engine = engine
        self.interval_seconds = interval_seconds
        self.wakeup = threading.Event()

    def run_once(self) -> bool:
        return bool(self.engine.run_once())
