"""`new-variant`: a commented starting variant file and its runtime-check stub."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from builder.model.errors import FactoryError
from builder.model.tools import NAME_PATTERN
from builder.model.variants import VariantSet

VARIANT_TEMPLATE = """\
# {name}: what this image adds on top of {parent}. Every key is checked by
# `hjk-images plan`; `hjk-images new-variant --help` made this file.
name: {name}
description: {parent} plus the tools this team needs
parent: {parent}
template: variant.Dockerfile.j2

# Debian packages, installed as root (their versions are recorded, not pinned).
packages: []
#  - libpq-dev

# Tools with exact versions. Sources: npm, pypi (a virtualenv of its own),
# apt (the upstream version the package must carry) or archive (url + sha256).
tools: []
#  - {{name: pnpm, source: npm, version: 9.15.0}}
#  - {{name: poetry, source: pypi, version: 2.1.3}}

# Language versions, installed through the image's version managers (pyenv,
# nodenv, goenv, rustup); the first of each is the default. Exact releases only.
# languages:
#   python: [3.11.9]
#   node: [22.14.0]

# Environment of the image (and so of every agent session in it).
env: {{}}
#  TEAM: acme

# Extra Dockerfile steps, as Jinja partials beside this file:
# fragments:
#   root: [{name}/root.j2]   # as root, before the switch to the image's user
#   user: [{name}/user.j2]   # as the image's user

# Smoke checks, run with every check of {parent} and its ancestors; Python
# checks go in checks/{name}.py.
checks:
  commands:
    - {{name: "{name}: shell answers", run: "echo ready", expect: "^ready$"}}
"""

CHECKS_TEMPLATE = '''\
"""Runtime checks for {name}: each `check_*` function gets the running container."""

from __future__ import annotations

from builder.stages.smoke import Session


def check_workspace_is_writable(session: Session) -> str:
    code, out = session.shell("touch /workspace/.{name}-probe && rm /workspace/.{name}-probe")
    assert code == 0, f"the workspace is not writable: {{out}}"
    return "workspace writable"
'''


def new_variant(folder: Path, name: str, parent: str, existing: VariantSet,
                validate: Callable[[], object] = lambda: None) -> list[Path]:
    """Write NAME.yaml and checks/NAME.py; VALIDATE (which loads them) must pass, else both go."""
    if not re.match(NAME_PATTERN, name):
        raise FactoryError(f"variant name '{name}' must match {NAME_PATTERN}")
    if name in existing:
        raise FactoryError(f"a variant named '{name}' already exists")
    if parent not in existing:
        raise FactoryError(f"no variant named '{parent}' to build on (known: {', '.join(existing.names)})")
    variant_file = folder / f"{name}.yaml"
    checks_file = folder / "checks" / f"{name}.py"
    for path in (variant_file, checks_file):
        if path.exists():
            raise FactoryError(f"{path} already exists")
    checks_file.parent.mkdir(parents=True, exist_ok=True)
    variant_file.write_text(VARIANT_TEMPLATE.format(name=name, parent=parent))
    checks_file.write_text(CHECKS_TEMPLATE.format(name=name))
    try:
        validate()  # the scaffold must itself be valid
    except FactoryError:
        variant_file.unlink()
        checks_file.unlink()
        raise
    return [variant_file, checks_file]
