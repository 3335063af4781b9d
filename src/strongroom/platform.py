"""``Platform``: the one composition root. Builds every backend and service from ``Config``."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.alerts.service import AlertService
from strongroom.audit.events import EventBus
from strongroom.audit.log import AuditChainBroken, AuditLog
from strongroom.audit.signing import CheckpointSigner
from strongroom.audit.witness import CheckpointWitness
from strongroom.audit.worker import AuditCheckpointWorker
from strongroom.audit_review.service import AuditService
from strongroom.catalog.engine import CatalogWorker, ProvisioningEngine
from strongroom.catalog.service import CatalogService
from strongroom.catalog.team_environment import TeamEnvironmentProvisioner
from strongroom.core import pki
from strongroom.core.config import DEFAULT_CONFIG_TOML, Config
from strongroom.core.errors import ConfigurationError
from strongroom.core.rootkey import RootKey, load_root_key
from strongroom.core.workers import Worker, WorkerRunner
from strongroom.db import migrate
from strongroom.db.changes import ChangeFeed
from strongroom.db.checkpoints import WalCheckpointWorker
from strongroom.db.engine import Database
from strongroom.experiments.service import ExperimentsService
from strongroom.gitrepo.service import GitService
from strongroom.guard import Guard
from strongroom.guard.idempotency import IdempotencyRetentionWorker
from strongroom.identity.console_sessions import ConsoleSessions
from strongroom.identity.models import IssuedToken
from strongroom.identity.oidc import OidcClient
from strongroom.identity.service import IdentityService
from strongroom.jobs.detective import NetworkIsolationEnforcer
from strongroom.jobs.executor import SandboxExecutor
from strongroom.jobs.reproduce import Reproducer
from strongroom.jobs.runtimes import RuntimeRegistry
from strongroom.jobs.scheduler import WAKE_ON as SCHEDULER_WAKE_ON
from strongroom.jobs.scheduler import JobScheduler
from strongroom.jobs.service import JobService
from strongroom.jobs.tracking import JobTracking
from strongroom.kms.backends import build_keyrings
from strongroom.kms.service import KmsService
from strongroom.kms.worker import KeyLifecycleWorker
from strongroom.lineage.service import LineageService
from strongroom.monitor.executions import ExecutionRunner
from strongroom.monitor.service import MonitoringService
from strongroom.monitor.worker import MonitoringScheduler
from strongroom.notebooks.product import NotebookProvisioner
from strongroom.notebooks.service import NotebookService
from strongroom.notebooks.spawner import SandboxSpawner
from strongroom.notebooks.team_constants import team_constants
from strongroom.notebooks.worker import NotebookWorker
from strongroom.observability.metrics import Metrics
from strongroom.policy.engine import PolicyEngine
from strongroom.sandbox.cgroups import Cgroups
from strongroom.sandbox.runner import SandboxRunner
from strongroom.serving.pool import WorkerPool
from strongroom.serving.registry import ModelRegistry
from strongroom.serving.relay import RelayClient, RelayServer
from strongroom.serving.service import ServingService
from strongroom.serving.worker import ServingWorker
from strongroom.storage.backends import build_blob_store
from strongroom.storage.service import StorageService
from strongroom.storage.worker import OrphanBlobWorker
from strongroom.team_policies.service import PolicyService

if TYPE_CHECKING:
    from strongroom.lineage.openlineage import OpenLineageEmitter


def check_home(home: Path) -> None:
    """Raise ``ConfigurationError`` unless ``home`` was made by ``strongroom init`` (or ``restore``)."""
    if not (home / "root.check").exists():
        raise ConfigurationError(f"{home} is not a Strongroom home; create it with `strongroom init`")


class Platform:
    """Everything a running Strongroom needs, wired once. No module-level state anywhere."""

    def __init__(self, config: Config, *, enforce: bool = True) -> None:
        self.config = config
        home = config.home
        check_home(home)
        self.root: RootKey = load_root_key(home)
        self.tls = pki.TlsFiles.in_dir(config.tls_dir)
        url = config.effective_database_url
        if migrate.current_revision(url) != migrate.head_revision():
            migrate.upgrade(url)
        self.db = Database(url, sqlite_synchronous=config.sqlite_synchronous)
        self.policy_engine = PolicyEngine.shipped()
        self.bus = EventBus()
        self.metrics = Metrics(self.db)
        self.audit_log = AuditLog(
            self.db,
            CheckpointSigner.load(home, self.root),
            CheckpointWitness(config.audit_witness_path, config.audit_witness_syslog),
            observer=lambda record, seconds: self.metrics.audited(
                record.action, record.decision, record.outcome, seconds
            ),
        )
        self.changes = ChangeFeed(self.db)
        self.guard = Guard(self.db, self.policy_engine, self.audit_log, self.bus, enforce=enforce, feed=self.changes)
        self.identity = IdentityService(
            self.db,
            self.guard,
            self.policy_engine,
            token_key=self.root.derive("strongroom/api-token-hash"),
            session_key=self.root.derive("strongroom/session-sign"),
            session_ttl=dt.timedelta(seconds=config.session_ttl_seconds),
            execution_ttl=dt.timedelta(seconds=config.execution_ttl_seconds),
            default_token_ttl=dt.timedelta(days=config.default_token_ttl_days),
        )
        self.console_sessions = ConsoleSessions(
            self.db,
            self.guard,
            key=self.root.derive("strongroom/console-session"),
            ttl=dt.timedelta(seconds=config.session_ttl_seconds),
            idle=dt.timedelta(seconds=config.console_idle_seconds),
        )
        self.oidc = OidcClient(config, key=self.root.derive("strongroom/oidc-flow")) if config.oidc_issuer else None
        self.policies = PolicyService(self.db, self.guard, self.policy_engine, self.identity)
        self.audit = AuditService(self.audit_log, self.guard)
        self.keyrings = build_keyrings(config, self.root)
        self.kms = KmsService(
            self.db,
            self.guard,
            self.policy_engine,
            self.keyrings,
            default_keyring=config.keyring,
            deletion_min_wait=dt.timedelta(seconds=config.key_deletion_min_waiting_seconds),
            deletion_default_wait=dt.timedelta(seconds=config.key_deletion_default_waiting_seconds),
        )
        self.blobs = build_blob_store(config)
        self.storage = StorageService(self.db, self.guard, self.policy_engine, self.kms, self.blobs)
        self.git = GitService(self.db, self.guard, self.kms, home / "git")
        self.experiments = ExperimentsService(self.db, self.guard)
        self.lineage = LineageService(self.db, self.guard)
        if config.openlineage_url or config.openlineage_file:
            _ = self.openlineage  # a configured destination is checked at start-up
        self.sandboxes = SandboxRunner(cgroups=Cgroups.detect(Path(config.sandbox_cgroup_root)))
        self.notebooks = NotebookService(
            self.db,
            self.guard,
            self.identity,
            self.kms,
            SandboxSpawner(
                self.sandboxes,
                api_socket=config.effective_socket_path,
                runtime_root=config.effective_notebook_runtime_dir,
                volumes_root=config.effective_notebook_volumes_path,
                stop_grace_seconds=config.notebook_stop_grace_seconds,
                proxy_key=self.root.derive("strongroom/notebook-proxy"),
            ),
            cookie_key=self.root.derive("strongroom/notebook-session"),
            session_ttl=dt.timedelta(seconds=config.session_ttl_seconds),
            presigned_max=dt.timedelta(seconds=config.presigned_url_max_seconds),
            ready_timeout=config.notebook_ready_timeout_seconds,
            environment=functools.partial(team_constants, self.db, self.kms),
        )
        self.catalog = CatalogService(self.db, self.guard, {})
        self.catalog.provisioners.update(
            {
                "team-environment": TeamEnvironmentProvisioner(
                    self.db,
                    self.guard,
                    self.identity,
                    self.kms,
                    self.storage,
                    self.git,
                    self.policies,
                    lambda: self.catalog,
                ),
                "notebook": NotebookProvisioner(self.db, self.notebooks),
            }
        )
        self.provisioning = ProvisioningEngine(self.db, self.catalog.provisioners)
        self.catalog_worker = CatalogWorker(self.provisioning, config.catalog_worker_interval_seconds)
        self.notebook_worker = NotebookWorker(self.notebooks, config.catalog_worker_interval_seconds)
        self.catalog.set_wake(self.catalog_worker.wake)
        self.notebooks.set_wake(self.notebook_worker.wake)
        self.bus.subscribe(self.notebooks.on_identity_event, kinds={"state"})
        for source in (self.identity, self.policies, self.kms, self.storage):
            self.policy_engine.register_source(source)
        self.runtimes = RuntimeRegistry(self.db, self.guard)
        self.jobs = JobService(
            self.db,
            self.guard,
            self.kms,
            self.storage,
            self.runtimes,
            max_scratch_mb=config.job_max_scratch_mb,
            max_instance_count=config.job_max_instance_count,
            tracking=JobTracking(self.experiments, self.lineage, lambda: self.openlineage),
        )
        self.reproducer = Reproducer(self.jobs, self.storage, self.runtimes)
        self.alerts = AlertService(
            self.guard,
            webhook_url=config.alert_webhook_url,
            webhook_ca=config.alert_webhook_ca,
            team_webhook_allowed_hosts=config.alert_team_webhook_allowed_hosts,
        )
        self.bus.add_rule(NetworkIsolationEnforcer(self.jobs, self.alerts))
        runtime = config.effective_notebook_runtime_dir
        self.serving = ServingService(
            self.db,
            self.guard,
            self.kms,
            self.storage,
            self.jobs,
            WorkerPool(self.sandboxes, runtime.with_name(runtime.name + "-endpoints")),
            spool_root=home / "capture-spool",
            public_url=f"https://{config.public_hostname or 'localhost'}:{config.port}",
            lineage=self.lineage,
        )
        self.model_registry = ModelRegistry(self.db, self.guard, self.serving, self.lineage)
        self.metrics.registry.register(self.serving.collector())
        self.serving_worker = ServingWorker(self.serving)
        self.serving.wake = self.serving_worker.wake
        self.bus.subscribe(self.serving.on_identity_event, kinds={"state"})
        self.monitoring = MonitoringService(
            self.db,
            self.guard,
            self.jobs,
            self.storage,
            self.kms,
            capture_lag_seconds=config.monitor_capture_lag_seconds,
        )
        self.monitoring_runner = ExecutionRunner(
            self.db,
            self.guard,
            self.jobs,
            self.storage,
            self.alerts,
            capture_lag_seconds=config.monitor_capture_lag_seconds,
            captured=self.serving.captured_records,
        )
        self.monitoring_scheduler = MonitoringScheduler(self.monitoring_runner)
        self.monitoring.wake = self.monitoring_scheduler.wake
        self.bus.subscribe(self.monitoring_scheduler.on_event, kinds={"state"})
        self._workers: list[Worker] | None = None
        self._runner: WorkerRunner | None = None
        # Set in an API process of `up --workers N` that runs no background workers: the pid of the one that does.
        self.background_owner: Callable[[], int] | None = None
        self._closing: list[Callable[[], None]] = []
        self.changes.subscribe("policy", self._policy_changed_elsewhere)
        self.changes.subscribe("identity", self._identity_changed_elsewhere)

    def _policy_changed_elsewhere(self, team: str) -> None:
        self.policy_engine.invalidate(team)
        self.guard.forget_decisions()

    def _identity_changed_elsewhere(self, user: str) -> None:
        self.identity.forget_authentications()
        self.guard.forget_decisions()
        if user:
            self.notebooks.sockets.close_invalid(user)

    def _cluster_credentials(self, job: str) -> tuple[bytes, bytes, bytes]:
        """A one-day certificate and key for a job's Dask cluster, and the CA that verifies it."""
        cert, key = pki.issue_ephemeral(
            self.tls,
            self.root,
            common_name=f"dask {job}"[:64],
            dns_names=["localhost", "algo-1"],
            ip_addresses=["127.0.0.1"],
        )
        return cert, key, self.tls.ca_cert.read_bytes()

    @functools.cached_property
    def openlineage(self) -> OpenLineageEmitter:
        """Job run events for Marquez/DataHub (the library is loaded only when it is needed)."""
        from strongroom.lineage.openlineage import OpenLineageEmitter, build_transport

        config = self.config
        return OpenLineageEmitter(
            build_transport(config.openlineage_url, config.openlineage_file), config.openlineage_namespace
        )

    def workers(self) -> list[Worker]:
        """The background workers ``strongroom up`` runs (built once)."""
        if self._workers is None:
            config = self.config
            executor = SandboxExecutor(
                self.jobs,
                self.identity,
                self.kms,
                self.runtimes,
                self.sandboxes,
                socket_path=config.effective_socket_path,
                runtime_root=config.effective_job_runtime_dir,
                token_refresh_seconds=max(30.0, config.execution_ttl_seconds / 3),
                cluster_credentials=self._cluster_credentials,
            )
            scheduler = JobScheduler(
                self.jobs, executor, slots=config.job_slots, preemption_probability=config.spot_preemption_probability
            )
            self.bus.subscribe(scheduler.on_event, kinds={"state"})
            self._workers = [
                *([WalCheckpointWorker(self.db)] if self.db.is_sqlite else []),
                AuditCheckpointWorker(
                    self.audit_log,
                    config.audit_checkpoint_every,
                    config.audit_checkpoint_seconds,
                    alert=self._audit_chain_broken,
                ),
                KeyLifecycleWorker(self.kms, config.kms_worker_interval_seconds),
                OrphanBlobWorker(self.storage, config.orphan_blob_grace_seconds),
                IdempotencyRetentionWorker(self.db, config.idempotency_retention_days),
                scheduler,
                self.catalog_worker,
                self.notebook_worker,
                self.serving_worker,
                self.monitoring_scheduler,
            ]
        return self._workers

    def run_background_elsewhere(self, owner: Callable[[], int]) -> None:
        """This is an API process of ``up --workers N`` that runs no background workers (``owner``:
        the pid of the one that does): what would wake one of them here wakes it there, through
        the change feed."""
        self.background_owner = owner

        def waker(name: str) -> Callable[[], None]:
            return lambda: self.changes.publish_soon("wake", name)

        self.catalog.set_wake(waker(self.catalog_worker.name))
        self.notebooks.set_wake(waker(self.notebook_worker.name))
        self.serving.wake = waker(self.serving_worker.name)
        self.monitoring.wake = waker(self.monitoring_scheduler.name)
        self.notebooks.proxy_only = True
        relay = RelayClient(self.config.run_dir / "serving.sock")
        self.serving.relay = relay
        self._closing.append(relay.close)
        wake_scheduler = waker(JobScheduler.name)
        self.bus.subscribe(lambda event: wake_scheduler() if event.name in SCHEDULER_WAKE_ON else None, kinds={"state"})

    def run_background_here(self, *, shared: bool = False) -> WorkerRunner:
        """This process runs the background workers; ``shared``: other API processes of
        ``up --workers N`` wake them and relay endpoint invocations here."""
        runner = self.worker_runner()
        if shared:
            by_name = {worker.name: worker for worker in runner.workers}
            self.changes.subscribe("wake", lambda name: by_name[name].wake() if name in by_name else None)
            self._closing.append(RelayServer(self.config.run_dir / "serving.sock", self.serving.score).close)
        return runner

    def reload(self) -> None:
        """Re-read what other processes may have changed: policy facts, and no cached authentication (SIGHUP)."""
        self.policy_engine.invalidate_all()
        self.identity.forget_authentications()

    def worker_runner(self) -> WorkerRunner:
        """The one runner of ``workers()`` (``strongroom up`` starts it; readiness asks it)."""
        if self._runner is None:
            self._runner = WorkerRunner(self.workers())
        return self._runner

    def audit_checkpoint_problem(self) -> str:
        """Why the checkpoint worker refuses to sign (a broken chain), or "" when it signs."""
        found = [w for w in self.workers() if isinstance(w, AuditCheckpointWorker)]
        return found[0].problem if found else ""

    def _audit_chain_broken(self, broken: AuditChainBroken) -> None:
        self.alerts.raise_alert(
            "audit-chain-broken",
            "",
            "srn:strongroom::audit/log",
            f"the audit log was tampered with; no checkpoint is signed until it is investigated: {broken.problem}",
            first_bad_seq=broken.first_bad_seq,
        )

    def close(self) -> None:
        self.changes.stop()
        for close in self._closing:
            close()
        self.git.close()
        if "openlineage" in self.__dict__:
            self.openlineage.close()
        self.bus.close()
        for keyring in self.keyrings.values():
            keyring.close()
        self.db.dispose()


