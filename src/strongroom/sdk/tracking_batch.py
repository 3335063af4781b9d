"""What the tracking writer queues per component, and the batch body it sends.

One home for both the live writer (``strongroom.sdk.tracking.BatchWriter``) and the replay of a
journal (``strongroom.sdk.tracking_journal``): a write applied here gives the same batch body
whichever of them applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pending:
    """What is queued for one component."""

    create: dict[str, Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    steps: list[int | None] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)

    def has_update(self) -> bool:
        return bool(self.fields or self.parameters or self.inputs or self.outputs or self.tags)


def entry(queue: dict[str, Pending], component: str) -> Pending:
    """The queue's entry for ``component`` (made if missing)."""
    found = queue.get(component)
    if found is None:
        found = queue[component] = Pending()
    return found


def add_metric(
    queue: dict[str, Pending], component: str, name: str, value: float, step: int | None, timestamp: float
) -> None:
    pending = entry(queue, component)
    pending.names.append(name)
    pending.values.append(value)
    pending.steps.append(step)
    pending.timestamps.append(timestamp)


def add_create(queue: dict[str, Pending], component: str, spec: dict[str, Any]) -> None:
    entry(queue, component).create = {"name": component, **spec}


def add_update(queue: dict[str, Pending], component: str, changes: dict[str, Any]) -> None:
    """Field changes (status, end_time, ...) set; parameters/inputs/outputs/tags merged."""
    pending = entry(queue, component)
    rest = dict(changes)
    for key in ("parameters", "inputs", "outputs", "tags"):
        if key in rest:
            getattr(pending, key).update(rest.pop(key))
    pending.fields.update(rest)


def apply(queue: dict[str, Pending], record: dict[str, Any]) -> None:
    """Apply one journaled write (``{"op": "metric"|"create"|"update", ...}``, see ``write_record``)."""
    op, component = record["op"], record["c"]
    if op == "metric":
        add_metric(queue, component, record["n"], float(record["v"]), record["s"], float(record["t"]))
    elif op == "create":
        add_create(queue, component, record["spec"])
    elif op == "update":
        add_update(queue, component, record["changes"])
    else:
        raise ValueError(f"unknown journaled write {op!r}")


def write_record(seq: int, op: str, component: str, **data: Any) -> dict[str, Any]:
    """The journal line of one write (``apply`` reads it back)."""
    return {"seq": seq, "op": op, "c": component, **data}


def batch_body(taken: dict[str, Pending]) -> dict[str, Any]:
    """The body of ``POST /api/v1/teams/{team}/trial-component-batches`` for what was taken."""
    creates = [pending.create for pending in taken.values() if pending.create is not None]
    components = []
    metrics = []
    for name, pending in taken.items():
        if pending.has_update():
            item: dict[str, Any] = {"name": name, **pending.fields}
            for key in ("parameters", "inputs", "outputs", "tags"):
                if getattr(pending, key):
                    item[key] = getattr(pending, key)
            components.append(item)
        if pending.names:
            metrics.append(
                {
                    "component": name,
                    "names": pending.names,
                    "values": pending.values,
                    "steps": pending.steps,
                    "timestamps": pending.timestamps,
                }
            )
    return {"creates": creates, "components": components, "metrics": metrics}


def points_of(body: dict[str, Any]) -> int:
    """How many metric points a batch body carries."""
    return sum(len(m["names"]) for m in body.get("metrics", ()))
