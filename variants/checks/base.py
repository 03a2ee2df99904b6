"""Runtime checks for base (and so for every variant built on it).

Each `check_*` function gets the started container's session; it fails by
raising AssertionError and may return a short detail.
"""

from __future__ import annotations

import os

from builder.smoke import Session

GIT = "git -c user.name=Smoke -c user.email=smoke@headjack.invalid"


def check_git_commits_in_the_mounted_workspace(session: Session) -> str:
    code, out = session.shell(
        f"set -e; git init -q demo; cd demo; echo hello > note.txt; git add note.txt; {GIT} commit -qm first; "
        "git log --oneline | wc -l"
    )
    assert code == 0, f"git commit failed as {session.user}: {out}"
    owner = os.stat(session.workspace / "demo" / "note.txt").st_uid
    assert owner == 1000, f"note.txt is owned by uid {owner} on the host, expected 1000"
    return "committed; files owned by uid 1000 on the host"


def check_version_managers_answer(session: Session) -> str:
    answers = []
    for argv in (["pyenv", "versions"], ["rustup", "--version"], ["nodenv", "--version"]):
        code, out = session.exec(argv)
        assert code == 0, f"{' '.join(argv)} failed: {out}"
        answers.append(out.strip().splitlines()[0] if out.strip() else "(no versions)")
    return "; ".join(answers)


def check_agent_clis_on_plain_exec(session: Session) -> str:
    """Headjack runs `docker exec <id> claude`: no login shell, so PATH must come from the image."""
    found = []
    for cli in ("claude", "gemini", "codex"):
        code, out = session.exec(["sh", "-c", f"command -v {cli}"])
        assert code == 0, f"{cli} is not on the PATH of a plain exec"
        found.append(out.strip())
    return ", ".join(found)
