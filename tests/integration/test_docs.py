"""Every ```sh and ```python block of README.md and docs/*.md runs, as written, on a fresh platform.

One test per page. The page's blocks run in order and share state, as a reader following the
page would: shell blocks share exported variables and the working directory; Python blocks share
one interpreter (one namespace); both see the same ``STRONGROOM_HOME``. Before the first block the
test initialises a fresh home and starts a real platform on it (``strongroom up``, any free port),
and the reader is its first PlatformAdmin (``STRONGROOM_TOKEN`` is that admin's token). The
working directory is a fresh temporary folder where ``.venv`` points at this checkout's
virtualenv, so ``.venv/bin/strongroom ...`` and plain ``strongroom ...`` both resolve.

Markers: an HTML comment on the line just above a fence (invisible on the rendered page)::

    <!-- doctest: role=DataScientist team=risk user=alice -->
        From this block on, act as USER (default: ``doc-<role>``) holding ROLE in TEAM: the
        test creates the user and the membership if needed, issues the user a token and
        exports it as STRONGROOM_TOKEN (later blocks keep it until another marker or the page
        itself exports another token). ``role=PlatformAdmin`` goes back to the admin's token;
        ``role=Auditor`` needs no team.
    <!-- doctest: skip reason="..." -->
        Do not run this block; the reason (required) must convince a reader, e.g. it needs an
        HSM, a PostgreSQL server or a file we do not ship.
    <!-- doctest: starts-platform -->
        The block initialises and starts the platform itself (the README's "Running your own
        platform"): the test does not start one first, gives the block an empty home, takes the
        admin token from the STRONGROOM_TOKEN the block exports, and stops the server afterwards.
    <!-- doctest: setup role=... -->  followed by a fenced block and a closing ``-->``
        A hidden block: it runs like any other (with the same keys as above) but is not shown
        on the rendered page. Use it sparingly, for what the surrounding text already assumes
        ("with the credit data in sr://risk-data/raw/").
    <!-- doctest: timeout=300 -->
        Seconds this block may take (default 120).

Unmarked blocks run. Blocks fenced as ```text, ```console, ```json ... are never run: use
them for output, placeholders and commands that only make sense on a real server. The
contributor note is docs/writing-docs.md.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strongroom.core.config import Config
from strongroom.platform import initialize
from strongroom.sdk.session import Session
from tests.support import RunningServer, start_server

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = ("sh", "python")
KEYS = {"role", "team", "user", "skip", "reason", "starts-platform", "setup", "timeout"}
TEAM_ROLES = {"DataScienceAdmin", "DataScientist", "MLOpsEngineer"}
PLATFORM_ROLES = {"PlatformAdmin", "Auditor"}
DEFAULT_TIMEOUT = 120.0

_MARKER = re.compile(r"^<!--\s*doctest:(?P<body>.*?)(?P<end>-->)?\s*$")
_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
_OUTER_FENCE = re.compile(r"^````[\w+-]*\s*$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    marks: dict[str, str] = field(default_factory=dict)
    hidden: bool = False

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}" + (" (hidden setup)" if self.hidden else "")


def parse_marks(body: str, where: str) -> dict[str, str]:
    marks: dict[str, str] = {}
    for token in shlex.split(body):
        key, _, value = token.partition("=")
        if key not in KEYS:
            raise ValueError(f"{where}: unknown doctest key {key!r} (known: {sorted(KEYS)})")
        marks[key] = value
    if "skip" in marks and not marks.get("reason"):
        raise ValueError(f'{where}: `doctest: skip` needs reason="..." that a reader accepts')
    role = marks.get("role")
    if role and role not in TEAM_ROLES | PLATFORM_ROLES:
        raise ValueError(f"{where}: unknown role {role!r}")
    if role in TEAM_ROLES and not marks.get("team"):
        raise ValueError(f"{where}: role={role} needs team=...")
    return marks


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of a page, in order, with the marker just above each (hidden ones too)."""
    page = path.relative_to(REPO).as_posix()
    lines = path.read_text().splitlines()
    found: list[Block] = []
    pending: dict[str, str] = {}
    hidden = False
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line.strip())
        fence = _FENCE.match(line)
        if _OUTER_FENCE.match(line):  # a four-backtick fence shows examples (markers too): skip it whole
            i = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "````"), len(lines)) + 1
            continue
        if marker:
            pending = parse_marks(marker["body"], f"{page}:{i + 1}")
            hidden = "setup" in pending
            if hidden == bool(marker["end"]):
                raise ValueError(
                    f"{page}:{i + 1}: a marker is one line `<!-- doctest: ... -->`, except `setup`, "
                    "which opens a comment that holds a fenced block and ends with --> after it"
                )
        elif fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: unclosed fence")
            lang = fence["lang"]
            if lang in RUNNABLE:
                found.append(Block(page, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", pending, hidden))
            elif pending:
                raise ValueError(f"{page}:{i + 1}: a doctest marker above a ```{lang} block (only sh/python run)")
            i = end
            if hidden:
                if end + 1 >= len(lines) or lines[end + 1].strip() != "-->":
                    raise ValueError(f"{page}:{i + 1}: a hidden setup block ends with --> on the next line")
                i = end + 1
            pending, hidden = {}, False
        elif line.strip() and pending and not hidden:
            raise ValueError(f"{page}:{i + 1}: a doctest marker must be just above its fence")
        i += 1
    return found


# -- running a page ---------------------------------------------------------------------------

# A Python "kernel" for one page: reads one JSON request per line, runs the code in one
# namespace with the page's environment and working directory, answers one JSON line.
_KERNEL = r"""
import json, os, sys, traceback
answer = os.fdopen(os.dup(1), "w")
namespace = {"__name__": "__main__"}
for request in sys.stdin:
    request = json.loads(request)
    os.environ.clear(); os.environ.update(request["env"]); os.chdir(request["cwd"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1); os.dup2(log, 2); os.close(log)
    ok, error = True, ""
    try:
        exec(compile(request["code"], request["where"], "exec"), namespace)
    except BaseException:
        ok, error = False, traceback.format_exc()
    sys.stdout.flush(); sys.stderr.flush()
    answer.write(json.dumps({"ok": ok, "error": error}) + "\n"); answer.flush()
"""


class PageRun:
    """The shared state of one page: home, working directory, environment, tokens, processes."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        (self.cwd / ".venv").symlink_to(REPO / ".venv")
        self.logs = tmp / "logs"
        self.logs.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
        env.update(
            STRONGROOM_HOME=str(self.home),
            STRONGROOM_PORT="0",
            STRONGROOM_TRACKING_JOURNAL=str(tmp / "tracking-journal"),  # a page's journaled Trackers: not the user's
            PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            MPLBACKEND="Agg",
            PYTHONWARNINGS="ignore",
        )
        self.env = env
        self.admin_token = ""
        self.tokens: dict[str, str] = {}
        self.server: RunningServer | None = None
        self.kernel: subprocess.Popen[str] | None = None
        self.count = 0

    # platform and roles

    def start_platform(self) -> None:
        config = Config(home=self.home, port=0)
        self.admin_token = initialize(config).token.secret
        self.server = start_server(config, self.admin_token)
        self.env["STRONGROOM_TOKEN"] = self.admin_token

    def admin(self) -> Session:
        return Session(home=self.home, token=self.admin_token)

    def act_as(self, marks: dict[str, str]) -> None:
        role = marks["role"]
        if role == "PlatformAdmin":
            self.env["STRONGROOM_TOKEN"] = self.admin_token
            return
        team = marks.get("team", "")
        user = marks.get("user") or f"doc-{role.lower()}"
        with self.admin() as admin:
            if user not in {u.name for u in admin.users.list()}:
                admin.users.create(user)
            if role in TEAM_ROLES:
                members = admin.teams.describe(team)["members"]
                if not any(m["user"] == user and m["role"] == role for m in members):
                    admin.teams.add_member(team, user, role)
            elif role not in admin.users.describe(user).roles:
                admin.users.grant_role(user, role)
            if user not in self.tokens:
                self.tokens[user] = admin.tokens.create(f"doctest-{len(self.tokens)}", user=user).secret
        self.env["STRONGROOM_TOKEN"] = self.tokens[user]

    # blocks

    def run(self, block: Block) -> tuple[bool, str]:
        self.count += 1
        log = self.logs / f"{self.count:02d}-{block.lang}.log"
        timeout = float(block.marks.get("timeout") or DEFAULT_TIMEOUT)
        runner = self._sh if block.lang == "sh" else self._python
        ok, error = runner(block, log, timeout)
        text = log.read_text(errors="replace") if log.exists() else ""
        return ok, (error + "\n" + text[-6000:]).strip()

    def _sh(self, block: Block, log: Path, timeout: float) -> tuple[bool, str]:
        state = self.logs / f"{self.count:02d}.env"
        script = (
            f"trap 'env -0 > {shlex.quote(str(state))}' EXIT\nset -euo pipefail\ncd \"$__DOCTEST_CWD\"\n{block.code}"
        )
        env = {**self.env, "__DOCTEST_CWD": self.env.get("__DOCTEST_CWD", str(self.cwd))}
        with log.open("w") as out:
            # Output to a file, not a pipe: a block that starts `strongroom up &` leaves a child
            # holding its stdout, and a pipe would never reach end-of-file.
            process = subprocess.Popen(
                ["bash", "-c", script], cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                return False, f"timed out after {timeout:g} s"
        if state.exists():
            exported = dict(item.split("=", 1) for item in state.read_text(errors="replace").split("\0") if "=" in item)
            exported["__DOCTEST_CWD"] = exported.get("PWD", env["__DOCTEST_CWD"])
            for name in ("SHLVL", "_", "OLDPWD", "PWD"):
                exported.pop(name, None)
            self.env = exported
        return code == 0, f"exit code {code}"

    def _python(self, block: Block, log: Path, timeout: float) -> tuple[bool, str]:
        if self.kernel is None:
            self.kernel = subprocess.Popen(
                [sys.executable, "-c", _KERNEL],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=self.cwd,
            )
        assert self.kernel.stdin is not None and self.kernel.stdout is not None
        cwd = self.env.get("__DOCTEST_CWD", str(self.cwd))
        request = {"code": block.code, "env": self.env, "cwd": cwd, "log": str(log), "where": block.where}
        self.kernel.stdin.write(json.dumps(request) + "\n")
        self.kernel.stdin.flush()
        deadline = time.monotonic() + timeout
        while not select.select([self.kernel.stdout], [], [], 1.0)[0]:
            if self.kernel.poll() is not None or time.monotonic() > deadline:
                self._stop_kernel()
                return False, f"the Python block did not finish within {timeout:g} s"
        answer = json.loads(self.kernel.stdout.readline() or '{"ok": false, "error": "the kernel died"}')
        return bool(answer["ok"]), str(answer["error"])

    def _stop_kernel(self) -> None:
        assert self.kernel is not None
        self.kernel.kill()
        self.kernel.wait()
        for stream in (self.kernel.stdin, self.kernel.stdout):
            if stream is not None:
                stream.close()
        self.kernel = None

    def close(self) -> None:
        if self.kernel is not None:
            self._stop_kernel()
        if self.server is not None:
            self.server.stop()
        else:
            _stop_own_server(self.home)


def _stop_own_server(home: Path) -> None:
    """Stop a `strongroom up` a block started in the background (its pid is in run/server.json)."""
    try:
        pid = int(json.loads((home / "run" / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _pages_with_blocks() -> Iterator[object]:
    for path in PAGES:
        blocks = blocks_of(path)
        if blocks:
            yield pytest.param(path, blocks, id=path.relative_to(REPO).as_posix())


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("path", "blocks"), list(_pages_with_blocks()))
def test_every_block_of_the_page_runs(path: Path, blocks: list[Block], tmp_path: Path) -> None:
    page = PageRun(tmp_path)
    try:
        runnable = [b for b in blocks if "skip" not in b.marks]
        if runnable and "starts-platform" not in runnable[0].marks:
            page.start_platform()
        for block in runnable:
            reader = page.env.get("STRONGROOM_TOKEN")
            if "role" in block.marks:
                page.act_as(block.marks)
            ok, detail = page.run(block)
            if block.hidden and reader is not None:  # a hidden setup does not change who the reader is
                page.env["STRONGROOM_TOKEN"] = reader
            assert ok, f"{block.where}: the ```{block.lang} block failed:\n{block.code}\n--- output ---\n{detail}"
            if "starts-platform" in block.marks:
                page.admin_token = page.env.get("STRONGROOM_TOKEN", "")
                assert page.admin_token, f"{block.where}: starts-platform, but exported no STRONGROOM_TOKEN"
    finally:
        page.close()


def test_markers_are_well_formed() -> None:
    """Parsing every page raises on an unknown key, a skip without a reason or a stray marker."""
    skipped = [b for path in PAGES for b in blocks_of(path) if "skip" in b.marks]
    assert all(len(b.marks["reason"]) > 20 for b in skipped), [b.where for b in skipped]


def test_the_parser_reads_markers_and_hidden_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```sh\necho one\n```\n\n<!-- doctest: role=DataScientist team=risk user=alice -->\n"
        "```python\nx = 1\n```\n\n<!-- doctest: setup role=PlatformAdmin\n```sh\necho hidden\n```\n-->\n"
        '<!-- doctest: skip reason="needs an HSM on the host" -->\n```sh\nsofthsm2-util\n```\n```text\nout\n```\n'
        "````text\n<!-- doctest: setup\n```sh\nshown, never run\n```\n-->\n````\n"
    )
    found = blocks_of(page)
    assert [(b.lang, b.code, b.hidden) for b in found] == [
        ("sh", "echo one\n", False),
        ("python", "x = 1\n", False),
        ("sh", "echo hidden\n", True),
        ("sh", "softhsm2-util\n", False),
    ]
    assert found[1].marks == {"role": "DataScientist", "team": "risk", "user": "alice"}
    assert found[3].marks["reason"] == "needs an HSM on the host"
    page.write_text("<!-- doctest: skip -->\n```sh\nx\n```\n")
    with pytest.raises(ValueError, match="reason"):
        blocks_of(page)
    page.write_text("<!-- doctest: rolle=x -->\n```sh\nx\n```\n")
    with pytest.raises(ValueError, match="unknown doctest key"):
        blocks_of(page)
