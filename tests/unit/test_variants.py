"""Variant files: validation, inheritance and every bad input the issue lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.errors import FactoryError
from tests.conftest import PROJECT_DIR, load_variants

PLATFORMS = ["linux/amd64", "linux/arm64"]
SHA = "a" * 64


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(body)
    return path


def minimal(name: str, parent: str = "root", extra: str = "") -> str:
    return f"name: {name}\nparent: {parent}\ntemplate: variant.Dockerfile.j2\n{extra}"


def test_project_variants_resolve_in_dependency_order() -> None:
    variants = load_variants(PROJECT_DIR / "variants", PLATFORMS)
    assert variants.names == ["base", "systemd", "dind"]
    dind = variants["dind"]
    assert dind.lineage == ("base", "systemd")
    assert dind.platforms == tuple(PLATFORMS)
    # inherits every tool and check of its ancestors, then adds its own
    names = [t.name for t in dind.tools]
    assert names[:3] == ["git", "git-lfs", "ripgrep"] and names[-1] == "docker-compose"
    check_names = [c.name for c in dind.commands]
    assert "developer is uid and gid 1000" in check_names and "systemd is PID 1" in check_names
    assert dind.metadata.stop_signal == "SIGRTMIN+3" and dind.metadata.workdir == "/workspace"


def test_every_tool_states_an_exact_version_and_source() -> None:
    variants = load_variants(PROJECT_DIR / "variants", PLATFORMS)
    for tool in variants["dind"].tools:
        assert tool.version and tool.source in {"apt", "npm", "pypi", "archive"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (minimal("a", extra="colour: red\n"), r"a\.yaml: colour: unknown key"),
        (minimal("a", extra="tempalte: x\n"), r"tempalte: unknown key \(did you mean 'template'\?\)"),
        ("name: a\nparent: root\n", r"a\.yaml: \(top level\): .*exactly one of `template` and `dockerfile`"),
        ("name: a\ntemplate: x\n", r"a\.yaml: parent: required key is missing"),
        (minimal("a", extra="packages: vim\n"), r"a\.yaml: packages: Input should be a valid list"),
        (minimal("a", extra="platforms: [linux/s390x]\n"), r"platforms\[0\]: .*unsupported platform 'linux/s390x'"),
        (minimal("a", extra="tools:\n  - {name: rg, source: apt}\n"), r"tools\[0\]\.version: required key is missing"),
        (
            minimal("a", extra="tools:\n  - {name: rg, source: npm, version: ^1.2}\n"),
            r"tools\[0\]\.version: .*no ranges or wildcards",
        ),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', url: http://h/x, "
                    f"sha256: {SHA[:-1]}}}\n"),
            r"tools\[0\]: .*sha256 must be 64 lowercase hex",
        ),
        (minimal("a", parent="nosuch"), r"a\.yaml: parent: no variant named 'nosuch'"),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', url: http://h/x, "
                    f"sha256: {SHA}, links: {{x: x}}, archives: {{amd64: {{url: http://h/y, sha256: {SHA}}}}}}}\n"),
            r"tools\[0\]: .*give `url`/`sha256` or `archives`",
        ),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', links: {x: x}, "
                    "archives: {amd64: {url: http://h/y, sha256: abc}}}\n"),
            r"tools\[0\]\.archives\.amd64\.sha256: .*64 lowercase hex",
        ),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', links: {x: x}, "
                    f"archives: {{riscv64: {{url: http://h/y, sha256: {SHA}}}}}}}\n"),
            r"tools\[0\]\.archives\.riscv64",
        ),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', links: {x: x}, "
                    f"archives: {{amd64: {{url: http://h/y, sha256: {SHA}}}}}}}\n"),
            r"a\.yaml: tools\[0\] \(x\): archives: none for linux/arm64, which this variant builds",
        ),
        (
            minimal("a", extra="tools:\n  - {name: x, source: archive, version: '1', url: http://h/x, "
                    f"sha256: {SHA}, links: {{x: x}}, exclude: ['a b']}}\n"),
            r"tools\[0\]\.exclude: .*no white space",
        ),
        (
            minimal("a", extra="tools:\n  - {name: jq, source: npm, version: '1', exclude: [docs]}\n"),
            r"tools\[0\]: .*are for source 'archive' only",
        ),
        (
            minimal("a", extra="tools:\n  - {name: jq, source: apt, version: '1'}\nchecks:\n  commands:\n"
                    "    - {name: lists, run: jq --help, requires: [jq]}\n"),
            r"a\.yaml: checks\.commands\[0\] \(lists\): requires: 'jq' is not an optional tool",
        ),
        (
            minimal("a", extra="checks:\n  commands:\n    - {name: x, run: true, expect: '('}\n"),
            r"expect: .*regular expression",
        ),
        (minimal("a", extra="runtime:\n  init: [/sbin/init]\n"),
         r"a\.yaml: runtime: .*init needs flags for docker or podman"),
        (minimal("a", extra="runtime:\n  init: [/sbin/init]\n  flags: {docker: privileged}\n"),
         r"a\.yaml: runtime\.flags: .*docker: 'privileged' is not a key=value pair"),
        (minimal("a", extra="runtime:\n  init: [/bin/sh, -c, echo hi]\n  flags: {podman: systemd=always}\n"),
         r"runtime\.init: .*holds white space"),
        (minimal("a", extra="runtime:\n  flags: {docker: cgroupns=host}\n  unprivileged_flags: cap-add=X\n"),
         r"runtime: .*stand in for privileged=true"),
        (minimal("a", extra="runtime:\n  flags: {dockr: cgroupns=host}\n"), r"runtime\.flags\.dockr"),
    ],
)
def test_bad_variant_files_name_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    write(tmp_path, "a", body)
    with pytest.raises(FactoryError, match=expected):
        load_variants(tmp_path, PLATFORMS)


def test_cycle_of_parents_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a", minimal("a", parent="b"))
    write(tmp_path, "b", minimal("b", parent="a"))
    with pytest.raises(FactoryError, match=r"cycle of parents \(.*a -> b -> a|b -> a -> b"):
        load_variants(tmp_path, PLATFORMS)


def test_duplicate_names_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "one", minimal("same"))
    write(tmp_path, "two", minimal("same"))
    with pytest.raises(FactoryError, match=r"two\.yaml: name: duplicate variant 'same' \(also in .*one\.yaml\)"):
        load_variants(tmp_path, PLATFORMS)


def test_child_cannot_drop_a_parent_platform(tmp_path: Path) -> None:
    write(tmp_path, "a", minimal("a"))
    write(tmp_path, "b", minimal("b", parent="a", extra="platforms: [linux/amd64]\n"))
    with pytest.raises(FactoryError, match=r"b\.yaml: platforms: drops linux/arm64 that parent 'a' builds"):
        load_variants(tmp_path, PLATFORMS)


def test_child_inherits_platforms_and_may_replace_a_tool(tmp_path: Path) -> None:
    write(tmp_path, "a", minimal("a", extra="tools:\n  - {name: jq, source: apt, version: '1.6'}\n"))
    write(tmp_path, "b", minimal("b", parent="a", extra="tools:\n  - {name: jq, source: apt, version: '1.7'}\n"))
    variants = load_variants(tmp_path, PLATFORMS)
    assert variants["b"].platforms == tuple(PLATFORMS)
    assert [(t.name, t.version) for t in variants["b"].tools] == [("jq", "1.7")]


def test_unknown_variant_selection_names_the_known_ones() -> None:
    variants = load_variants(PROJECT_DIR / "variants", PLATFORMS)
    with pytest.raises(FactoryError, match=r"no variant named 'bsae' \(known: base, systemd, dind\)"):
        variants.select(["bsae"])


def test_an_archive_per_architecture_is_chosen_by_the_image_architecture(tmp_path: Path) -> None:
    other = "b" * 64
    write(tmp_path, "a", minimal("a", extra=(
        "tools:\n  - {name: x, source: archive, version: '1', links: {x: bin/x}, archives: "
        f"{{amd64: {{url: http://h/x-amd64, sha256: {SHA}}}, arm64: {{url: http://h/x-arm64, sha256: {other}}}}}}}\n"
        f"  - {{name: y, source: archive, version: '2', url: http://h/y, sha256: {SHA}, links: {{y: y}}, "
        "optional: true}\n"
        "checks:\n  commands:\n    - {name: y works, run: y, requires: [y]}\n")))
    variants = load_variants(tmp_path, PLATFORMS)
    x, y = variants["a"].tools
    assert x.download_for("arm64") is not None and x.download_for("arm64").url == "http://h/x-arm64"
    assert x.download_for("amd64").sha256 == SHA  # type: ignore[union-attr]
    assert y.download_for("arm64").url == y.download_for("amd64").url == "http://h/y"  # type: ignore[union-attr]
    assert variants["a"].commands[0].requires == ["y"]
