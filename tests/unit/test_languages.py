"""Language versions as data: validation, inheritance, the rendered install steps
and the checks that prove them. The real installs run in tests/e2e/test_languages.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.model.config import load_settings
from builder.model.errors import FactoryError
from builder.model.rendered import locate_failure
from builder.model.variants import language_checks
from builder.stages.render import LANGUAGE_FILES, render_variant
from tests.conftest import PROJECT_DIR, fork_variants, load_variants

PLATFORMS = ["linux/amd64", "linux/arm64"]


def team(languages: str, parent: str = "base") -> str:
    return f"name: team\nparent: {parent}\ntemplate: variant.Dockerfile.j2\nlanguages:\n{languages}"


def load_team(tmp_path: Path, body: str, overlay: str = "") -> tuple[Path, Path]:
    config = fork_variants(tmp_path, PROJECT_DIR / "variants", overlay)
    (tmp_path / "variants" / "team.yaml").write_text(body)
    return config, tmp_path / "variants"


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        ("  python: ['3.11']\n", r"team\.yaml: languages\.python: .*'3\.11' is not an exact release"),
        ("  node: [latest]\n", r"languages\.node: .*'latest' is not an exact release"),
        ("  rust: ['1.83.0', '1.83.0']\n", r"languages\.rust: .*listed twice"),
        ("  ruby: ['3.3.0']\n", r"languages\.ruby: unknown key"),
        ("  pyhton: ['3.12.8']\n", r"did you mean 'python'"),
    ],
)
def test_bad_languages_name_file_and_key(tmp_path: Path, languages: str, expected: str) -> None:
    _, variants = load_team(tmp_path, team(languages))
    with pytest.raises(FactoryError, match=expected):
        load_variants(variants, PLATFORMS)


def test_a_language_needs_its_version_manager_in_the_parent_chain(tmp_path: Path) -> None:
    (tmp_path / "bare.yaml").write_text("name: bare\nparent: root\ntemplate: variant.Dockerfile.j2\n")
    (tmp_path / "team.yaml").write_text(team("  rust: ['1.83.0']\n", parent="bare"))
    with pytest.raises(FactoryError, match=r"team\.yaml: languages\.rust: needs the version manager rustup, "
                                           r"which no variant in bare -> team installs"):
        load_variants(tmp_path, PLATFORMS)


def test_a_dockerfile_variant_cannot_declare_languages(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text("name: team\nparent: root\ndockerfile: Dockerfile\nlanguages:\n"
                                        "  python: ['3.12.8']\n")
    with pytest.raises(FactoryError, match=r"team\.yaml: .*`languages` are installed by templates"):
        load_variants(tmp_path, PLATFORMS)


def test_a_child_inherits_versions_and_its_own_first_becomes_the_default(tmp_path: Path) -> None:
    _, variants = load_team(tmp_path, team("  python: ['3.11.9', '3.12.8']\n  node: ['22.14.0']\n"))
    (variants / "child.yaml").write_text(
        "name: child\nparent: team\ntemplate: variant.Dockerfile.j2\nlanguages:\n  python: ['3.13.1', '3.12.8']\n"
    )
    loaded = load_variants(variants, PLATFORMS)
    assert loaded["team"].languages == {"python": ("3.11.9", "3.12.8"), "node": ("22.14.0",)}
    assert loaded["child"].languages == {"python": ("3.13.1", "3.12.8", "3.11.9"), "node": ("22.14.0",)}
    assert loaded["base"].languages == {}


def test_checks_prove_each_version_through_its_manager_and_the_default() -> None:
    checks = {c.name: (c.run, c.expect) for c in language_checks({"python": ("3.11.9", "3.12.8"),
                                                                  "rust": ("1.83.0",)})}
    assert checks == {
        "python 3.11.9 through pyenv": ("PYENV_VERSION=3.11.9 python --version", r"^Python 3\.11\.9$"),
        "python 3.12.8 through pyenv": ("PYENV_VERSION=3.12.8 python --version", r"^Python 3\.12\.8$"),
        "python 3.11.9 is the default": ("python --version", r"^Python 3\.11\.9$"),
        "rust 1.83.0 through rustup": ("rustc +1.83.0 --version", r"^rustc 1\.83\.0\b"),
        "rust 1.83.0 is the default": ("rustc --version", r"^rustc 1\.83\.0\b"),
    }


def test_install_steps_use_the_configured_sources_and_mount_the_installer(tmp_path: Path) -> None:
    definitions = tmp_path / "python-builds"
    definitions.mkdir()
    (definitions / "3.11.9").write_text('install_package "Python-3.11.9" "https://example.org/p.tgz" standard\n')
    overlay = (
        "language_sources:\n"
        "  python_mirror: https://mirror.example.org/python\n"
        "  python_definitions: python-builds\n"
        "  node_mirror: https://mirror.example.org/node\n"
        "  rust_dist_server: https://mirror.example.org/rust\n"
    )
    config, _ = load_team(tmp_path, team("  python: ['3.11.9']\n  node: ['22.14.0', '20.19.0']\n"
                                         "  rust: ['1.83.0']\n  go: ['1.23.4']\n"), overlay)
    settings = load_settings(config, project_dir=PROJECT_DIR)
    rendered = render_variant(load_variants(settings.variants_dir, PLATFORMS)["team"], settings)
    text = rendered.dockerfile
    assert text.index("USER developer") < text.index("install-language python")
    assert (
        "RUN --mount=type=secret,id=extra_ca,uid=1000 \\\n"
        f"    --mount=type=bind,source={LANGUAGE_FILES},target=/mnt \\\n"
        "    PYTHON_BUILD_DEFINITIONS=/mnt/python-build PYTHON_BUILD_MIRROR_URL=https://mirror.example.org/python \\\n"
        "    with-extra-ca /mnt/install-language python 3.11.9\n"
    ) in text
    assert ("NODE_MIRROR=https://mirror.example.org/node \\\n"
            "    with-extra-ca /mnt/install-language node 22.14.0 20.19.0\n") in text
    assert "RUSTUP_DIST_SERVER=https://mirror.example.org/rust \\\n" in text
    # no mirror configured for go: goenv's own default source, no assignment
    assert "    with-extra-ca /mnt/install-language go 1.23.4\n" in text
    assert set(rendered.files) == {f"{LANGUAGE_FILES}/install-language", f"{LANGUAGE_FILES}/python-build/3.11.9"}


def test_the_project_variants_declare_no_languages_and_get_no_installer() -> None:
    settings = load_settings(project_dir=PROJECT_DIR)
    for variant in load_variants(settings.variants_dir, PLATFORMS):
        rendered = render_variant(variant, settings)
        assert "install-language" not in rendered.dockerfile
        assert not any(name.startswith(LANGUAGE_FILES) for name in rendered.files)


def test_a_missing_definitions_folder_is_named(tmp_path: Path) -> None:
    config, _ = load_team(tmp_path, team("  python: ['3.11.9']\n"),
                          "language_sources:\n  python_definitions: nowhere\n")
    settings = load_settings(config, project_dir=PROJECT_DIR)
    with pytest.raises(FactoryError, match=r"language_sources\.python_definitions: .*nowhere is not a folder"):
        render_variant(load_variants(settings.variants_dir, PLATFORMS)["team"], settings)


FRAGMENTED = """FROM x
RUN echo before
# fragment: fragments/setup.j2
RUN apt-get install \\
      thing
