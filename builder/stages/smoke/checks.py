"""The checks a variant declares (tools, commands, files, env, metadata) and the Python
check modules of variants/checks/, each run in the one started container."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from builder.model.records import CheckOutcome
from builder.model.variants import FileCheck, Variant, language_checks
from builder.stages.smoke.session import OMITTED_DETAIL, CheckFn, Session, describe, timed


def _runtime_modules(variant: Variant, checks_dir: Path) -> Iterator[tuple[str, ModuleType]]:
    """Python check modules of the variant's ancestors, then its own (variants/checks/NAME.py)."""
    for name in (*variant.lineage, variant.name):
        path = checks_dir / f"{name}.py"
        if not path.is_file():
            continue
        module = ModuleType(f"headjack_checks_{name}")
        module.__file__ = str(path)
        # optimize=0: the checks fail through `assert`, which PYTHONOPTIMIZE must not remove
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec", optimize=0), module.__dict__)
        yield name, module


def declared_checks(variant: Variant, session: Session, omitted: set[str]) -> list[CheckOutcome]:
    """The variant file's checks (inherited and its own), run in one started container."""
    return [*_tool_checks(variant, session, omitted), *_command_checks(variant, session, omitted),
            *_file_checks(variant, session), *_env_checks(variant, session), *_metadata_checks(variant, session)]


def _tool_checks(variant: Variant, session: Session, omitted: set[str]) -> list[CheckOutcome]:
    results: list[CheckOutcome] = []
    for tool in variant.tools:
        if tool.name in omitted and tool.optional:
            results.append(CheckOutcome(name=f"tool {tool.name}", kind="tool", status="omitted",
                                        detail=OMITTED_DETAIL))
            continue

        def tool_check(argv: tuple[str, ...] = tuple(shlex.split(tool.check_command))) -> tuple[bool, str]:
            code, out = session.exec(list(argv), timeout=300)
            return code == 0, describe(code, out, 300) if code else out.strip().splitlines()[0][:200]

        results.append(timed(f"tool {tool.name}: {tool.check_command}", "tool", tool_check))
    return results


def _command_checks(variant: Variant, session: Session, omitted: set[str]) -> list[CheckOutcome]:
    results: list[CheckOutcome] = []
    for check in (*variant.commands, *language_checks(variant.languages)):
        if left_out := [name for name in check.requires if name in omitted]:
            results.append(CheckOutcome(name=check.name, kind="command", status="omitted",
                                        detail=f"needs {', '.join(left_out)}, " + OMITTED_DETAIL))
            continue

        def command_check(c: Any = check) -> tuple[bool, str]:
            code, out = session.shell(c.run, user=c.user, timeout=c.timeout)
            if code != c.exit_code:
                return False, f"expected exit {c.exit_code}, got " + describe(code, out, c.timeout)
            if c.expect and not re.search(c.expect, out.strip(), re.MULTILINE):
                return False, f"output does not match /{c.expect}/: {out.strip()[-300:]}"
            return True, out.strip()[-200:]

        results.append(timed(check.name, "command", command_check))
    return results


def _file_checks(variant: Variant, session: Session) -> list[CheckOutcome]:
    def file_check(f: FileCheck) -> tuple[bool, str]:
        code, out = session.exec(["stat", "-c", "%F|%U:%G|%a", f.path], user="root")
        if code != 0:
            return False, f"{f.path} does not exist"
        kind, owner, mode = out.strip().split("|")
        problems = []
        if f.kind == "file" and kind not in ("regular file", "regular empty file"):
            problems.append(f"is a {kind}, not a file")
        if f.kind == "directory" and kind != "directory":
            problems.append(f"is a {kind}, not a directory")
        if f.owner and owner != f.owner:
            problems.append(f"owner {owner}, expected {f.owner}")
        if f.mode and mode.zfill(4) != f.mode.zfill(4):
            problems.append(f"mode {mode}, expected {f.mode}")
        return not problems, "; ".join(problems) or f"{kind} {owner} {mode}"

    return [timed(f"file {spec.path}", "file", functools.partial(file_check, spec)) for spec in variant.files]


def _env_checks(variant: Variant, session: Session) -> list[CheckOutcome]:
    def env_check(key: str, want: str) -> tuple[bool, str]:
        code, out = session.exec(["printenv", key])
        got = out.strip() if code == 0 else "(unset)"
        return got == want, f"{key}={got}" + ("" if got == want else f", expected {want}")

    return [timed(f"env {key}", "env", functools.partial(env_check, key, expected))
            for key, expected in variant.env_checks.items()]


def _metadata_checks(variant: Variant, session: Session) -> list[CheckOutcome]:
    meta, facts = variant.metadata, session.facts
    expectations = {
        "user": (meta.user, facts.user), "workdir": (meta.workdir, facts.workdir),
        "stop signal": (meta.stop_signal, facts.stop_signal),
        "platform": (session.target.platform.split("/")[1], facts.architecture),
        **{f"label {k}": (v, facts.labels.get(k, "(unset)")) for k, v in meta.labels.items()},
    }

    def metadata_check(want: str, got: str) -> tuple[bool, str]:
        return got == want, got + ("" if got == want else f", expected {want}")

    return [timed(f"metadata {what}", "metadata", functools.partial(metadata_check, want, got))
            for what, (want, got) in expectations.items() if want is not None]


def runtime_checks(variant: Variant, session: Session, checks_dir: Path) -> list[CheckOutcome]:
    results = []
    for owner, module in _runtime_modules(variant, checks_dir):
        for attr in sorted(dir(module)):
            fn = getattr(module, attr)
            if attr.startswith("check_") and callable(fn):
                def run(fn: CheckFn = fn) -> tuple[bool, str]:
                    return True, fn(session) or "ok"

                results.append(timed(f"{owner}: {attr[6:].replace('_', ' ')}", "runtime", run))
    return results