@dataclass(frozen=True)
class InitResult:
    home: Path
    database_url: str
    admin: str
    token: IssuedToken


def initialize(config: Config, *, admin: str = "admin", write_config: bool = True) -> InitResult:
    """Create a new home: config, root key, CA and server certificate, database, first admin.

    Refuses to touch an existing home, so re-running ``init`` can never overwrite keys.
    """
    home = config.home
    if (home / "root.check").exists() or (home / "config.toml").exists():
        raise ConfigurationError(f"{home} already holds a Strongroom home; refusing to overwrite it")
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    if any(home.iterdir()):
        raise ConfigurationError(f"{home} is not empty; choose an empty directory for a new home")
    url = config.effective_database_url
    if not url.startswith("sqlite") and migrate.current_revision(url):
        raise ConfigurationError("the database already holds a Strongroom schema; use a new database")
    for sub in ("run", "tls", "logs", "git"):
        (home / sub).mkdir(mode=0o700, exist_ok=True)
    if write_config:
        (home / "config.toml").write_text(
            DEFAULT_CONFIG_TOML.format(database_url=config.database_url, port=config.port)
        )
    root = load_root_key(home, create=True)
    tls = pki.TlsFiles.in_dir(config.tls_dir)
    pki.create_ca(tls, root)
    pki.issue_server_cert(tls, root, config.public_hostname)
    CheckpointSigner.create(home, root)
    migrate.upgrade(url)
    platform = Platform(config)
    try:
        token = platform.identity.bootstrap_admin(admin)
        platform.audit_log.checkpoint()
    finally:
        platform.close()
    return InitResult(home=home, database_url=url, admin=admin, token=token)


def read_server_info(config: Config) -> dict[str, object] | None:
    """What ``strongroom up`` wrote about itself, if it is (or was) running."""
    path = config.run_dir / "server.json"
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
