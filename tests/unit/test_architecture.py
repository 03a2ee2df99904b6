"""The package's dependency rules (builder/__init__.py) hold: import-linter's contracts
in pyproject.toml, checked on the code as it is."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PROJECT_DIR

LINT_IMPORTS = PROJECT_DIR / ".venv" / "bin" / "lint-imports"


def lint_imports(cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False)


def test_every_layering_contract_is_kept() -> None:
    proc = lint_imports()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout


def test_a_model_module_that_runs_commands_breaks_the_rules(tmp_path: Path) -> None:
    """The check can fail: a copy of the package whose model imports subprocess is refused."""
    import shutil

    shutil.copytree(PROJECT_DIR / "builder", tmp_path / "builder")
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    records = tmp_path / "builder" / "model" / "records.py"
    records.write_text("import subprocess  # noqa\n" + records.read_text())
    proc = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                          check=False, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "builder.model is not allowed to import subprocess" in proc.stdout
