"""The systemd unit and environment file that run ``strongroom up`` as a service."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from strongroom.core.errors import ConfigurationError, InvalidInput
from strongroom.core.names import check_name

UNIT_NAME = "strongroom.service"

# Why the hardening stops where it does: sandboxes are bubblewrap in user namespaces (so no
# RestrictNamespaces, no PrivateUsers), encrypted volumes are gocryptfs over /dev/fuse mounted with
# the set-uid fusermount3 (so no PrivateDevices, no NoNewPrivileges).
_UNIT = """\
# Written by `strongroom install-service`. Reload after editing: systemctl daemon-reload
[Unit]
Description=Strongroom ML workbench (control plane, notebook proxy, workers)
After=network-online.target{after}
Wants=network-online.target

[Service]
Type=simple
User={user}
Group={user}
EnvironmentFile={env_file}
ExecStart={executable} up --home {home}
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
RestartSec=5
UMask=0077
LimitNOFILE=65536
ProtectSystem=full
ProtectHome=read-only
ReadWritePaths={home}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes

[Install]
WantedBy=multi-user.target
"""

_ENV = """\
# Environment of strongroom.service (mode 0600, read by systemd before it drops to {user}).
STRONGROOM_HOME={home}
# The root key, if it is not the file {home}/root.key (base64 of 32 bytes), or a passphrase:
#STRONGROOM_ROOT_KEY=
#STRONGROOM_ROOT_PASSPHRASE=
# The HSM PIN when keyring = "pkcs11":
#STRONGROOM_PKCS11_PIN=
"""


@dataclass(frozen=True)
class ServiceFiles:
    unit: Path
    env: Path
    problems: tuple[str, ...] = ()  # what will stop the service from starting, to fix first


def render(home: Path, user: str, env_file: Path, executable: Path, after: str = "") -> tuple[str, str]:
    """The unit's and the environment file's text."""
    check_name(user, "user")
    for path, field in ((home, "home"), (env_file, "env_file"), (executable, "executable")):
        if not path.is_absolute() or any(c in str(path) for c in " \t\n\"'\\$%;"):
            raise InvalidInput(f"{path} must be an absolute path without spaces or special characters", field=field)
    if after and not re.fullmatch(r"[A-Za-z0-9@_.:-]+( [A-Za-z0-9@_.:-]+)*", after):
        raise InvalidInput(
            f"{after!r} is not a list of unit names separated by spaces (e.g. postgresql.service)", field="after"
        )
    unit = _UNIT.format(
        after=f" {after}" if after else "", user=user, env_file=env_file, executable=executable, home=home
    )
    return unit, _ENV.format(home=shlex.quote(str(home)), user=user)


def install(
    home: Path,
    *,
    user: str = "strongroom",
    unit_dir: Path = Path("/etc/systemd/system"),
    env_file: Path = Path("/etc/strongroom/strongroom.env"),
    after: str = "",
) -> ServiceFiles:
    """Write the unit (0644) and the environment file (0600); never overwrite an edited environment file."""
    executable = _installed_executable()
    unit_text, env_text = render(home.resolve(), user, env_file, executable, after)
    unit_dir.mkdir(parents=True, exist_ok=True)
    unit = unit_dir / UNIT_NAME
    unit.write_text(unit_text)
    unit.chmod(0o644)
    env_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not env_file.exists():
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(env_text)
    problems = tuple(
        f"the user {user} cannot reach the {what} {path}: {blocked} is closed to other users "
        f"(mode {blocked.stat().st_mode & 0o777:o}); move the {what} (e.g. a home in /srv, a virtualenv in /opt)"
        for what, path in (("home", home.resolve()), ("executable", executable))
        if (blocked := _closed_parent(path, user)) is not None
    )
    return ServiceFiles(unit=unit, env=env_file, problems=problems)


def _closed_parent(path: Path, user: str) -> Path | None:
    """The first existing folder above ``path`` that ``user`` may not pass through, if any."""
    import pwd

    try:
        uid: int | None = pwd.getpwnam(user).pw_uid
    except KeyError:  # not created yet (the steps create it): it owns nothing
        uid = None
    for folder in reversed(path.parents):
        if not folder.is_dir():
            break
        info = folder.stat()
        if not info.st_mode & 0o001 and info.st_uid != uid:
            return folder
    return None


def _installed_executable() -> Path:
    """The ``strongroom`` script beside this interpreter (a virtualenv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "strongroom"
    found = beside if beside.exists() else shutil.which("strongroom")
    if found is None:
        raise ConfigurationError("no `strongroom` executable found beside this Python or on PATH")
    return Path(found).absolute()
