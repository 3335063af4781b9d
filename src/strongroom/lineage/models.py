"""Lineage entities, associations, graphs, and the reproduction record of a job.

Entities are artifacts (data, models, code, commits, runtimes, reports, baselines), actions
(deployments, approvals), contexts (endpoints, experiments, projects) and trial components
(jobs and tracked runs). Associations say how one flowed into another: a dataset
``ContributedTo`` a job, a job ``Produced`` a model, a model ``DerivedFrom`` a checkpoint, a
commit ``AssociatedWith`` a job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KINDS = ("artifact", "action", "context", "trial-component")
Kind = Literal["artifact", "action", "context", "trial-component"]
ARTIFACT_TYPES = ("DataSet", "Model", "ModelPackage", "Code", "Commit", "Image", "Runtime", "Report", "Baseline")
ACTION_TYPES = ("ModelDeployment", "Approval", "Monitoring", "Other")
CONTEXT_TYPES = ("Endpoint", "Experiment", "Project", "Trial")
TRIAL_COMPONENT_TYPES = ("ProcessingJob", "TrainingJob", "TransformJob", "MonitoringJob", "Tracker")
TYPES_BY_KIND: dict[str, tuple[str, ...]] = {
    "artifact": ARTIFACT_TYPES,
    "action": ACTION_TYPES,
    "context": CONTEXT_TYPES,
    "trial-component": TRIAL_COMPONENT_TYPES,
}
ASSOCIATION_TYPES = ("ContributedTo", "Produced", "DerivedFrom", "AssociatedWith")
AssociationType = Literal["ContributedTo", "Produced", "DerivedFrom", "AssociatedWith"]
Direction = Literal["upstream", "downstream", "both"]


class LineageEntity(BaseModel):
    srn: str
    team: str
    kind: Kind
    type: str
    name: str = ""
    uri: str = ""
    sha256: str = ""
    version_id: str = ""
    properties: dict[str, Any] = {}
    created_at: dt.datetime
    created_by: str


class Association(BaseModel):
    source: str
    destination: str
    type: AssociationType
    created_at: dt.datetime | None = None
    created_by: str = ""


class LineageNode(BaseModel):
    """An entity in a query result, with its distance from the start (0 = the start)."""

    srn: str
    kind: str
    type: str
    name: str = ""
    uri: str = ""
    sha256: str = ""
    version_id: str = ""
    depth: int
    properties: dict[str, Any] = {}


class LineageEdge(BaseModel):
    source: str
    destination: str
    type: str


class LineageGraph(BaseModel):
    """What the console draws: the start, the nodes reached and the edges walked."""

    start: str
    direction: Direction
    depth: int
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    reached: dict[int, int] = Field(
        default_factory=dict, description="how many entities were reached at each distance (before any limit)"
    )


class ArtifactRef(BaseModel):
    """An artifact a job read or wrote, pinned to one object version and its content hash."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(max_length=2048)
    type: str = "DataSet"
    name: str = Field(default="", max_length=256, description="channel or output name")
    version_id: str = Field(default="", max_length=128)
    sha256: str = Field(default="", max_length=64)
    media_type: str = Field(default="", max_length=256)


class RuntimeRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=256)
    version: str = Field(max_length=128)
    digest: str = Field(default="", max_length=128, description="content hash of the runtime image or lock file")


class GitCommit(BaseModel):
    """Where the code came from: a commit and the state of the working tree it was run from."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(max_length=2048)
    commit: str = Field(min_length=4, max_length=64)
    branch: str = Field(default="", max_length=256)
    author: str = Field(default="", max_length=256)
    date: str = Field(default="", max_length=64)
    message: str = Field(default="", max_length=4096)
    dirty: bool = False
    diff_sha256: str = Field(default="", max_length=64)

    @property
    def uri(self) -> str:
        return f"git+{self.repository}@{self.commit}"


class JobLineage(BaseModel):
    """Everything needed to run a job again and prove the result the same.

    The jobs service records one per job run (``LineageService.record_job``); ``strongroom
    reproduce`` reads it back (``LineageService.job_record``).
    """

    model_config = ConfigDict(extra="forbid")

    job: str = Field(max_length=512, description="the job's resource name")
    job_type: str = Field(default="TrainingJob", max_length=64)
    status: str = Field(default="", max_length=32)
    runtime: RuntimeRef | None = None
    code: ArtifactRef | None = None
    commit: GitCommit | None = None
    inputs: list[ArtifactRef] = Field(default_factory=list)
    outputs: list[ArtifactRef] = Field(default_factory=list)
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    entry_point: list[str] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    experiment_component: str = Field(default="", max_length=512)
