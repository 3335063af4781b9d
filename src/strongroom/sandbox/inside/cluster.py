"""Jobs with ``instance_count > 1`` run on a Dask cluster inside their sandbox: one worker
process per instance, scheduler and workers talking TLS (mutual, certificates from the platform
CA) over the sandbox's own loopback. Scripts get a client with :func:`dask_client`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SCHEDULER_ENV = "STRONGROOM_DASK_SCHEDULER"
TLS_DIR_ENV = "STRONGROOM_DASK_TLS_DIR"


def security(tls_dir: str | os.PathLike[str]) -> Any:
    """Dask ``Security`` requiring TLS with the job's certificate, verified against the platform CA."""
    from distributed.security import Security

    folder = Path(tls_dir)
    cert, key, ca = str(folder / "node.pem"), str(folder / "node.key"), str(folder / "ca.pem")
    return Security(
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )


def start_cluster(instances: int, threads_per_worker: int, tls_dir: str | None, memory_limit: str = "auto") -> Any:
    """A LocalCluster of ``instances`` worker processes on 127.0.0.1 (TLS when ``tls_dir``)."""
    from distributed import LocalCluster

    options: dict[str, Any] = {
        "n_workers": instances,
        "threads_per_worker": threads_per_worker,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "memory_limit": memory_limit,
    }
    if tls_dir:
        options.update(protocol="tls", security=security(tls_dir))
    return LocalCluster(**options)


def dask_client() -> Any:
    """Inside a job with ``instance_count > 1``: a client of the job's cluster."""
    from distributed import Client

    address = os.environ.get(SCHEDULER_ENV)
    if not address:
        raise RuntimeError("this job has no Dask cluster (resources.instance_count is 1)")
    tls_dir = os.environ.get(TLS_DIR_ENV)
    return Client(address, security=security(tls_dir) if tls_dir else None)
