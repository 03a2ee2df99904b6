"""Reading a team's Dockerfile: its FROM lines, and which of them name this factory's images
(`REGISTRY/NAMESPACE/IMAGE:<variant>`, optionally pinned `@sha256:...`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from builder.model.errors import FactoryError

FROM_LINE = re.compile(
    r"^FROM[ \t]+(?:--platform=\S+[ \t]+)?(?P<ref>\S+)(?P<rest>(?:[ \t]+AS[ \t]+(?P<stage>\S+))?.*)$",
    re.IGNORECASE | re.MULTILINE,
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def factory_variant(ref: str, image: str, path: Path) -> str | None:
    """The variant a FROM reference names, when it is one of this factory's images."""
    name = ref.split("@", 1)[0]
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    if repo.rsplit("/", 1)[-1] != image:
        return None
    if not re.fullmatch(r"[a-z0-9-]+", tag or ""):
        raise FactoryError(f"{path}: FROM {ref}: name the variant it builds on ({image}:<variant>)")
    return tag


@dataclass(frozen=True)
class FactoryFrom:
    """A FROM line naming one of the factory's images."""

    line: int
    """1-based."""
    ref: str
    variant: str
    pinned: str | None
    """The digest written after `@`, if any."""

    @property
    def unpinned_ref(self) -> str:
        return self.ref.split("@", 1)[0]


def factory_froms(text: str, image: str, path: Path) -> list[FactoryFrom]:
    """Every FROM of TEXT that names one of the factory's images, in order."""
    found = []
    for match in FROM_LINE.finditer(text):
        ref = match.group("ref")
        variant = factory_variant(ref, image, path)
        if variant is None:
            continue
        digest = ref.split("@", 1)[1] if "@" in ref else None
        if digest is not None and not DIGEST.fullmatch(digest):
            raise FactoryError(f"{path}: FROM {ref}: a pin is @sha256:<64 hex digits>")
        found.append(FactoryFrom(text.count("\n", 0, match.start()) + 1, ref, variant, digest))
    return found
