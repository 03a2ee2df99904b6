"""The embedded OCI registry: a real `registry` (distribution) process on 127.0.0.1.

Pipeline commands given no registry use it; the runner starts it, as a step of
its own, when a run needs it. Its data,
config, log and pid live under the state folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from builder.engine import commands as tools
from builder.engine import oci, state
from builder.model.config import Settings
from builder.model.errors import FactoryError

REGISTRY_BINARIES = ("docker-registry", "registry")


def _http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def answers_v2(address: str) -> bool:
    """True when an OCI distribution API answers at http://ADDRESS/v2/."""
    try:
        status, _ = _http_get(f"http://{address}/v2/", timeout=2)
    except (OSError, urllib.error.URLError):
        return False
    return status in (200, 401)


def catalog(address: str) -> dict[str, list[str]]:
    """Repositories and their tags in a plain-http registry (the embedded one)."""
    status, body = _http_get(f"http://{address}/v2/_catalog?n=1000")
    if status != 200:
        raise FactoryError(f"registry {address} refused the catalog request (HTTP {status})")
    repos = json.loads(body).get("repositories") or []
    result: dict[str, list[str]] = {}
    for repo in repos:
        status, body = _http_get(f"http://{address}/v2/{repo}/tags/list?n=1000")
        tags = (json.loads(body).get("tags") or []) if status == 200 else []
        result[repo] = sorted(tags)
    return result


@dataclass(frozen=True)
class RegistryStatus:
    address: str
    running: bool
    pid: int | None
    ours: bool
    data_dir: Path
    log_path: Path


def _alive(pid: int) -> bool:
    """Whether PID runs (a child that exited but wasn't reaped doesn't)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    stat = Path("/proc") / str(pid) / "stat"
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: the signal answered


def _command_line(pid: int) -> list[str]:
    """A process's argv: /proc where there is one, else `ps`."""
    proc = Path("/proc") / str(pid) / "cmdline"
    if proc.parent.is_dir():
        try:
            return proc.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return []
    result = tools.run(["ps", "-o", "command=", "-p", str(pid)], check=False, timeout=10)
    return result.stdout.split()


class EmbeddedRegistry:
    def __init__(self, port: int, root: Path | None = None, htpasswd: Path | None = None) -> None:
        self.port = port
        self.htpasswd = htpasswd
        """With a bcrypt htpasswd file the registry asks for credentials (like GHCR does)."""
        self.root = root or state.subdir("registry", str(port))
        self.data_dir = self.root / "data"
        self.config_path = self.root / "config.yml"
        self.log_path = self.root / "registry.log"
        self.pid_path = self.root / "registry.pid"

    @property
    def address(self) -> str:
        # `localhost:PORT` is trusted over plain http by Docker and BuildKit by default.
        return f"localhost:{self.port}"

    def _pid(self) -> int | None:
        """The pid file's process, when it is alive and is this registry (serving our config):
        a pid the system has since given to another program is never signalled."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        command = _command_line(pid)
        if "serve" not in command or str(self.config_path) not in command:
            return None
        return pid

    def status(self) -> RegistryStatus:
        pid = self._pid()
        return RegistryStatus(
            address=self.address, running=answers_v2(self.address), pid=pid,
            ours=pid is not None, data_dir=self.data_dir, log_path=self.log_path,
        )

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.data_dir}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            + (f"auth:\n  htpasswd:\n    realm: hjk-images\n    path: {self.htpasswd}\n" if self.htpasswd else "")
        )

    def _port_free(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                return False
        return True

    def up(self, timeout: float = 20.0) -> RegistryStatus:
        if answers_v2(self.address):
            return self.status()
        if not self._port_free():
            raise FactoryError(
                f"port {self.port} on 127.0.0.1 is taken by a program that is not a registry: "
                "free it or choose another port (embedded_registry.port in factory.yaml, or --port)"
            )
        binary = next((b for b in REGISTRY_BINARIES if shutil.which(b)), None)
        if binary is None:
            raise FactoryError(
                "no registry server is installed (`docker-registry` or `registry`): run `make setup`"
            )
        self._write_config()
        pid = tools.spawn([binary, "serve", str(self.config_path)], self.log_path)
        self.pid_path.write_text(f"{pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers_v2(self.address):
                return self.status()
            if not _alive(pid):  # not _pid(): until its exec, the child's argv is still ours
                break
            time.sleep(0.2)
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        self.down()
        raise FactoryError(f"the registry on {self.address} did not start; its log ends:\n{tail}")

    def down(self) -> bool:
        pid = self._pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        return True


def embedded(settings: Settings, port: int | None = None) -> EmbeddedRegistry:
    return EmbeddedRegistry(port or settings.config.embedded_registry.port)


def chosen(settings: Settings, override: str | None) -> str | None:
    """The registry named by --registry or the config, if any; a look-up, nothing is started."""
    named = override or settings.config.registry
    return named.rstrip("/") if named else None


def reachable(address: str) -> bool:
    """Whether a registry answers; for non-local ones assume yes (auth may hide /v2/)."""
    if oci.loopback(address):
        return answers_v2(address)
    return True
