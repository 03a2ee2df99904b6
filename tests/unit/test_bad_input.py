"""Every input a user gives (variant files, overlays, the lock, the allow-list, CLI options,
environment variables) with a malformed value, through the real CLI: a one-line error that
names what is at fault, a non-zero exit, no traceback, and nothing written.

Each case edits a fresh fork of the fixture variants (with their lock) and runs one command
that reads the input before any Docker work."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONFIG, PROJECT_DIR, hjk

Edit = Callable[[Path], None]


def append(relative: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / relative
        path.write_text(path.read_text() + text)
    return edit


def replace(relative: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / relative
        assert old in path.read_text(), f"{relative} lacks {old!r}"
        path.write_text(path.read_text().replace(old, new))
    return edit


def write(relative: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return edit


def symlink(relative: str, target: str) -> Edit:
    def edit(root: Path) -> None:
        (root / relative).symlink_to(target)
    return edit


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    expect: str
    """Must appear in the one-line error; {root} stands for the fork's folder."""
    edits: list[Edit] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


TINY = "variants/tiny.yaml"
LOCK = "images.lock.yaml"
OVERLAY = "overlay.yaml"
RENDER = ["render", "--out", "{root}/out"]
CHECK = ["lock", "--check", "--offline"]

CASES = [
    # --- variant files ------------------------------------------------------------------
    Case("variant-not-yaml", RENDER, "{root}/variants/tiny.yaml:24: not valid YAML", [append(TINY, "env: [\n")]),
    Case("variant-unknown-key", RENDER, "tiny.yaml: descripton: unknown key (did you mean 'description'?)",
         [append(TINY, "descripton: x\n")]),
    Case("variant-unknown-parent", RENDER, "tiny.yaml", [replace(TINY, "parent: root", "parent: nowhere")]),
    Case("variant-parent-cycle", RENDER, "cycle", [replace(TINY, "parent: root", "parent: leaf")]),
    Case("variant-env-newline", RENDER, "tiny.yaml: env.TINY: text 'yes\\nRUN id': control character",
         [replace(TINY, 'env:\n  TINY: "yes"\n#', 'env:\n  TINY: "yes\\nRUN id"\n#')]),
    Case("variant-tool-version-shell", RENDER, "tools[0].version: version '1.0;id': character ';'",
         [append(TINY, "tools:\n  - {name: jq, source: apt, version: '1.0;id'}\n")]),
    Case("variant-package-space", RENDER, "packages[0]: Debian package 'curl wget': character ' '",
         [append(TINY, "packages: ['curl wget']\n")]),
    Case("variant-fragment-dotdot", RENDER, "tiny.yaml: fragments.root[0]: path '../x.j2'",
         [replace(TINY, "root: [fragments/tiny.j2]", "root: [../x.j2]")]),
    Case("variant-fragment-missing", RENDER, "tiny.yaml: fragments: fragments/none.j2 not found",
         [replace(TINY, "root: [fragments/tiny.j2]", "root: [fragments/none.j2]")]),
    Case("variant-fragment-symlink-out", RENDER, "fragments: fragments/out.j2 leads outside the variant's folder",
         [symlink("variants/fragments/out.j2", "/etc/hostname"),
          replace(TINY, "root: [fragments/tiny.j2]", "root: [fragments/out.j2]")]),
    Case("variant-context-files-absolute", RENDER, "tiny.yaml: context_files: path '/etc'",
         [append(TINY, "context_files: /etc\n")]),
    Case("variant-context-files-symlink-out", RENDER, "context_files: host leads outside the variant's folder",
         [symlink("variants/host", "/etc"), append(TINY, "context_files: host\n")]),
    Case("variant-bad-platform", RENDER, "tiny.yaml: platforms[0]: unsupported platform 'linux/386'",
         [append(TINY, "platforms: [linux/386]\n")]),
    Case("variant-bad-url", RENDER, "tools[0].url: URL 'file:///etc/passwd' is not well formed",
         [append(TINY, "tools:\n  - {name: t, source: archive, version: '1', url: 'file:///etc/passwd', "
                       "sha256: " + "a" * 64 + ", links: {t: t}}\n")]),
    Case("variant-bad-user", RENDER, "tiny.yaml: user: user 'Dev User': character 'D'",
         [append(TINY, "user: Dev User\n")]),
    Case("variant-init-without-override", RENDER, "overrideCommand",
         [append(TINY, "runtime: {init: [/sbin/init], flags: {docker: tmpfs=/run}}\n")]),
    # --- overlays (factory settings) -------------------------------------------------------
    Case("overlay-not-yaml", RENDER, "{root}/overlay.yaml:6: not valid YAML", [append(OVERLAY, "tags: {\n")]),
    Case("overlay-unknown-key", RENDER, "overlay.yaml: namspace: unknown key (did you mean 'namespace'?)",
         [append(OVERLAY, "namspace: x\n")]),
    Case("overlay-tag-unknown-placeholder", RENDER, "tags.moving[0]: tag template '{{nope}}' uses {{nope}}",
         [append(OVERLAY, "tags: {moving: ['{nope}']}\n")]),
    Case("overlay-tag-not-oci", RENDER, "tags.sha: tag template '{{variant}}/{{sha}}' gives 'base/0123abc', not an OCI",
         [append(OVERLAY, "tags: {sha: '{variant}/{sha}'}\n")]),
    Case("overlay-platform", RENDER, "platforms[0]: unsupported platform 'linux/386'",
         [append(OVERLAY, "platforms: [linux/386]\n")]),
    Case("overlay-port", RENDER, "embedded_registry.port", [append(OVERLAY, "embedded_registry: {port: 70000}\n")]),
    Case("overlay-budget-size", RENDER, "budgets.tiny.compressed",
         [append(OVERLAY, "budgets: {tiny: {compressed: lots}}\n")]),
    Case("overlay-min-age", RENDER, "bump.min_age: 'two days' is not a duration",
         [append(OVERLAY, "bump: {min_age: two days}\n")]),
    Case("overlay-root-reference-missing", RENDER, "root", [append(OVERLAY, "root: {source: reference}\n")]),
    Case("overlay-ca-bundle-missing", RENDER, "overlay.yaml: ca_bundle: {root}/no-such.pem is not a file",
         [append(OVERLAY, "ca_bundle: no-such.pem\n")]),
    # --- the lock -------------------------------------------------------------------------
    Case("lock-not-yaml", CHECK, "not valid YAML (expected the node content", [append(LOCK, "root: [\n")]),
    Case("lock-wrong-shape", CHECK, "images.lock.yaml: expected a mapping at the top level, got list",
         [write(LOCK, "- 1\n- 2\n")]),
    Case("lock-wrong-schema", CHECK, "images.lock.yaml: not a lockfile of schema 1", [write(LOCK, "schema: 2\n")]),
    Case("lock-tool-pin-shape", CHECK, "images.lock.yaml: tools.tiny: Input should be a valid dictionary",
         [append(LOCK, "  tiny: [jq]\n")]),
    Case("lock-root-images-not-a-map", CHECK, "images.lock.yaml: root.images: Input should be a valid dictionary",
         [replace(LOCK, "  images:\n", "  images: []\n  was:\n")]),
    Case("lock-stale-tool", CHECK, "images.lock.yaml is stale: run `hjk-images lock --update`",
         [append(TINY, "tools:\n  - {name: jq, source: apt, version: 1.7.1}\n")]),
    Case("lock-missing", CHECK, "images.lock.yaml does not exist: run `hjk-images lock`",
         [lambda root: (root / LOCK).unlink()]),
    # --- the vulnerability allow-list --------------------------------------------------------
    Case("allowlist-expired", ["scan-policy"], "expired allow-list entries",
         [append(OVERLAY, "vulnerability_allowlist: allow.yaml\n"),
          write("allow.yaml",
                "entries:\n  - {id: CVE-2020-1, reason: accepted until a fix ships, expires: 2020-01-01}\n")]),
    Case("allowlist-no-reason", ["scan-policy"], "allow.yaml",
         [append(OVERLAY, "vulnerability_allowlist: allow.yaml\n"),
          write("allow.yaml", "entries:\n  - {id: CVE-2020-1, expires: 2099-01-01}\n")]),
    # --- CLI options ------------------------------------------------------------------------
    Case("option-platform", ["plan", "--platform", "linux/386"], "'linux/386' is not one of"),
    Case("option-unknown-variant", ["render", "--variant", "nope", "--out", "{root}/out"], "nope"),
    Case("option-jobs-zero", ["release", "--jobs", "0", "--dry-run"], "--jobs"),
    Case("option-dockerfile-bad-name", ["build", "--dockerfile", "{root}/Dockerfile", "--name", "Bad;id", "--load"],
         "Bad;id", [write("Dockerfile", "FROM localhost:5000/fixture/images:tiny\n")]),
    Case("option-record-missing", ["test", "--record", "{root}/none.json"], "none.json"),
    Case("option-record-not-json", ["publish", "--record", "{root}/bad.json", "--dry-run"], "bad.json",
         [write("bad.json", "{not json")]),
    Case("option-run-args-unknown-variant", ["run-args", "nope"], "nope"),
    Case("option-new-variant-bad-name", ["new-variant", "Bad Name", "--parent", "tiny"], "Bad Name"),
    Case("option-offline-without-check", ["lock", "--offline"], "--offline goes with --check"),
    # --- environment variables ----------------------------------------------------------------
    Case("env-state-dir-is-a-file", ["registry", "status"], "HJK_STATE_DIR={root}/afile can't be used",
         [write("afile", "x")], {"HJK_STATE_DIR": "{root}/afile"}),
    Case("env-registry-timeout", ["render", "--out", "{root}/out"], "HJK_REGISTRY_TIMEOUT='abc'",
         env={"HJK_REGISTRY_TIMEOUT": "abc"}),
    Case("env-config-missing", ["render"], "{root}/none.yaml", env={"HJK_CONFIG": "{root}/none.yaml"}),
    Case("env-namespace", ["plan", "--offline"], "--namespace (or $HJK_NAMESPACE): namespace: repository path 'a b'",
         env={"HJK_NAMESPACE": "a b"}),
    Case("overlay-registry-host", RENDER, "overlay.yaml: registry: registry host 'ghcr.io/x y'",
         [append(OVERLAY, "registry: ghcr.io/x y\n")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_naming_the_fault(case: Case, tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_CONFIG.parent / "variants", tmp_path / "variants", symlinks=True)
    shutil.copy(FIXTURE_CONFIG.parent / LOCK, tmp_path / LOCK)
    (tmp_path / OVERLAY).write_text(FIXTURE_CONFIG.read_text())
    for edit in case.edits:
        edit(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    fill = {"root": str(tmp_path)}
    env = {"HJK_CONFIG": str(tmp_path / OVERLAY), **{k: v.format(**fill) for k, v in case.env.items()}}
    proc = hjk(*[a.format(**fill) for a in case.argv], env=env, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(errors) == 1, proc.stderr
    assert case.expect.format(**fill) in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "failed unexpectedly" not in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "nothing is written"


def test_an_unexpected_exception_is_one_line_with_the_trace_kept() -> None:
    """The last-resort handler: a bug (here a planted one) becomes one line naming the command
    and the file holding the full trace, and exit 70."""
    plant = ("import sys\nfrom builder import cli, project\n"
             "def bug(*_a, **_k):\n    raise ZeroDivisionError('planted')\n"
             "project.variants_of = bug\nsys.argv = ['hjk-images', 'render', '--out', 'unused']\ncli.entry()\n")
    proc = subprocess.run([sys.executable, "-c", plant], cwd=PROJECT_DIR, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 70, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: hjk-images render failed unexpectedly (ZeroDivisionError: planted); "
                           "the full trace is in "), line
    trace = Path(line.rsplit(" ", 1)[1])
    try:
        assert "Traceback" in trace.read_text() and "planted" in trace.read_text()
    finally:
        trace.unlink()


def test_an_upstream_registry_answering_html_is_one_line_per_tool(tmp_path: Path) -> None:
    """`bump` against an npm registry (a proxy's error page) that answers HTML, not JSON:
    each tool's line says so, the exit is 1, nothing is written."""
    from tests.conftest import fork_variants, free_port
    from tests.fake_upstream import serve_folder

    served = tmp_path / "served"
    for package in ("@anthropic-ai/claude-code", "@google/gemini-cli", "@openai/codex"):
        (served / package).parent.mkdir(parents=True, exist_ok=True)
        (served / package).write_text("<html><body>Proxy error</body></html>\n")
    overlay = fork_variants(tmp_path / "fork", PROJECT_DIR / "variants", "", with_lock=True)
    before = {p: p.read_text() for p in (tmp_path / "fork").rglob("*.yaml")}
    with serve_folder(served, free_port()) as url:
        proc = hjk("--config", str(overlay), "bump", "--group", "agents", env={"NPM_CONFIG_REGISTRY": url},
                   check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for tool in ("claude", "gemini", "codex"):
        assert f"base/{tool}: the npm registry answered something that isn't JSON" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    assert {p: p.read_text() for p in (tmp_path / "fork").rglob("*.yaml")} == before
