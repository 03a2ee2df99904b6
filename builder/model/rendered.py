"""A rendered build context (a Dockerfile and the files beside it), and where in it
a build failed: the record render hands to plan, build and lint."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")
    ))
    pairs = []
    for line in joined.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word:
            pairs.append((word.upper(), rest.strip()))
    return pairs


def instruction_words(dockerfile: str) -> tuple[str, ...]:
    """The instruction list: RUN, ENV, USER... in order."""
    return tuple(word for word, _ in instructions(dockerfile))


@dataclass(frozen=True)
class RenderedVariant:
    name: str
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    """Build-context files beside the Dockerfile, by relative path."""
    declared: tuple[str, ...] | None = None
    """The instruction list its template declares: rendered with no data value able to break
    a line. None for a team's own Dockerfile (no template)."""

    def undeclared_instructions(self) -> str | None:
        """How the Dockerfile's instructions differ from the declared ones, or None."""
        if self.declared is None:
            return None
        found = instruction_words(self.dockerfile)
        if found == self.declared:
            return None
        at = next((i for i, (a, b) in enumerate(zip(found, self.declared, strict=False)) if a != b),
                  min(len(found), len(self.declared)))
        return (f"instruction {at + 1} is {found[at] if at < len(found) else '(none)'}, the template declares "
                f"{self.declared[at] if at < len(self.declared) else '(none)'} ({len(found)} instructions, "
                f"{len(self.declared)} declared)")

    def content_hash(self) -> str:
        """Digest of everything in the build context (Dockerfile and files)."""
        digest = hashlib.sha256(self.dockerfile.encode())
        for rel in sorted(self.files):
            digest.update(rel.encode() + b"\0" + hashlib.sha256(self.files[rel]).digest())
        return digest.hexdigest()

    def write(self, folder: Path) -> Path:
        """Write the context to FOLDER (replacing what was there); return the Dockerfile path."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for rel, data in self.files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if data.startswith(b"#!") else 0o644)
            os.utime(target, (content_time(data),) * 2)
        # folders too: a COPY of a tree gives the folders it lands in the context's times
        for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            os.utime(path, (CONTENT_TIME_START,) * 2)
        os.utime(folder, (CONTENT_TIME_START,) * 2)
        return folder / "Dockerfile"


def content_time(data: bytes) -> int:
    """A file time that follows from its content alone. COPY keeps a file's time, so a
    time of this moment would make each build's layer new; and the build context's sync
    resends only files whose size or time changed, so one fixed time would leave an
    edit of the same size behind (the engine would build with the old bytes)."""
    return CONTENT_TIME_START + int.from_bytes(hashlib.sha256(data).digest()[:4], "big") % 2**30


CONTENT_TIME_START = 946_684_800
"""2000-01-01: content times fall between it and 2034."""


FRAGMENT_START = "# fragment: "
FRAGMENT_END = "# end of fragment: "
"""The layout marks each included fragment, so a build error can name the fragment it came from."""
FAILED_LINE = re.compile(r"(?:dockerfile parse error (?:on )?line |Dockerfile:)(\d+)")
FAILED_STEP = re.compile(r"^ > \[[^\]]*\d+/\d+\] (.+):$", re.MULTILINE)
"""Older BuildKit names a failed step by its instruction only: ` > [5/5] RUN exit 3:`."""


def _failed_line_number(build_output: str, lines: list[str]) -> int | None:
    found = FAILED_LINE.findall(build_output)
    if found:
        return int(found[-1]) if 1 <= int(found[-1]) <= len(lines) else None
    steps = FAILED_STEP.findall(build_output)
    if not steps:
        return None
    step = " ".join(steps[-1].split())
    for number, line in enumerate(lines, start=1):
        start = " ".join(line.rstrip("\\").split())
        if start and not start.startswith("#") and step.startswith(start):
            return number
    return None


def locate_failure(build_output: str, dockerfile: str) -> str:
    """'Dockerfile line N: <the line>', plus the fragment it came from, for the
    Dockerfile line a build error points at; empty when it points at none."""
    lines = dockerfile.splitlines()
    number = _failed_line_number(build_output, lines)
    if number is None:
        return ""
    instruction = [lines[number - 1]]
    while instruction[-1].rstrip().endswith("\\") and number - 1 + len(instruction) < len(lines):
        instruction.append(lines[number - 1 + len(instruction)])
    text = " ".join(" ".join(line.rstrip("\\ ").split()) for line in instruction)
    where = f"Dockerfile line {number}: {text[:300]}"
    for line in reversed(lines[: number - 1]):
        if line.startswith(FRAGMENT_END):
            break
        if line.startswith(FRAGMENT_START):
            return f"{where}\n  from the fragment {line.removeprefix(FRAGMENT_START)}"
    return where


def differs(rendered: RenderedVariant, folder: Path) -> bool:
    """True when FOLDER does not hold exactly this rendered context."""
    if not (folder / "Dockerfile").is_file():
        return True
    if (folder / "Dockerfile").read_text(encoding="utf-8") != rendered.dockerfile:
        return True
    present = {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*") if p.is_file() and p.name != "Dockerfile"
    }
    return present != rendered.files
