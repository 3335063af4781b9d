"""``session.lineage``: record and query the lineage graph; ``log_commit``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.core.errors import InvalidInput
from strongroom.core.names import Srn, check_name
from strongroom.lineage.git import CommitResolver, LocalRepositoryResolver
from strongroom.lineage.models import Association, GitCommit, JobLineage, LineageEntity, LineageGraph
from strongroom.sdk.tracking import resolve_team

if TYPE_CHECKING:
    import pandas as pd

    from strongroom.sdk.session import Session


class TeamGitResolver(CommitResolver):
    """Resolves commits of the team's git repositories through the platform's commit-lookup API
    (``GET /api/v1/teams/{team}/repositories/{name}/commits/{sha}``)."""

    def __init__(self, session: Session, team: str) -> None:
        self._s = session
        self.team = team

    def resolve(self, repository: str, sha: str) -> GitCommit:
        name = repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        check_name(name, "repo")
        if not sha or len(sha) > 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            raise InvalidInput(f"{sha!r} is not a commit sha (hex digits)", field="sha")
        found = self._s.request("GET", f"/api/v1/teams/{self.team}/repositories/{name}/commits/{sha}").json()
        return GitCommit(
            repository=str(Srn(self.team, "repository", name)),
            commit=str(found["sha"]),
            author=f"{found.get('author', '')} <{found.get('email', '')}>"[:256],
            date=str(found.get("date", "")),
            message=str(found.get("message", ""))[:4096],
        )


class LineageResult:
    """A query's answer: ``graph`` (nodes and edges, as the console draws them) or a DataFrame."""

    def __init__(self, graph: LineageGraph) -> None:
        self.graph = graph

    @property
    def nodes(self) -> list[Any]:
        return list(self.graph.nodes)

    @property
    def edges(self) -> list[Any]:
        return list(self.graph.edges)

    def dataframe(self) -> pd.DataFrame:
        """One row per entity reached: srn, kind, type, name, uri, version, hash, depth."""
        import pandas as pd

        columns = ["srn", "kind", "type", "name", "uri", "version_id", "sha256", "depth"]
        return pd.DataFrame([{c: getattr(n, c) for c in columns} for n in self.graph.nodes], columns=columns)

    def edges_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([e.model_dump() for e in self.graph.edges], columns=["source", "destination", "type"])

    def to_json(self) -> dict[str, Any]:
        return self.graph.model_dump(mode="json")


class LineageClient:
    def __init__(self, session: Session, team: str | None = None) -> None:
        self._s = session
        self._team = team

    @property
    def team(self) -> str:
        if self._team is None:
            self._team = resolve_team(self._s)
        return self._team

    def _path(self, tail: str) -> str:
        return f"/api/v1/teams/{self.team}/lineage/{tail}"

    # -- recording --------------------------------------------------------------------------

    def record_artifact(
        self,
        uri: str,
        type: str,
        *,
        sha256: str = "",
        version_id: str = "",
        name: str = "",
        properties: dict[str, Any] | None = None,
    ) -> LineageEntity:
        body = {
            "uri": uri,
            "type": type,
            "sha256": sha256,
            "version_id": version_id,
            "name": name,
            "properties": properties or {},
        }
        return self._s.call("POST", self._path("artifacts"), LineageEntity, json_body=body)

    def record_action(self, name: str, type: str, properties: dict[str, Any] | None = None) -> LineageEntity:
        body = {"name": name, "type": type, "properties": properties or {}}
        return self._s.call("POST", self._path("actions"), LineageEntity, json_body=body)

    def record_context(self, name: str, type: str, properties: dict[str, Any] | None = None) -> LineageEntity:
        body = {"name": name, "type": type, "properties": properties or {}}
        return self._s.call("POST", self._path("contexts"), LineageEntity, json_body=body)

    def record_trial_component(self, srn: str, type: str, properties: dict[str, Any] | None = None) -> LineageEntity:
        body = {"srn": srn, "type": type, "properties": properties or {}}
        return self._s.call("POST", self._path("trial-components"), LineageEntity, json_body=body)

    def associate(self, source: str, destination: str, type: str) -> Association:
        body = {"source": source, "destination": destination, "type": type}
        return self._s.call("POST", self._path("associations"), Association, json_body=body)

    def disassociate(self, source: str, destination: str, type: str) -> None:
        params = {"source": source, "destination": destination, "type": type}
        self._s.request("DELETE", self._path("associations"), params=params)

    def record_job(self, record: JobLineage) -> LineageEntity:
        return self._s.call("POST", self._path("jobs"), LineageEntity, json_body=record.model_dump(mode="json"))

    def job_record(self, job: str) -> JobLineage:
        """What a job run was made of: runtime, code, commit, input versions and hashes, hyperparameters, seed."""
        return self._s.call("GET", self._path("jobs/record"), JobLineage, params={"job": job})

    def log_commit(
        self,
        repo: str,
        sha: str,
        *,
        associate_with: list[str] | None = None,
        resolver: CommitResolver | None = None,
    ) -> LineageEntity:
        """Record commit ``sha`` of ``repo`` as a Commit artifact, associated with the given entities.

        ``resolver`` looks the commit up; by default a local clone when ``repo`` is a directory,
        else the team's git repository of that name (through the commit-lookup API).
        """
        if resolver is None:
            local = Path(repo).expanduser()
            resolver = LocalRepositoryResolver() if local.is_dir() else TeamGitResolver(self._s, self.team)
        commit = resolver.resolve(repo, sha)
        return self.record_commit(commit, associate_with or [])

    def record_commit(self, commit: GitCommit, associate_with: list[str] | None = None) -> LineageEntity:
        body = {"commit": commit.model_dump(), "associate_with": associate_with or []}
        return self._s.call("POST", self._path("commits"), LineageEntity, json_body=body)

    # -- reading ----------------------------------------------------------------------------

    def describe(self, srn: str) -> LineageEntity:
        return self._s.call("GET", self._path("entity"), LineageEntity, params={"srn": srn})

    def list_entities(
        self, kind: str | None = None, type: str | None = None, uri: str | None = None, limit: int = 1000
    ) -> list[LineageEntity]:
        params = {"kind": kind, "type": type, "uri": uri, "limit": limit}
        body = self._s.request("GET", self._path("entities"), params=params).json()
        return [LineageEntity.model_validate(i) for i in body["items"]]

    def query(
        self,
        start: str,
        *,
        direction: str = "upstream",
        depth: int = 10,
        association_types: list[str] | None = None,
        entity_types: list[str] | None = None,
    ) -> LineageResult:
        if direction not in ("upstream", "downstream", "both"):
            raise InvalidInput("direction must be upstream, downstream or both", field="direction")
        body = {
            "start": start,
            "direction": direction,
            "depth": depth,
            "association_types": association_types,
            "entity_types": entity_types,
        }
        return LineageResult(self._s.call("POST", self._path("query"), LineageGraph, json_body=body))

    def upstream(self, start: str, depth: int = 10, **filters: Any) -> LineageResult:
        return self.query(start, direction="upstream", depth=depth, **filters)

    def downstream(self, start: str, depth: int = 10, **filters: Any) -> LineageResult:
        return self.query(start, direction="downstream", depth=depth, **filters)
