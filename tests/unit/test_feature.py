"""The agents Feature is made from base's data: its pins, settings and Node downloads, never
a hand-kept copy; bad feature config names the key at fault."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from builder.model.config import load_settings
from builder.project import load_project
from builder.queries import agents_feature
from builder.stages.feature import Feature
from tests.conftest import PROJECT_DIR, fork_variants, hjk

BASE = yaml.safe_load((PROJECT_DIR / "variants" / "base.yaml").read_text())
TOOLS = {t["name"]: t for t in BASE["tools"]}


def project_feature(overlay: Path | None = None) -> Feature:
    return agents_feature(load_project(load_settings(project_dir=PROJECT_DIR, overlay=overlay)))


def test_the_options_default_to_base_pins_and_the_settings_come_along() -> None:
    made = project_feature()
    metadata = json.loads(made.files["devcontainer-feature.json"])
    assert metadata["id"] == "agents" and metadata["version"] == made.version
    for agent in ("claude", "gemini", "codex"):
        assert metadata["options"][agent] == {"type": "boolean", "default": True,
                                              "description": f"Install {TOOLS[agent]['package']}"}
        version = metadata["options"][f"{agent}Version"]
        assert version["default"] == TOOLS[agent]["version"]
        assert version["proposals"] == [TOOLS[agent]["version"], "latest"] and "unpinned" in version["description"]
        default = f'"${{{agent.upper()}VERSION:-{TOOLS[agent]["version"]}}}"'
        assert f"install_agent {agent} {TOOLS[agent]['package']} {default}" in made.files["install.sh"]
        for path, text in TOOLS[agent].get("settings", {}).get("files", {}).items():
            assert f"setting {path} '{text}'" in made.files["install.sh"]
    assert metadata["containerEnv"] == TOOLS["claude"]["settings"]["env"] == {"DISABLE_AUTOUPDATER": "1"}
    assert metadata["options"]["installNode"]["enum"] == ["auto", "always", "never"]
    assert metadata["installsAfter"] == ["ghcr.io/devcontainers/features/node"]
    # Node and npm from the same checked downloads base installs
    for arch, download in TOOLS["node"]["archives"].items():
        assert f"{arch}) set -- {download['url']} {download['sha256']} ;;" in made.files["install.sh"]
    assert f"set -- {TOOLS['npm']['url']} {TOOLS['npm']['sha256']}" in made.files["install.sh"]
    assert made.files["install-archive"] == (PROJECT_DIR / "dockerfiles/files/common/install-archive").read_text()


def test_the_installer_passes_shellcheck(tmp_path: Path) -> None:
    home = project_feature().write(tmp_path)
    assert (home / "install.sh").stat().st_mode & 0o111
    proc = subprocess.run([shutil.which("shellcheck") or "shellcheck", "-s", "sh", str(home / "install.sh")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_a_pin_moved_in_the_variant_data_moves_the_feature(tmp_path: Path) -> None:
    variants = tmp_path / "variants"
    shutil.copytree(PROJECT_DIR / "variants", variants)
    base = variants / "base.yaml"
    base.write_text(base.read_text().replace(f"version: {TOOLS['codex']['version']}", "version: 9.9.9"))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(f"variants_dir: {variants}\n")
    metadata = json.loads(project_feature(overlay).files["devcontainer-feature.json"])
    assert metadata["options"]["codexVersion"]["default"] == "9.9.9"


@pytest.mark.parametrize(("feature", "expected"), [
    ({"tools": ["claude", "nosuch"]}, "feature.tools: variant 'base' has no tool 'nosuch'"),
    ({"tools": ["git"]}, "feature.tools: tool 'git' is not an npm package"),
    ({"node": ["npm"]}, "feature.node: names no tool 'node'"),
    ({"node": ["node", "claude"]}, "feature.node: tool 'claude' is not an archive"),
    ({"variant": "nosuch"}, "feature.variant: no variant named 'nosuch'"),
    ({"version": "1.0"}, "feature.version"),
])
def test_bad_feature_config_names_the_key(tmp_path: Path, feature: dict[str, object], expected: str) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"feature": feature}))
    proc = hjk("--config", str(overlay), "feature", "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_dockerfile_fragment_runs_the_same_installer(tmp_path: Path) -> None:
    proc = hjk("feature", "--out", str(tmp_path / "agents-feature"), "--dockerfile")
    assert f"source={tmp_path}/agents-feature/agents,target=/tmp/hjk-agents-feature" in proc.stdout
    assert "sh /tmp/hjk-agents-feature/install.sh" in proc.stdout
    assert 'ENV DISABLE_AUTOUPDATER="1"' in proc.stdout
    assert (tmp_path / "agents-feature" / "agents" / "install.sh").is_file()


def serve_npm(packuments: dict[str, dict[str, object]]) -> tuple[str, Callable[[], None]]:
    """A local npm registry answering packuments by package name."""
    import http.server
    import threading
    import urllib.parse

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = packuments.get(urllib.parse.unquote(self.path.lstrip("/")))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server.shutdown


def test_a_bump_of_an_agent_raises_the_feature_minor_and_keeps_the_file(tmp_path: Path) -> None:
    pin = TOOLS["gemini"]["version"]
    major, minor, _ = (int(p) for p in pin.split("."))
    newer = f"{major}.{minor + 1}.0"
    registry, stop = serve_npm({TOOLS["gemini"]["package"]: {
        "versions": {pin: {}, newer: {}}, "dist-tags": {"latest": newer},
        "time": {pin: "2026-01-01T00:00:00Z", newer: "2026-11-01T00:00:00Z"},
    }})
    try:
        overlay = fork_variants(tmp_path, PROJECT_DIR / "variants",
                                "# the team's overlay\nfeature:\n  version: 1.4.2   # the Feature's own\n",
                                with_lock=True)
        hjk("--config", str(overlay), "bump", "--only", "gemini", env={"NPM_CONFIG_REGISTRY": registry})
    finally:
        stop()
    text = overlay.read_text()
    assert "# the team's overlay" in text and "version: 1.5.0   # the Feature's own" in text
    assert f"version: {newer}" in (tmp_path / "variants" / "base.yaml").read_text()
    made = project_feature(overlay)
    assert made.version == "1.5.0"
    assert json.loads(made.files["devcontainer-feature.json"])["options"]["geminiVersion"]["default"] == newer
