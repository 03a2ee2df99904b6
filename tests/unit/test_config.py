from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.config import load_settings
from builder.model.errors import FactoryError
from tests.conftest import PROJECT_DIR


def test_project_defaults_load() -> None:
    settings = load_settings(project_dir=PROJECT_DIR)
    assert settings.config.platforms == ["linux/amd64", "linux/arm64"]
    assert settings.config.registry is None
    assert settings.variants_dir == PROJECT_DIR / "variants"


def test_overlay_overrides_only_its_keys(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("namespace: acme\nroot:\n  bootstrap:\n    suite: bookworm\n")
    settings = load_settings(overlay, project_dir=PROJECT_DIR)
    assert settings.config.namespace == "acme"
    assert settings.config.root.bootstrap.suite == "bookworm"
    # untouched keys keep the project's values
    assert settings.config.root.bootstrap.packages == ["ca-certificates"]


def test_overlay_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("namespce: acme\n")
    with pytest.raises(FactoryError) as err:
        load_settings(overlay, project_dir=PROJECT_DIR)
    assert str(err.value) == f"{overlay}: namespce: unknown key (did you mean 'namespace'?)"


def test_nested_unknown_key_names_the_path(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("root:\n  bootstrap:\n    mirorr: http://x\n")
    with pytest.raises(FactoryError, match=r"root\.bootstrap\.mirorr: unknown key \(did you mean 'mirror'\?\)"):
        load_settings(overlay, project_dir=PROJECT_DIR)


def test_unsupported_platform_is_rejected(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("platforms: [linux/amd64, windows/amd64]\n")
    with pytest.raises(FactoryError, match=r"platforms\[1\]: .*unsupported platform 'windows/amd64'"):
        load_settings(overlay, project_dir=PROJECT_DIR)


def test_reference_root_needs_a_reference(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("root:\n  source: reference\n")
    with pytest.raises(FactoryError, match=r"root\.reference"):
        load_settings(overlay, project_dir=PROJECT_DIR)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    overlay = tmp_path / "org.yaml"
    overlay.write_text("namespace: acme\nplatforms: [linux/amd64\n")
    with pytest.raises(FactoryError, match=rf"{overlay}:\d+: not valid YAML"):
        load_settings(overlay, project_dir=PROJECT_DIR)
