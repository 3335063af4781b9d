"""The job agent: runs inside the sandbox as the job's execution role.

It downloads the pinned input versions through the platform socket into the tmpfs under
/opt/ml (decrypted only there), fetches the code, restores checkpoints, runs the entry point
with the managed service's environment variables, then uploads outputs and checkpoints (the
platform encrypts them with the team's key). It tells the executor what it is doing with
marker lines on its control channel, a pipe the user's code cannot reach (see
:func:`open_control_channel`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from strongroom.jobs import contract
from strongroom.storage.keys import parse_uri

if TYPE_CHECKING:
    from strongroom.jobs.models import OutputChannel
    from strongroom.sdk.session import Session


class _Terminated(BaseException):
    """SIGTERM arrived while no program was running."""


def open_control_channel() -> TextIO:
    """The agent's private line to the executor; call before starting any of the job's code.

    The pipe's descriptor is not inherited by the programs the agent starts, and the agent makes
    itself non-dumpable, so a program running as the same user cannot open it through
    ``/proc/<agent>/fd`` (nor read the agent's memory). Lines the job's code prints on stdout are
    only log lines, whatever they look like.
    """
    fd = int(os.environ.pop(contract.CONTROL_FD_ENV))
    os.set_inheritable(fd, False)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


_PR_SET_DUMPABLE = 4


def start_early(config: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    """Start the program the executor marked to start first (the built-in XGBoost on one instance;
    ``JobSpec.early_start``), before the agent's own imports and the input download: its interpreter
    and imports overlap both. It waits on its stdin until :meth:`Agent.run` says the inputs are in
    place (or end of file: the agent gave up)."""
    early = config.get("early_start")
    if not early:
        return None
    from strongroom.algorithms.xgboost import WAIT_FOR_INPUTS

    env = {k: v for k, v in os.environ.items() if k != contract.CONTROL_FD_ENV}
    env.update(early["environment"])
    env[WAIT_FOR_INPUTS] = "1"
    Path(contract.ML).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", early["module"], *early["arguments"]]
    return subprocess.Popen(command, cwd=contract.ML, env=env, stdin=subprocess.PIPE)


class Agent:
    def __init__(self, config: dict[str, Any], control: TextIO, early: subprocess.Popen[bytes] | None = None) -> None:
        # The spec's models (pydantic) load here, after start_early started the algorithm.
        from strongroom.jobs.models import JobSpec, ResolvedInput

        self.spec = JobSpec.model_validate(config["spec"])
        self.inputs = [ResolvedInput.model_validate(r) for r in config["inputs"]]
        self.control = control
        self.code_version = (config.get("code") or {}).get("version_id")
        self.instance_count = int(config.get("instance_count", 1))
        self.child: subprocess.Popen[bytes] | None = early
        self.waiting = early is not None  # the child was started early and waits for its inputs
        self.interrupted = False
        self._uploaded: dict[Path, tuple[int, int]] = {}
        self._checkpoint_lock = threading.Lock()
        self._finished = threading.Event()

    def say(self, kind: str, payload: Any) -> None:
        self.control.write(contract.marker(kind, payload) + "\n")

    def status(self, name: str, message: str = "") -> None:
        self.say("status", {"status": name, "message": message})

    def session(self) -> Session:
        # Imported here, not at the top: the HTTP client's imports (a tenth of a second of CPU) then
        # run while the built-in XGBoost, started first (start_early), imports its own.
        from strongroom.sdk.session import Session

        token = (Path(contract.RUN_DIR) / "token").read_text().strip()
        return Session(socket=contract.SOCKET, token=token, timeout=600)

    # -- phases -----------------------------------------------------------------------------

    def download_inputs(self) -> None:
        total = sum(r.size for r in self.inputs)
        self.status("Downloading", f"{len(self.inputs)} objects, {total} bytes")
        by_name = {c.name: c for c in self.spec.inputs}
        with self.session() as session:
            for item in self.inputs:
                channel, _, relative = item.name.partition("/")
                target = Path(self.spec.input_destination(by_name[channel])) / relative
                bucket, key = parse_uri(item.uri)
                session.buckets.download(bucket, key, target, version_id=item.version_id)

    def write_config(self) -> None:
        config = Path(contract.CONFIG_DIR)
        config.mkdir(parents=True, exist_ok=True)
        hyper = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.spec.hyperparameters.items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyper))
        channels = {c.name: ({"ContentType": c.content_type} if c.content_type else {}) for c in self.spec.inputs}
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        hosts = [f"algo-{i + 1}" for i in range(self.instance_count)]
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": hosts[0], "hosts": hosts}))

    def fetch_code(self) -> list[str]:
        code = self.spec.code
        if code.algorithm is not None:
            from strongroom.jobs.models import BUILTIN_ALGORITHMS

            return [sys.executable, "-m", BUILTIN_ALGORITHMS[code.algorithm], *code.arguments]
        assert code.source is not None
        bucket, key = parse_uri(code.source)
        code_dir = Path(contract.CODE_DIR)
        code_dir.mkdir(parents=True, exist_ok=True)
        with self.session() as session:
            if key.endswith((".tar.gz", ".tgz")):
                from strongroom.core.archive import CODE_LIMITS, extract_archive

                archive = Path(contract.ML) / "code.tar.gz"
                session.buckets.download(bucket, key, archive, version_id=self.code_version)
                try:  # every member checked before a byte is written; sizes capped while streaming
                    extract_archive(archive, code_dir, CODE_LIMITS)
                finally:
                    archive.unlink()
                entry = code_dir / str(code.entry_point)
            else:
                entry = code_dir / (code.entry_point or key.rsplit("/", 1)[-1])
                session.buckets.download(bucket, key, entry, version_id=self.code_version)
        if not entry.is_file():
            raise FileNotFoundError(f"code.entry_point {code.entry_point!r} is not in the source")
        return [sys.executable, str(entry), *code.arguments]

    def restore_checkpoints(self) -> None:
        uri = self.spec.spot.checkpoint_uri
        Path(contract.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        if not uri:
            return
        bucket, prefix = parse_uri(uri)
        with self.session() as session:
            files = session.download_data(contract.CHECKPOINT_DIR, bucket, prefix.rstrip("/"))
        if files:
            self.status("Downloading", f"restored {len(files)} checkpoint files from {uri}")

    def save_checkpoints(self) -> None:
        """Upload checkpoint files that are new or changed since the last upload."""
        uri = self.spec.spot.checkpoint_uri
        folder = Path(contract.CHECKPOINT_DIR)
        if not uri or not folder.is_dir():
            return
        with self._checkpoint_lock:
            changed = []
            for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
                info = file.stat()
                stamp = (info.st_size, info.st_mtime_ns)
                if self._uploaded.get(file) != stamp:
                    changed.append((file, stamp))
            if not changed:
                return
            bucket, prefix = parse_uri(uri)
            prefix = prefix.rstrip("/")
            with self.session() as session:
                for file, stamp in changed:
                    relative = file.relative_to(folder).as_posix()
                    session.buckets.put_object(bucket, f"{prefix}/{relative}" if prefix else relative, file)
                    self._uploaded[file] = stamp

    def sync_checkpoints_while_running(self, every: float = 5.0) -> None:
        """Keep the checkpoint location current, so even a hard kill resumes from a recent one."""
        while not self._finished.wait(every):
            try:
                self.save_checkpoints()
            except Exception as exc:  # keep training; the final sync will report
                print(f"[strongroom] checkpoint upload failed, will retry: {exc}", file=sys.stderr, flush=True)

    def environment(self, command: list[str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != contract.CONTROL_FD_ENV}
        env.update(self.spec.program_environment(self.instance_count))
        return env

    def resume_note(self) -> str:
        """For the built-in XGBoost about to resume from a checkpoint: what the resumed model will be
        (shown in the job's status message, so a user reading the job's description knows)."""
        if self.spec.code.algorithm != "xgboost":
            return ""
        from strongroom.algorithms import checkpoint
        from strongroom.algorithms.xgboost import CHECKPOINT_NAME
        from strongroom.algorithms.xgboost.hyperparameters import resume_note

        found = checkpoint.latest(contract.CHECKPOINT_DIR, name=CHECKPOINT_NAME)
        return resume_note(self.spec.hyperparameters, found.step) if found else ""

    def abandon_early(self) -> None:
        """End a child started early that will not be given its inputs."""
        if self.child is not None and self.waiting:
            self.waiting = False
            self.child.kill()
            self.child.wait()
            self.child = None

    def run(self, command: list[str], note: str = "") -> int:
        self.status(self.status_name(), " ".join(command[1:])[:200] + (f": {note}" if note else ""))
        for folder in (contract.MODEL_DIR, contract.OUTPUT_DIR):
            Path(folder).mkdir(parents=True, exist_ok=True)
        for output in self.spec.outputs:
            Path(self.spec.output_source(output)).mkdir(parents=True, exist_ok=True)
        if self.child is not None and self.waiting and self.child.stdin is not None:
            self.waiting = False
            try:
                self.child.stdin.write(b"go\n")
                self.child.stdin.close()
            except BrokenPipeError:
                pass  # it ended while waiting; its exit code says how
            return self.child.wait()
        workdir = contract.CODE_DIR if Path(contract.CODE_DIR).is_dir() else contract.ML
        env = self.environment(command)
        cluster = None
        if self.instance_count > 1:
            cluster = self.start_cluster(env)
        try:
            self.child = subprocess.Popen(command, cwd=workdir, env=env)
            return self.child.wait()
        finally:
            if cluster is not None:
                cluster.close()

    def start_cluster(self, env: dict[str, str]) -> Any:
        """The job's Dask cluster: one worker process per instance, TLS between them."""
        from strongroom.sandbox.inside.cluster import SCHEDULER_ENV, TLS_DIR_ENV, start_cluster

        tls_dir = f"{contract.RUN_DIR}/tls" if Path(f"{contract.RUN_DIR}/tls/node.pem").is_file() else None
        threads = max(1, (os.cpu_count() or 1) // self.instance_count)
        cluster = start_cluster(self.instance_count, threads, tls_dir)
        env[SCHEDULER_ENV] = cluster.scheduler_address
        if tls_dir:
            env[TLS_DIR_ENV] = tls_dir
        self.status(self.status_name(), f"Dask cluster of {self.instance_count} workers at {cluster.scheduler_address}")
        return cluster

    def status_name(self) -> str:
        if self.spec.code.algorithm == "xgboost" and self.instance_count == 1:
            return "Parsing"  # the executor moves it to Training when the algorithm has loaded its data
        return {"training": "Training", "transform": "Transforming"}.get(self.spec.kind, "Processing")

    def upload_outputs(self) -> None:
        self.status("Uploading")
        produced: list[dict[str, Any]] = []
        with self.session() as session:
            for output in self.spec.outputs:
                produced.extend(self._upload(session, output))
        self.say("outputs", produced)

    def _upload(self, session: Session, output: OutputChannel) -> list[dict[str, Any]]:
        source = Path(self.spec.output_source(output))
        bucket, prefix = parse_uri(output.destination)
        prefix = prefix.rstrip("/")
        if self.spec.kind == "training":
            archive = source / "model.tar.gz"
            if not archive.is_file():
                archive = Path(contract.ML) / "model.tar.gz"
                with tarfile.open(archive, "w:gz") as tar:
                    for file in sorted(p for p in source.rglob("*") if p.is_file()):
                        tar.add(file, arcname=file.relative_to(source).as_posix())
            files = [(archive, f"{self.spec.name}/output/model.tar.gz")]
        else:
            files = [(f, f.relative_to(source).as_posix()) for f in sorted(source.rglob("*")) if f.is_file()]
        results = []
        for file, relative in files:
            key = f"{prefix}/{relative}" if prefix else relative
            version = session.buckets.put_object(bucket, key, file)
            results.append(
                {
                    "name": output.name,
                    "uri": version.uri,
                    "version_id": version.version_id,
                    "sha256": version.sha256,
                    "size": version.size,
                }
            )
        return results

    def on_sigterm(self, signum: int, _frame: object) -> None:
        self.interrupted = True
        if self.waiting:
            raise _Terminated  # still downloading: the early child has read nothing yet
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)  # the program decides: checkpoint and exit
        elif self.child is None:
            raise _Terminated  # between phases (downloading, uploading): stop at once

    def main(self) -> int:
        signal.signal(signal.SIGTERM, self.on_sigterm)
        try:
            self.download_inputs()
            self.write_config()
            command = self.fetch_code()
            self.restore_checkpoints()
            if self.interrupted:
                self.abandon_early()
                return contract.EXIT_INTERRUPTED
            syncer = threading.Thread(target=self.sync_checkpoints_while_running, daemon=True)
            if self.spec.spot.checkpoint_uri:
                syncer.start()
            code = self.run(command, self.resume_note())
            self._finished.set()
            self.save_checkpoints()
            if code == 0:
                self.upload_outputs()
            else:
                failure = Path(contract.OUTPUT_DIR) / "failure"
                if failure.is_file():
                    self.say("failure", failure.read_text()[:2000].strip())
            return code
        except _Terminated:
            self.abandon_early()
            return contract.EXIT_INTERRUPTED
        except Exception as exc:  # the agent's own failure: say what and where
            self.abandon_early()
            self.say("failure", f"{type(exc).__name__}: {exc}"[:2000])
            return 1


def main() -> int:
    control = open_control_channel()
    config = json.loads((Path(contract.RUN_DIR) / "config.json").read_text())
    early = start_early(config)
    try:
        agent = Agent(config, control, early)
    except BaseException:
        if early is not None:
            early.kill()
        raise
    return agent.main()


if __name__ == "__main__":
    code = main()
    # Everything is uploaded and reported: end without the interpreter's teardown of every module
    # and object (a tenth of a second or more, spent while the job already waits to be completed).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
