"""The Jinja environment the render stage and the agents Feature share: StrictUndefined,
no autoescape (Dockerfiles and shell, not HTML), and the quoting filters data goes through."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

import jinja2


def double_quoted(value: object) -> str:
    """A Dockerfile double-quoted string (ENV). `$` stays live so build args expand; a line
    break is written escaped, so it can never start an instruction."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{text}"'


@functools.cache
def environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles, not HTML
    )
    env.filters["dq"] = double_quoted
    env.filters["sq"] = shlex.quote
    return env
