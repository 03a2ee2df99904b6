"""Runtime checks for dind: the inner engine runs and builds, fed without a pull."""

from __future__ import annotations

import tempfile
from pathlib import Path

from builder.engine import commands as tools
from builder.stages.smoke import Omitted, Session

INNER_IMAGE = "headjack-smoke/inner:latest"


def _wait_for_engine(session: Session) -> None:
    code, out = session.shell(
        "for i in $(seq 1 120); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; "
        "systemctl status docker --no-pager; exit 1",
        timeout=150,
    )
    assert code == 0, f"the inner engine did not answer `docker info` on a plain exec: {out[-800:]}"


def _load_parent_image(session: Session) -> None:
    """No pull is possible inside: save the (small) root image here and load it there."""
    source = session.target.root_reference or session.target.reference
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "inner.tar"
        tools.run(["docker", "pull", "--quiet", "--platform", session.target.platform, source], timeout=900)
        tools.run(["docker", "tag", source, INNER_IMAGE])
        tools.run(["docker", "save", "-o", str(archive), INNER_IMAGE], timeout=900)
        archive.chmod(0o644)
        # /tmp is a tmpfs in this profile and `docker cp` can't write into one
        container_id = session.container.id
        tools.run(["docker", "cp", str(archive), f"{container_id}:/var/tmp/inner.tar"], timeout=900)
    code, out = session.exec(["docker", "load", "-i", "/var/tmp/inner.tar"], timeout=900)
    assert code == 0, f"docker load inside failed: {out}"


def check_inner_engine_runs_and_builds(session: Session) -> str:
    if session.emulated:
        raise Omitted("an inner Docker engine can't run under QEMU user emulation; checked on native platforms")
    _wait_for_engine(session)
    _load_parent_image(session)
    code, out = session.exec(["docker", "run", "--rm", INNER_IMAGE, "echo", "hello-from-inner"], timeout=600)
    assert code == 0 and "hello-from-inner" in out, f"inner docker run failed: {out[-800:]}"
    code, out = session.shell(
        "mkdir -p /tmp/ctx && printf 'FROM %s\\nRUN echo built > /built\\n' " + INNER_IMAGE + " > /tmp/ctx/Dockerfile "
        "&& DOCKER_BUILDKIT=0 docker build -q -t headjack-smoke/built /tmp/ctx "
        "&& docker run --rm headjack-smoke/built cat /built",
        timeout=600,
    )
    assert code == 0 and "built" in out, f"inner docker build failed: {out[-800:]}"
    return "inner engine ran a loaded image and built a tiny one"
