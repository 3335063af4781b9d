"""OpenLineage run events (START, COMPLETE, FAIL) for jobs, so Marquez or DataHub can ingest them.

Configured by ``openlineage_url`` (an HTTP(S) endpoint; plain HTTP only to this machine) or
``openlineage_file`` (JSON lines appended to a file); neither means no events. The jobs service
calls ``OpenLineageEmitter.emit(record, "START" | "COMPLETE" | "FAIL", ...)`` with the same
``JobLineage`` it records in the graph. Emission never fails a job: a transport error is logged
and ``emit`` returns ``False``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Literal
from urllib.parse import urlsplit

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    source_code_location_job,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpSslContextConfig, HttpTransport
from openlineage.client.transport.transport import Transport

import strongroom
from strongroom.core.errors import ConfigurationError
from strongroom.lineage.models import ArtifactRef, JobLineage

log = logging.getLogger("strongroom.lineage.openlineage")
PRODUCER = f"https://strongroom.dev/strongroom/{strongroom.__version__}"
RunStateName = Literal["START", "COMPLETE", "FAIL"]
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def build_transport(url: str = "", file: str = "", ca: str = "", timeout: float = 5.0) -> Transport | None:
    """The transport for the configured destination, or ``None`` when none is configured."""
    if url and file:
        raise ConfigurationError("configure openlineage_url or openlineage_file, not both")
    if file:
        return FileTransport(FileConfig(log_file_path=file, append=True))
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"openlineage_url {url!r} must be an https:// URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigurationError("openlineage_url must use https:// (plain http is allowed only to this machine)")
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = parts.path.lstrip("/") or "api/v1/lineage"
    config = HttpConfig(
        url=base,
        endpoint=endpoint,
        timeout=timeout,
        retry={"total": 2, "backoff_factor": 0.1},
        ssl_context=HttpSslContextConfig(ca_cert_path=ca) if ca else None,
    )
    return HttpTransport(config)


def _dataset_name(ref: ArtifactRef) -> tuple[str, str]:
    """OpenLineage naming: ``sr://bucket/key`` -> namespace ``sr://bucket``, name ``key``."""
    parts = urlsplit(ref.uri)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
    return "strongroom", ref.uri


def _datasets(refs: list[ArtifactRef], cls: Any) -> list[Any]:
    out = []
    for ref in refs:
        namespace, name = _dataset_name(ref)
        facets: dict[str, Any] = {}
        if ref.version_id or ref.sha256:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=ref.version_id or f"sha256:{ref.sha256}"
            )
        out.append(cls(namespace=namespace, name=name, facets=facets))
    return out


def run_id_for(job: str) -> str:
    """A stable OpenLineage run id (a UUID) for a job's resource name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, job))


class OpenLineageEmitter:
    """Sends job run events through one OpenLineage transport (or does nothing if there is none)."""

    def __init__(self, transport: Transport | None, namespace: str = "strongroom") -> None:
        self.namespace = namespace
        self._client = OpenLineageClient(transport=transport) if transport is not None else None

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """Release the transport (its HTTP connections)."""
        if self._client is not None:
            self._client.close(timeout=5.0)

    def event(
        self,
        record: JobLineage,
        state: RunStateName,
        *,
        run_id: str | None = None,
        event_time: dt.datetime | None = None,
        error: str = "",
    ) -> RunEvent:
        """The run event for ``record`` in ``state`` (inputs on START, inputs and outputs after)."""
        if state not in ("START", "COMPLETE", "FAIL"):
            raise ValueError(f"unknown run state {state!r}")
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="STRONGROOM", jobType=record.job_type
            )
        }
        if record.commit is not None:
            job_facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
                type="git",
                url=record.commit.repository,
                repoUrl=record.commit.repository,
                version=record.commit.commit,
                branch=record.commit.branch or None,
            )
        run_facets: dict[str, Any] = {}
        if state == "FAIL" and error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[:4000], programmingLanguage="python"
            )
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=(event_time or dt.datetime.now(dt.UTC)).isoformat(),
            run=Run(runId=run_id or run_id_for(record.job), facets=run_facets),
            job=Job(namespace=self.namespace, name=record.job, facets=job_facets),
            producer=PRODUCER,
            inputs=_datasets(record.inputs, InputDataset),
            outputs=_datasets(record.outputs, OutputDataset) if state != "START" else [],
        )

    def emit(
        self,
        record: JobLineage,
        state: RunStateName,
        *,
        run_id: str | None = None,
        event_time: dt.datetime | None = None,
        error: str = "",
    ) -> bool:
        """Send one run event; ``False`` (and a log line) if it could not be sent or none is configured."""
        if self._client is None:
            return False
        event = self.event(record, state, run_id=run_id, event_time=event_time, error=error)
        try:
            self._client.emit(event)
        except Exception as exc:  # lineage export must never fail the job it describes
            log.warning("OpenLineage %s event for %s not sent: %s", state, record.job, exc)
            return False
        return True
