"""Check that CI workflows only call commands and flags that exist.

Every `run:` step's `hjk-images ...` invocation is parsed by the CLI's own
Click parser, and every `make TARGET` must be a Makefile target, so renaming a
flag or target fails the test suite, naming the file and line.
"""

from __future__ import annotations

import re
import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

SHELL_BREAKS = {"|", "||", "&&", ";", ">", ">>", "2>&1", "<"}


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    command: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: `{self.command}`: {self.message}"


def makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", makefile.read_text(), re.MULTILINE))


def _run_steps(path: Path) -> list[tuple[int, str]]:
    """(line number of the run: key, script) for every step of every job."""
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    lines = text.splitlines()
    found = []
    for job in (data.get("jobs") or {}).values():
        for step in job.get("steps") or []:
            script = step.get("run")
            if not isinstance(script, str):
                continue
            first = script.splitlines()[0].strip() if script.strip() else ""
            number = next((i + 1 for i, line in enumerate(lines) if "run:" in line and first in line), 0)
            if number == 0:
                number = next((i + 1 for i, line in enumerate(lines) if first and first in line), 0)
            found.append((number, script))
    return found


def _commands(script: str) -> list[tuple[int, list[str]]]:
    """Shell lines (continuations joined) as token lists, with their offset in the script."""
    joined: list[tuple[int, str]] = []
    buffer, start = "", 0
    for offset, raw in enumerate(script.splitlines()):
        if not buffer:
            start = offset
        buffer += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            joined.append((start, buffer))
            buffer = ""
    out = []
    for offset, line in joined:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        out.append((offset, tokens))
    return out


def _unparsed(ctx: click.Context) -> list[str]:
    """What a group's context left for its subcommand (Click 8.1 to 9)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        protected = list(getattr(ctx, "protected_args", []))
    return protected + list(ctx.args)


def check_hjk(cli: click.Group, args: list[str]) -> str | None:
    """None if the CLI's parser accepts ARGS, else its complaint."""
    try:
        command = cli.make_context("hjk-images", list(args), resilient_parsing=False)
        rest = _unparsed(command)
        group: click.Command = cli
        while isinstance(group, click.Group) and rest:
            name, sub, rest = group.resolve_command(command, rest)
            if sub is None:
                return f"no such command {name!r}"
            command = sub.make_context(name or "", rest, parent=command)
            group = sub
            rest = _unparsed(command)
        if isinstance(group, click.Group):
            return "no command given"
    except click.BadParameter:
        return None  # a value (a file that exists only in CI): the command and flag are fine
    except click.UsageError as exc:
        return exc.format_message()
    except click.exceptions.Exit:
        return None
    return None


def check_workflow(path: Path, cli: click.Group, targets: set[str]) -> list[Problem]:
    problems = []
    for line, script in _run_steps(path):
        for offset, tokens in _commands(script):
            segments: list[list[str]] = [[]]
            for token in tokens:
                if token in SHELL_BREAKS:
                    segments.append([])
                else:
                    segments[-1].append(token)
            for words in segments:
                where = line + offset + (1 if "\n" in script else 0) if offset else line
                for i, word in enumerate(words):
                    if word.endswith("hjk-images"):
                        complaint = check_hjk(cli, words[i + 1:])
                        if complaint:
                            problems.append(Problem(path, where, " ".join(words[i:]), complaint))
                        break
                    if word == "make":
                        for target in (w for w in words[i + 1:] if not w.startswith("-") and "=" not in w):
                            if target not in targets:
                                problems.append(Problem(path, where, " ".join(words[i:]),
                                                        f"no Makefile target {target!r}"))
                        break
    return problems
