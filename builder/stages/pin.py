"""`pin`: the product page's "Pin Versions" for a team's Dockerfiles. Each FROM naming a
factory image is written as `image:tag@sha256:<index digest>` of what the registry's tag
holds now (the tag kept for readability); `--check` names each line that is unpinned or
behind. Only the reference changes: comments, stages and formatting stay as they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.model.dockerfile import factory_froms
from builder.model.records import Bump


@dataclass(frozen=True)
class PinLine:
    path: Path
    line: int
    variant: str
    was: str | None
    """The digest the line was pinned to, if any."""
    now: str
    """What the registry's tag holds now."""

    @property
    def current(self) -> bool:
        return self.was == self.now

    def describe(self) -> str:
        where = f"{self.path}:{self.line}"
        if self.was is None:
            return f"{where}: FROM ...:{self.variant} is unpinned (the registry's :{self.variant} is {self.now})"
        return f"{where}: FROM ...:{self.variant} is pinned to {self.was}, the registry's :{self.variant} is {self.now}"


def variants_named(files: dict[Path, str], image: str) -> set[str]:
    """The factory variants the FROM lines of FILES (path -> text) name."""
    return {f.variant for path, text in files.items() for f in factory_froms(text, image, path)}


def pin_lines(files: dict[Path, str], image: str, digests: dict[str, str]) -> list[PinLine]:
    """Each factory FROM of FILES against DIGESTS (variant -> the index digest its tag holds)."""
    return [PinLine(path, f.line, f.variant, f.pinned, digests[f.variant])
            for path, text in files.items() for f in factory_froms(text, image, path)]


def pinned_text(text: str, path: Path, image: str, digests: dict[str, str]) -> str:
    """TEXT with each factory FROM pinned to DIGESTS; nothing else on any line changes."""
    lines = text.splitlines(keepends=True)
    for found in factory_froms(text, image, path):
        index = found.line - 1
        lines[index] = lines[index].replace(found.ref, f"{found.unpinned_ref}@{digests[found.variant]}", 1)
    return "".join(lines)


def as_bump(line: PinLine) -> Bump:
    """A FROM line as a row of `bump`'s table: the file, the line, from and to."""
    return Bump(variant=str(line.path), tool=f"FROM :{line.variant} (line {line.line})", source="registry",
                current=line.was or "(unpinned)", status="current" if line.current else "bump",
                target=None if line.current else line.now)


def pinned_texts(paths: list[Path], image: str, digests: dict[str, str]) -> dict[Path, str]:
    """Each file of PATHS with its factory FROM lines pinned to DIGESTS."""
    return {path: pinned_text(path.read_text(encoding="utf-8"), path, image, digests) for path in paths}
