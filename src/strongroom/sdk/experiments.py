"""Workshop-style experiment classes: ``Experiment``, ``Trial``, ``TrialComponent``, ``Tracker``,
``ExperimentAnalytics`` — the calls users of the managed service's Experiments SDK know::

    from strongroom.experiments import Experiment, Trial, Tracker, ExperimentAnalytics

    experiment = Experiment.create(experiment_name="credit-default", description="...")
    trial = Trial.create(trial_name="xgboost-1", experiment_name=experiment.experiment_name)
    with Tracker.create(display_name="Preprocessing") as tracker:
        tracker.log_parameters({"train_test_split_ratio": 0.2})
        tracker.log_input(name="raw", value="sr://risk-data/raw.csv", media_type="text/csv")
    trial.add_trial_component(tracker.trial_component)
    ExperimentAnalytics(experiment_name="credit-default").dataframe()

Every class takes ``session=`` (default: ``strongroom.Session()``) and ``team=`` (default: the
session's team). Tracker writes go through the session's batch writer: ``durability="buffered"``
(the default) queues them and sends them in the background, leaving the ``with`` block (or
``close()``) flushes them; ``durability="durable"`` returns from each write once it is committed;
``durability="journaled"`` returns once the write is appended to a local journal (a ``kill -9``
loses nothing; the next journaled writer sends what was not acknowledged).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.experiments import models
from strongroom.sdk.tracking import Durability, ExperimentsClient, durability_from

if TYPE_CHECKING:
    import pandas as pd

    from strongroom.sdk.session import Session


def _client(session: Session | None, team: str | None) -> ExperimentsClient:
    if session is None:
        from strongroom.sdk.session import Session as _Session

        session = _Session()
    return session.experiments.for_team(team)


def _unique(prefix: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


class Experiment:
    """An experiment: a named group of trials."""

    def __init__(self, client: ExperimentsClient, entity: models.Experiment) -> None:
        self._client = client
        self.entity = entity

    @property
    def experiment_name(self) -> str:
        return self.entity.name

    @property
    def description(self) -> str:
        return self.entity.description

    def __repr__(self) -> str:
        return f"Experiment({self.experiment_name!r})"

    @classmethod
    def create(
        cls,
        experiment_name: str | None = None,
        description: str = "",
        display_name: str = "",
        tags: dict[str, str] | None = None,
        *,
        session: Session | None = None,
        team: str | None = None,
    ) -> Experiment:
        client = _client(session, team)
        name = experiment_name or _unique("experiment")
        return cls(client, client.create_experiment(name, display_name, description, tags=tags or {}))

    @classmethod
    def load(cls, experiment_name: str, *, session: Session | None = None, team: str | None = None) -> Experiment:
        client = _client(session, team)
        return cls(client, client.describe_experiment(experiment_name))

    def list_trials(self) -> list[Trial]:
        return [Trial(self._client, t) for t in self._client.list_trials(self.experiment_name)]

    def create_trial(self, trial_name: str | None = None, display_name: str = "") -> Trial:
        name = trial_name or _unique("trial")
        return Trial(self._client, self._client.create_trial(name, self.experiment_name, display_name))

    def delete(self) -> None:
        self._client.delete_experiment(self.experiment_name)


class TrialComponent:
    """A step of a trial (preprocessing, training, ...): parameters, artifacts, metrics."""

    def __init__(self, client: ExperimentsClient, entity: models.TrialComponent) -> None:
        self._client = client
        self.entity = entity

    @property
    def trial_component_name(self) -> str:
        return self.entity.name

    @property
    def display_name(self) -> str:
        return self.entity.display_name

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.entity.parameters)

    @property
    def input_artifacts(self) -> dict[str, models.ArtifactValue]:
        return dict(self.entity.inputs)

    @property
    def output_artifacts(self) -> dict[str, models.ArtifactValue]:
        return dict(self.entity.outputs)

    @property
    def metrics(self) -> list[models.MetricSummary]:
        return list(self.entity.metrics)

    @property
    def status(self) -> str:
        return self.entity.status

    def __repr__(self) -> str:
        return f"TrialComponent({self.trial_component_name!r})"

    @classmethod
    def load(
        cls, trial_component_name: str, *, session: Session | None = None, team: str | None = None
    ) -> TrialComponent:
        client = _client(session, team)
        return cls(client, client.describe_component(trial_component_name))

    def refresh(self) -> TrialComponent:
        self.entity = self._client.describe_component(self.trial_component_name)
        return self

    def delete(self) -> None:
        self._client.delete_component(self.trial_component_name)


def _component_name(component: TrialComponent | Tracker | str) -> str:
    if isinstance(component, str):
        return component
    if isinstance(component, Tracker):
        return component.trial_component.trial_component_name
    return component.trial_component_name


class Trial:
    """A trial: one attempt (e.g. one model configuration) made of trial components."""

    def __init__(self, client: ExperimentsClient, entity: models.Trial) -> None:
        self._client = client
        self.entity = entity

    @property
    def trial_name(self) -> str:
        return self.entity.name

    @property
    def experiment_name(self) -> str:
        return self.entity.experiment_name

    def __repr__(self) -> str:
        return f"Trial({self.trial_name!r}, experiment={self.experiment_name!r})"

    @classmethod
    def create(
        cls,
        trial_name: str | None = None,
        experiment_name: str = "",
        display_name: str = "",
        tags: dict[str, str] | None = None,
        *,
        session: Session | None = None,
        team: str | None = None,
    ) -> Trial:
        client = _client(session, team)
        name = trial_name or _unique("trial")
        return cls(client, client.create_trial(name, experiment_name, display_name, tags=tags or {}))

    @classmethod
    def load(cls, trial_name: str, *, session: Session | None = None, team: str | None = None) -> Trial:
        client = _client(session, team)
        return cls(client, client.describe_trial(trial_name))

    def add_trial_component(self, component: TrialComponent | Tracker | str) -> None:
        self._client.associate(self.trial_name, _component_name(component))

    def remove_trial_component(self, component: TrialComponent | Tracker | str) -> None:
        self._client.disassociate(self.trial_name, _component_name(component))

    def list_trial_components(self) -> list[TrialComponent]:
        return [TrialComponent(self._client, c) for c in self._client.list_components(trial=self.trial_name)]

    def delete(self) -> None:
        self._client.delete_trial(self.trial_name)


class Tracker:
    """Logs one trial component's parameters, inputs, outputs and metrics.

    Use it as a context manager: on exit the component is marked Completed (Failed if the block
    raised), its end time is set, and the background writer is told to send everything logged
    at once (``close(wait=True)`` waits for the platform's commit).

    ``durability`` (default ``$STRONGROOM_TRACKING_DURABILITY``, else ``"buffered"``): with
    ``"buffered"`` writes are queued and sent in batches in the background (a ``kill -9`` loses
    at most the last second's writes, see docs/experiments.md); with ``"durable"`` every write
    returns once the platform has committed it; with ``"journaled"`` every write returns once it
    is appended to a local journal file and is sent in batches as buffered writes are (a ``kill -9``
    loses nothing that returned: the next journaled writer of the same platform, team and user, or
    ``strongroom experiments replay-journal``, sends what the platform had not acknowledged).
    """

    def __init__(
        self,
        client: ExperimentsClient,
        component: models.TrialComponent,
        owns_session: bool = False,
        durability: Durability = "buffered",
    ) -> None:
        self._client = client
        self._name = component.name
        self._entity = component
        self._owns_session = owns_session
        self._closed = False
        self.durability: Durability = durability
        self._wait = durability == "durable"
        self._journaled = durability == "journaled"

    @classmethod
    def create(
        cls,
        display_name: str | None = None,
        *,
        trial_component_name: str | None = None,
        trial: Trial | str | None = None,
        tags: dict[str, str] | None = None,
        record_git: bool = True,
        durability: Durability | None = None,
        session: Session | None = None,
        team: str | None = None,
    ) -> Tracker:
        """Create a new trial component and a tracker for it.

        When run from inside a git working tree (and ``record_git``), the commit, branch,
        dirty flag and a hash of the uncommitted diff are recorded in the component's lineage.
        """
        mode = durability_from(durability)
        client = _client(session, team)
        trial_name = trial.trial_name if isinstance(trial, Trial) else trial
        commit = client.git_state() if record_git else None
        spec = models.ComponentCreate(
            name=trial_component_name or _unique("tc"),
            display_name=display_name or trial_component_name or "",
            trial=trial_name,
            tags=tags or {},
            source_type="Tracker",
            start_time=dt.datetime.now(dt.UTC),
            commit=commit,
        )
        if trial_component_name:  # a chosen name may be taken: create now, so a conflict is raised here
            component = client.create_component(**spec.model_dump(mode="json"))
        else:  # a generated name cannot clash: the creation rides in the writer's next batch
            client.writer.create(
                spec.name,
                spec.model_dump(mode="json", exclude={"name"}),
                wait=mode == "durable",
                journaled=mode == "journaled",
            )
            component = models.TrialComponent(
                name=spec.name,
                team=client.team,
                srn=f"srn:strongroom:{client.team}:trial-component/{spec.name}",
                display_name=spec.display_name or spec.name,
                source_type="Tracker",
                start_time=spec.start_time,
                trials=[trial_name] if trial_name else [],
                created_at=spec.start_time or dt.datetime.now(dt.UTC),
                created_by="",
            )
        return cls(client, component, owns_session=session is None, durability=mode)

    @classmethod
    def load(
        cls,
        trial_component_name: str | None = None,
        *,
        durability: Durability | None = None,
        session: Session | None = None,
        team: str | None = None,
    ) -> Tracker:
        """A tracker for an existing component — inside a job, its own (``$STRONGROOM_TRIAL_COMPONENT``)."""
        name = trial_component_name or os.environ.get("STRONGROOM_TRIAL_COMPONENT")
        if not name:
            from strongroom.core.errors import InvalidInput

            raise InvalidInput("give trial_component_name (outside a job there is no default)", field="name")
        mode = durability_from(durability)
        client = _client(session, team)
        return cls(client, client.describe_component(name), owns_session=session is None, durability=mode)

    @property
    def trial_component(self) -> TrialComponent:
        """The component as the platform has it (pending writes are flushed first); after the
        tracker closed its own session, the component as it was when it closed."""
        if not (self._closed and self._owns_session):
            self._entity = self._client.describe_component(self._name)
        return TrialComponent(self._client, self._entity)

    @property
    def trial_component_name(self) -> str:
        return self._name

    def _update(self, **changes: Any) -> None:
        self._client.writer.update(self._name, wait=self._wait, journaled=self._journaled, **changes)

    def log_parameter(self, name: str, value: float | int | str) -> None:
        self._update(parameters={name: value})

    def log_parameters(self, parameters: dict[str, float | int | str]) -> None:
        self._update(parameters=dict(parameters))

    def _artifact(
        self, value: str, media_type: str | None, sha256: str | None, version_id: str | None
    ) -> dict[str, str]:
        artifact = models.ArtifactValue(
            value=value, media_type=media_type or "", sha256=sha256 or "", version_id=version_id or ""
        )
        return artifact.model_dump()

    def log_input(
        self,
        name: str,
        value: str,
        media_type: str | None = None,
        *,
        sha256: str | None = None,
        version_id: str | None = None,
    ) -> None:
        """Record an input artifact (``value`` is its uri; pin it with ``version_id``/``sha256``)."""
        self._update(inputs={name: self._artifact(value, media_type, sha256, version_id)})

    def log_output(
        self,
        name: str,
        value: str,
        media_type: str | None = None,
        *,
        sha256: str | None = None,
        version_id: str | None = None,
    ) -> None:
        self._update(outputs={name: self._artifact(value, media_type, sha256, version_id)})

    def log_metric(
        self,
        metric_name: str,
        value: float,
        step: int | None = None,
        *,
        timestamp: dt.datetime | float | None = None,
        iteration_number: int | None = None,
    ) -> None:
        """Log one metric point: queued (buffered), journaled, or committed when this returns (durable)."""
        when = timestamp.timestamp() if isinstance(timestamp, dt.datetime) else timestamp
        self._client.writer.log_metric(
            self._name,
            metric_name,
            value,
            step if step is not None else iteration_number,
            when,
            wait=self._wait,
            journaled=self._journaled,
        )

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log several metrics at one step (durable: one wait for all of them)."""
        writer, last = self._client.writer, 0
        for name, value in metrics.items():
            last = writer.log_metric(self._name, name, value, step, journaled=self._journaled)
        if self._wait and last:
            writer.commit(last)

    def set_tags(self, tags: dict[str, str]) -> None:
        self._update(tags=dict(tags))

    def flush(self) -> None:
        self._client.flush()

    def close(self, status: str = "Completed", message: str = "", *, wait: bool = False) -> None:
        """Finish the component (status, end time) and send everything logged.

        The background writer sends at once; ``wait=True`` also waits until the platform has
        committed it. Reads through the same session (``trial_component``, analytics) and
        ``Session.close()`` / interpreter exit always wait for it.
        """
        if self._closed:
            return
        self._closed = True
        end = dt.datetime.now(dt.UTC).isoformat()
        self._update(status=status, status_message=message, end_time=end)
        if wait:
            self._client.flush()
        else:
            self._client.writer.request_flush()
        if self._owns_session:
            # The session ends here: keep the finished component, so `tracker.trial_component`
            # after the `with` block (the workshop's `trial.add_trial_component(...)`) still works.
            self._client.flush()
            self._entity = self._client.describe_component(self._name)
            self._client.close()
            self._client._s.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close("Failed", f"{exc_type.__name__}: {exc}"[:1024])

    def __repr__(self) -> str:
        return f"Tracker({self._name!r})"


class ExperimentAnalytics:
    """The analytics table of an experiment's components, as a pandas DataFrame.

    Columns: TrialComponentName, DisplayName, SourceArn, ..., one per parameter, six per metric
    (``<name> - Min|Max|Avg|StdDev|Last|Count``), two per artifact (``<name> - MediaType|Value``),
    and Trials / Experiments (lists of names).
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        search_expression: dict[str, Any] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        *,
        session: Session | None = None,
        team: str | None = None,
    ) -> None:
        self._client = _client(session, team)
        self.experiment_name = experiment_name
        self.search_expression = search_expression
        self.sort_by = sort_by
        self.sort_order = sort_order or "Ascending"
        self._frame: pd.DataFrame | None = None

    def dataframe(self, force_refresh: bool = False) -> pd.DataFrame:
        if self._frame is None or force_refresh:
            self._frame = self._client.search(
                self.experiment_name, self.search_expression, self.sort_by, self.sort_order
            )
        return self._frame