ONBUILDX nonsense

# end of fragment: fragments/setup.j2
RUN echo after
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("failed to create LLB definition: dockerfile parse error line 6: unknown instruction: ONBUILDX",
         "Dockerfile line 6: ONBUILDX nonsense\n  from the fragment fragments/setup.j2"),
        (" > [3/4] RUN apt-get install       thing:\n------\nERROR: exit code: 100",
         "Dockerfile line 4: RUN apt-get install thing\n  from the fragment fragments/setup.j2"),
        (" > [4/4] RUN echo after:\nERROR", "Dockerfile line 9: RUN echo after"),
        ("Dockerfile:2\n--------------------\n>>> RUN echo before", "Dockerfile line 2: RUN echo before"),
        ("ERROR: failed to push: connection refused", ""),
        ("dockerfile parse error line 99: unknown instruction", ""),
    ],
)
def test_a_build_error_is_traced_to_its_line_and_fragment(output: str, expected: str) -> None:
    assert locate_failure(output, FRAGMENTED) == expected


def test_rendered_fragments_are_marked(tmp_path: Path) -> None:
    fixtures = PROJECT_DIR / "tests" / "fixtures"
    shutil.copy(fixtures / "fixture.yaml", tmp_path / "fixture.yaml")
    shutil.copytree(fixtures / "variants", tmp_path / "variants")
    settings = load_settings(tmp_path / "fixture.yaml", project_dir=PROJECT_DIR)
    text = render_variant(load_variants(settings.variants_dir, PLATFORMS)["tiny"], settings).dockerfile
    fragment = (fixtures / "variants" / "fragments" / "tiny.j2").read_text()
    assert f"# fragment: fragments/tiny.j2\n{fragment}\n# end of fragment: fragments/tiny.j2\n" in text
