"""Runtime checks for systemd: a healthy init as PID 1."""

from __future__ import annotations

from builder.smoke import Session

# Units that may fail in a container, each with the reason it is acceptable.
JUSTIFIED_FAILURES: dict[str, str] = {}


def check_system_is_running(session: Session) -> str:
    _, out = session.exec(["systemctl", "is-system-running"], user="root")
    state = out.strip()
    if state == "running":
        return "running"
    assert state == "degraded", f"systemctl is-system-running: {state!r}"
    _, failed = session.exec(["systemctl", "--failed", "--no-legend", "--plain"], user="root")
    units = [line.split()[0] for line in failed.splitlines() if line.strip()]
    unjustified = [u for u in units if u not in JUSTIFIED_FAILURES]
    assert not unjustified, f"degraded; failed units without a justification: {', '.join(unjustified)}"
    return "degraded: " + "; ".join(f"{u} ({JUSTIFIED_FAILURES[u]})" for u in units)


def check_user_session_is_not_root(session: Session) -> str:
    code, out = session.exec(["id", "-un"])
    assert code == 0 and out.strip() == "developer", f"exec runs as {out.strip()!r}, expected developer"
    return "exec as developer"
