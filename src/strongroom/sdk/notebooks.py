"""Drive a running notebook's Jupyter through the platform proxy: kernels, cells, whole notebooks.

Everything goes through ``/notebooks/<team>/<name>/`` with the session's token, so every request
and the kernel's WebSocket are authorized (``OpenNotebook``) and audited like any other call::

    with session.notebooks.kernel("risk", "alice-nb") as kernel:
        result = kernel.execute("import os; os.getuid()")
    executed = execute_notebook(session, "risk", "alice-nb", "work/01_workflow.ipynb",
                                on_cell=lambda i, cell, result: print(i, result.status))
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat import NotebookNode

from strongroom.core.errors import StrongroomError
from strongroom.sdk.paths import q

if TYPE_CHECKING:
    from strongroom.sdk.session import Session


# Longer than the proxy waits for Jupyter, which waits up to 60 s for the kernel's first answer.
_OPEN_TIMEOUT = 90.0


class CellExecutionError(StrongroomError):
    """A cell raised: ``ename``, ``evalue`` and the traceback say what and where."""

    slug = "cell-execution-error"
    status = 422
    title = "Cell execution error"


@dataclass
class ExecutionResult:
    """What one ``execute`` produced (outputs in nbformat's shape)."""

    status: str
    outputs: list[NotebookNode] = field(default_factory=list)
    execution_count: int | None = None
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything the cell printed or returned as text."""
        parts: list[str] = []
        for output in self.outputs:
            if output.get("output_type") == "stream":
                parts.append(str(output.get("text", "")))
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(str(output["data"]["text/plain"]) + "\n")
        return "".join(parts)


class RemoteKernel:
    """One kernel of a running notebook, reached through the proxy (REST to start, WebSocket to talk)."""

    def __init__(self, session: Session, team: str, name: str, kernel_id: str) -> None:
        self.session, self.team, self.name, self.kernel_id = session, team, name, kernel_id
        self.base = f"/notebooks/{q(team)}/{q(name)}"
        self.session_id = uuid.uuid4().hex
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(self._connect())

    @classmethod
    def start(cls, session: Session, team: str, name: str, kernel_name: str = "python3") -> RemoteKernel:
        """Start a kernel and connect to it (Jupyter answers the WebSocket once the kernel runs)."""
        kernels = f"/notebooks/{q(team)}/{q(name)}/api/kernels"
        kernel_id = str(session.request("POST", kernels, json_body={"name": kernel_name}).json()["id"])
        try:
            return cls(session, team, name, kernel_id)
        except BaseException:
            _delete_kernel(session, f"{kernels}/{kernel_id}")
            raise

    def _connect(self) -> Any:
        from websockets.sync.client import connect, unix_connect

        path = f"{self.base}/api/kernels/{self.kernel_id}/channels?session_id={self.session_id}"
        headers = {"Authorization": f"Bearer {self.session.current_token()}"}
        if self.session.socket:
            return unix_connect(
                self.session.socket,
                f"ws://localhost{path}",
                additional_headers=headers,
                max_size=None,
                open_timeout=_OPEN_TIMEOUT,
            )
        url = str(self.session.url)
        context = ssl.create_default_context(cafile=str(self.session.ca_path)) if url.startswith("https") else None
        return connect(
            "wss://" + url.split("://", 1)[1].rstrip("/") + path,
            ssl=context,
            additional_headers=headers,
            max_size=None,
            open_timeout=_OPEN_TIMEOUT,
        )

    def __enter__(self) -> RemoteKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Close the WebSocket and stop the kernel."""
        try:
            self._stack.close()
        finally:
            _delete_kernel(self.session, f"{self.base}/api/kernels/{self.kernel_id}")

    def execute(self, code: str, *, timeout: float = 120.0, raise_on_error: bool = False) -> ExecutionResult:
        """Run ``code``; return its outputs once the kernel is idle again.

        Raises:
            TimeoutError: no result within ``timeout`` seconds.
            CellExecutionError: the code raised (with ``raise_on_error``).
        """
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "strongroom",
                "session": self.session_id,
                "date": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        self._ws.send(json.dumps(message))
        result = ExecutionResult(status="ok")
        idle = replied = False
        deadline = time.monotonic() + timeout
        while not (idle and replied):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the kernel did not finish within {timeout:g} s")
            try:
                raw = self._ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            content = msg.get("content", {})
            if msg.get("channel") == "shell" and kind == "execute_reply":
                replied = True
                result.status = content.get("status", "ok")
                result.execution_count = content.get("execution_count")
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind in ("stream", "display_data", "execute_result", "error"):
                msg["msg_type"] = kind
                result.outputs.append(nbformat.v4.output_from_msg(msg))
                if kind == "error":
                    result.ename, result.evalue = content.get("ename", ""), content.get("evalue", "")
                    result.traceback = list(content.get("traceback", []))
        if raise_on_error and result.status == "error":
            raise CellExecutionError(f"{result.ename}: {result.evalue}", ename=result.ename, evalue=result.evalue)
        return result


def _delete_kernel(session: Session, kernel_path: str) -> None:
    with contextlib.suppress(StrongroomError):  # best effort: the notebook may be gone already
        session.request("DELETE", kernel_path)


def _file(path: str) -> str:
    """A path in the notebook's home for the contents API: kept as segments, each quoted."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise StrongroomError(f"{path!r} is not a path inside the notebook's home", field="path")
    return "/".join(q(p) for p in parts)


CellCallback = Callable[[int, NotebookNode, ExecutionResult], None]


def upload(
    session: Session, team: str, name: str, path: str, content: NotebookNode | dict[str, Any] | str | bytes
) -> None:
    """Write a file into the running notebook's home at ``path`` (directories are created).

    A notebook (``nbformat`` node or dict) is saved as a notebook; text and bytes as a file.
    """
    import base64

    root = f"/notebooks/{q(team)}/{q(name)}/api/contents"
    parts = [p for p in path.split("/") if p]
    for depth in range(1, len(parts)):
        directory = "/".join(parts[:depth])
        with contextlib.suppress(StrongroomError):
            session.request("PUT", f"{root}/{_file(directory)}", json_body={"type": "directory"})
    if isinstance(content, dict):
        body: dict[str, Any] = {"type": "notebook", "format": "json", "content": content}
    elif isinstance(content, bytes):
        body = {"type": "file", "format": "base64", "content": base64.b64encode(content).decode()}
    else:
        body = {"type": "file", "format": "text", "content": content}
    session.request("PUT", f"{root}/{_file(path)}", json_body=body)


def download(session: Session, team: str, name: str, path: str) -> NotebookNode:
    """Read the notebook file at ``path`` from the running notebook's home."""
    model = session.request(
        "GET", f"/notebooks/{q(team)}/{q(name)}/api/contents/{_file(path)}", params={"content": "1", "type": "notebook"}
    ).json()
    return nbformat.from_dict(model["content"])


def execute_notebook(
    session: Session,
    team: str,
    name: str,
    path: str,
    *,
    timeout_per_cell: float = 600.0,
    kernel_name: str = "python3",
    save: bool = True,
    stop_on_error: bool = True,
    on_cell: CellCallback | None = None,
) -> NotebookNode:
    """Execute the notebook file ``path`` (relative to the notebook's home) cell by cell in a new kernel
    of the running notebook ``team/name``, as the session's user, through the proxy.

    Outputs and execution counts are written into the cells; with ``save`` the executed notebook is
    saved back to ``path``. ``on_cell(index, cell, result)`` is called after each code cell.

    Raises:
        CellExecutionError: a cell raised and ``stop_on_error`` (the notebook, with outputs up to the
            failing cell, is saved first and attached as ``error.notebook``).
    """
    base = f"/notebooks/{q(team)}/{q(name)}/api/contents/{_file(path)}"
    notebook = download(session, team, name, path)
    failure: CellExecutionError | None = None
    with RemoteKernel.start(session, team, name, kernel_name) as kernel:
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            result = kernel.execute(cell.source, timeout=timeout_per_cell)
            cell.outputs = result.outputs
            cell.execution_count = result.execution_count
            if on_cell is not None:
                on_cell(index, cell, result)
            if result.status == "error" and stop_on_error:
                failure = CellExecutionError(
                    f"cell {index} raised {result.ename}: {result.evalue}",
                    cell=index,
                    ename=result.ename,
                    evalue=result.evalue,
                )
                break
    if save:
        session.request("PUT", base, json_body={"type": "notebook", "format": "json", "content": notebook})
    if failure is not None:
        failure.notebook = notebook  # type: ignore[attr-defined]
        raise failure
    return notebook
