"""The one command runner: every external command (docker, buildx, skopeo, mmdebstrap,
cosign, git...) starts here, so timeouts, secret redaction, error messages, retry
policy and stopping on a signal are handled once.

python-on-whales and testcontainers run Docker too; their adapters
(`engine.buildx`, `engine.containers`) apply the same redaction and timeouts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from builder.model.errors import FactoryError

# Values that must never be shown: registered by whoever reads a credential.
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Mask `value` in every command line, log line and error this module emits."""
    if value:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


_AUTH_MARKERS = ("no basic auth credentials", "unauthorized", "401 unauthorized", "authentication required")


def auth_hint(output: str) -> str:
    """A line on how to log in, when OUTPUT is a registry asking for credentials (else '')."""
    if any(m in output.lower() for m in _AUTH_MARKERS):
        return ("\nthe registry wants credentials, or refused them: "
                "`hjk-images login REGISTRY -u USER --password-stdin` (or `docker login`)")
    return ""


class CommandError(FactoryError):
    """An external command failed; the message names it and shows its output's tail."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = redact(output)
        tail = "\n".join(self.output.strip().splitlines()[-15:])
        shown = redact(" ".join(self.argv))
        hint = auth_hint(self.output)
        super().__init__(f"`{shown}` failed (exit {returncode})" + (f":\n{tail}" if tail else "") + hint)


class MissingToolError(FactoryError):
    pass


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def require(tool: str, hint: str = "run `make setup`") -> str:
    """Return the path of `tool`, or fail naming it and how to get it."""
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(f"`{tool}` is not installed: {hint}")
    return path


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    log: IO[str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run a command and capture its output.

    With `log`, stdout and stderr are streamed (merged) into that file instead of
    being captured, which keeps memory flat for long build logs.
    """
    require(argv[0])
    full_env = {**os.environ, **(env or {})}
    # a process group of its own: a timeout or a stop ends the command and all it started,
    # and nothing else of this run
    with subprocess.Popen(
        list(argv), stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
        text=True, env=full_env, cwd=cwd, process_group=0,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            raise CommandError(argv, -1, f"timed out after {timeout} s") from None
        except BaseException:  # Ctrl-C, SIGTERM: the command goes with us
            _end_group(proc)
            raise
    result = Result(list(argv), proc.returncode, stdout or "", stderr or "")
    if check and result.returncode != 0:
        raise CommandError(argv, result.returncode, result.stderr or result.stdout)
    return result


def _end_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the command's process group, SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue


def docker_answers() -> bool:
    return run(["docker", "info"], check=False, timeout=30).returncode == 0


def ensure_docker() -> None:
    require("docker")
    if not docker_answers():
        raise FactoryError(
            "the Docker engine does not answer `docker info`: start it "
            "(`make setup` starts one on hosts without an init system)"
        )


def spawn(argv: Sequence[str], log_path: Path) -> int:
    """Start a long-lived process detached from this one (own session); return its pid."""
    require(argv[0])
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


_TRANSIENT_MARKERS = (
    "connection refused", "connection reset", "i/o timeout", "tls handshake timeout",
    "502 bad gateway", "503 service unavailable", "504 gateway", "too many requests",
    "unexpected eof", "broken pipe", "timed out after",
)

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Network blips and overloaded registries are worth another try; the rest is not."""
    return isinstance(exc, CommandError) and any(m in exc.output.lower() for m in _TRANSIENT_MARKERS)


def _say_retry(state: RetryCallState) -> None:
    """Every retry is visible: which attempt, how long until the next, and why."""
    error = state.outcome.exception() if state.outcome else None
    reason = (error.output.strip().splitlines() or [""])[-1] if isinstance(error, CommandError) else str(error)
    wait = state.next_action.sleep if state.next_action else 0
    sys.stderr.write(f"retrying in {wait:.0f} s (attempt {state.attempt_number} failed): {redact(reason)[:300]}\n")


def retry_transient(action: Callable[[], T], attempts: int = 3) -> T:
    """Run ACTION, retrying transient registry errors with exponential backoff; anything
    else (an auth error, a 404, a 500) fails at once."""
    retrying = Retrying(
        retry=retry_if_exception(is_transient), stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=2, max=30), reraise=True, before_sleep=_say_retry,
    )
    return retrying(action)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def handle_stop_signals() -> None:
    """SIGINT and SIGTERM both stop a run cleanly (KeyboardInterrupt), however it was started.

    A job started in the background (`nohup make test &`, many CI runners)
    inherits SIGINT *ignored*; Python then keeps it ignored, and so would every
    buildx we start, so `kill -INT` and a runner's cancel would do nothing. A
    handler of our own also resets the signal to its default in our children.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def stop_children(sig: int = signal.SIGINT) -> list[int]:
    """Signal our direct children that share our session (the buildx calls started by
    python-on-whales); daemons started with `spawn` run in sessions of their own and
    are left alone, so an embedded registry outlives a stopped build.

    Ctrl-C in a terminal reaches them through the process group; this covers
    the cases where only we got the signal (CI runners, `kill -INT`).
    """
    me = os.getpid()
    my_session = os.getsid(0)
    signalled = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces or parentheses: split after the last ')'
        # fields: state, ppid, pgrp, session, ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and fields[1] == str(me) and fields[3] == str(my_session):
            try:
                os.kill(int(entry.name), sig)
                signalled.append(int(entry.name))
            except OSError:
                pass
    return signalled


def run_as(user: str | None, argv: list[str]) -> list[str]:
    """ARGV run as USER (a host account): through runuser when we are root, unchanged when
    USER is None or already us; anything else is refused rather than run as the wrong user."""
    if user is None or pwd.getpwuid(os.geteuid()).pw_name == user:
        return argv
    if os.geteuid() != 0:
        raise FactoryError(f"running as host user '{user}' needs root (runuser); run as that user instead")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise FactoryError(f"host user '{user}' does not exist (create it: useradd -m -G docker {user})") from None
    return [require("runuser"), "-u", user, "--", *argv]
