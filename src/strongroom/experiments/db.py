"""Experiment rows.

Trial components, their parameters, artifacts, tags and metric summaries are separate narrow
tables keyed by the component's integer id, so that analytics filter and pivot them with plain
indexed SQL on SQLite and PostgreSQL alike, and metric batches are bulk inserts. Metric
timestamps are stored as epoch seconds (a float), which costs nothing to bind in bulk.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("team", "name"),)


class TrialRow(Base):
    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("team", "name"),)


class TrialComponentRow(Base):
    __tablename__ = "trial_components"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16), default="InProgress")
    status_message: Mapped[str] = mapped_column(String(1024), default="")
    source: Mapped[str] = mapped_column(String(512), default="", index=True)
    source_type: Mapped[str] = mapped_column(String(64), default="")
    start_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("team", "name"),)


class TrialLinkRow(Base):
    """A component belongs to one or more trials."""

    __tablename__ = "trial_component_links"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    component_id: Mapped[int] = mapped_column(
        ForeignKey("trial_components.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ParameterRow(Base):
    __tablename__ = "trial_component_parameters"

    component_id: Mapped[int] = mapped_column(ForeignKey("trial_components.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    number_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    string_value: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_trial_component_parameters_name_number", "name", "number_value"),)


class ArtifactRow(Base):
    __tablename__ = "trial_component_artifacts"

    component_id: Mapped[int] = mapped_column(ForeignKey("trial_components.id", ondelete="CASCADE"), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # "input" | "output"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048))
    media_type: Mapped[str] = mapped_column(String(256), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    version_id: Mapped[str] = mapped_column(String(128), default="")


class ComponentTagRow(Base):
    __tablename__ = "trial_component_tags"

    component_id: Mapped[int] = mapped_column(ForeignKey("trial_components.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class MetricRow(Base):
    """One point of a metric's time series."""

    __tablename__ = "trial_component_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("trial_components.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    timestamp: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_trial_component_metrics_component_name", "component_id", "name"),)


class MetricSummaryRow(Base):
    """Running summary of one metric: count, min, max, mean and M2 (Welford/Chan), last value."""

    __tablename__ = "trial_component_metric_summaries"

    component_id: Mapped[int] = mapped_column(ForeignKey("trial_components.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    mean: Mapped[float] = mapped_column(Float)
    m2: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_timestamp: Mapped[float] = mapped_column(Float)
