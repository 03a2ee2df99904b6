"""The project's git history: revision, release tag, and a tree at another ref."""

from __future__ import annotations

import tarfile
from pathlib import Path

from builder.engine import commands as tools
from builder.model.errors import FactoryError


def revision(project: Path) -> tuple[str, int | None]:
    """(commit sha, commit time) of the project, or ('unknown', None) outside git. Inside a
    repository git must answer: a failure there ("dubious ownership", a broken HEAD) is an
    error, never a silent 'unknown' that would publish without a sha tag."""
    inside = tools.run(["git", "-C", str(project), "rev-parse", "--git-dir"], check=False)
    if inside.returncode != 0 and "not a git repository" in inside.stderr:
        return "unknown", None
    proc = tools.run(["git", "-C", str(project), "log", "-1", "--format=%H %ct"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        said = (proc.stderr or inside.stderr).strip().splitlines()
        raise FactoryError(f"git can't read the revision of {project}: {said[-1] if said else 'no commit'}")
    sha, epoch = proc.stdout.split()
    return sha, int(epoch)


def release_tag_version(project: Path) -> str | None:
    """X.Y.Z of a git tag images/vX.Y.Z on HEAD, else None."""
    proc = tools.run(["git", "-C", str(project), "describe", "--tags", "--exact-match", "--match", "images/v*", "HEAD"],
                     check=False)
    tag = proc.stdout.strip()
    return tag.removeprefix("images/v") if proc.returncode == 0 and tag else None


def export_tree(project: Path, ref: str, into: Path) -> Path:
    """The project's files at REF, unpacked under INTO; returns the tree's folder."""
    tree, archive = into / "tree", into / "tree.tar"
    result = tools.run(["git", "-C", str(project), "archive", "--format=tar", "-o", str(archive), ref], check=False)
    if result.returncode != 0:
        raise FactoryError(f"can't read git ref '{ref}': {result.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree
