"""Runtime checks for systemd: a healthy init as PID 1."""

from __future__ import annotations

from builder.stages.smoke import Omitted, Session

# Units that may fail in a container, each with the reason it is acceptable.
JUSTIFIED_FAILURES: dict[str, str] = {}

# Under QEMU user emulation (arm64 on an x86 host) systemd can't set up its
# services' execution environment (namespaces, credentials): these units fail
# there and nowhere else. Native runners check them for real.
EMULATION_FAILURES = (
    "dbus.service", "ldconfig.service", "systemd-journal-catalog-update.service",
    "systemd-journal-flush.service", "systemd-journald.service", "systemd-logind.service",
    "systemd-sysusers.service", "systemd-tmpfiles-setup-dev-early.service", "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup.service", "systemd-update-done.service", "systemd-user-sessions.service",
    "systemd-journald-dev-log.socket", "systemd-journald.socket", "systemd-journald-audit.socket",
    "containerd.service", "docker.service", "docker.socket",
    # with no --tmpfs (Headjack passes none), systemd mounts these itself, which qemu-user can't
    "run-lock.mount", "tmp.mount",
)


def check_system_is_running(session: Session) -> str:
    _, out = session.exec(["systemctl", "is-system-running"], user="root")
    state = out.strip()
    if state == "running":
        return "running"
    assert state == "degraded", f"systemctl is-system-running: {state!r}"
    _, failed = session.exec(["systemctl", "--failed", "--no-legend", "--plain"], user="root")
    units = [line.split()[0] for line in failed.splitlines() if line.strip()]
    reasons = dict(JUSTIFIED_FAILURES)
    if session.emulated:
        reasons.update({u: "fails only under QEMU user emulation" for u in EMULATION_FAILURES})
    unjustified = [u for u in units if u not in reasons]
    assert not unjustified, f"degraded; failed units without a justification: {', '.join(unjustified)}"
    if session.emulated and units:
        raise Omitted(f"degraded under QEMU user emulation ({len(units)} units: {', '.join(units)}); "
                      "PID 1 came up, the units are checked on native platforms")
    return "degraded: " + "; ".join(f"{u} ({reasons[u]})" for u in units)


def check_developer_is_still_there_for_unprivileged_work(session: Session) -> str:
    """Headjack's agents run as root here (the image's USER, so PID 1 can be systemd);
    work that should not run as root can still switch to developer."""
    code, out = session.exec(["su", "developer", "-c", "id -un"])
    assert code == 0 and out.strip() == "developer", f"`su developer` gave {out.strip()!r}"
    return "su developer works"
