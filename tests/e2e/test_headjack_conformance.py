"""Every published variant starts under Headjack's rules, on both platforms.

Each image is started exactly as Headjack's Docker runtime starts it (the flags of
its io.headjack.docker.flags label, PID 1 from io.headjack.init, no --user) and
used as Headjack's agents use it: a plain `docker exec`, no -u.
"""

from __future__ import annotations

import pytest

from builder.model.config import load_settings
from tests.conftest import load_variants
from tests.e2e.conftest import Release
from tests.headjack_start import commit_in_workspace, started_like_headjack, wait_for

AGENT_USER = {"base": ("developer", 1000), "systemd": ("root", 0), "dind": ("root", 0)}
# Under QEMU user emulation systemd's own services can't set up namespaces (see
# variants/checks/systemd.py), so the init comes up `degraded`, never `running`.
EMULATED = "linux/arm64"


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
@pytest.mark.parametrize("variant", ["base", "systemd", "dind"])
def test_headjack_starts_every_published_variant(released: Release, variant: str, platform: str) -> None:
    settings = load_settings(None)
    model = load_variants(settings.variants_dir, settings.config.platforms)[variant]
    build = next(b for b in released.build.builds_of(variant) if b.platform == platform)
    image = f"{released.build.repository}@{build.digest}"
    with started_like_headjack(image, platform) as started:
        if model.runtime.init:
            want = ("running",) if platform != EMULATED else ("running", "degraded")
            state = wait_for(started, "systemctl", "is-system-running", accept=want, timeout=600)
            assert state in want, f"systemd says {state}"
        user, uid = AGENT_USER[variant]
        assert started.exec("id", "-un").stdout.strip() == user
        omitted = started.exec("cat", "/usr/local/share/headjack/omitted-tools").stdout.split()
        tools = [t for t in model.tools if t.name not in omitted]
        if platform == EMULATED:  # every tool answers in the smoke tests; here, the agents
            tools = [t for t in tools if t.name in ("claude", "gemini", "codex", "git")]
        for tool in tools:
            proc = started.exec("sh", "-c", tool.check_command, timeout=600)
            assert proc.returncode == 0, f"{tool.name}: `{tool.check_command}` failed: {proc.stdout}{proc.stderr}"
        assert commit_in_workspace(started) == uid
        if variant == "dind" and platform != EMULATED:
            wait_for(started, "docker", "info", timeout=180)
        assert started.running(), "the container did not stay up"
