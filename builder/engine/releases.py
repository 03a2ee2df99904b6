"""What release sources offer now: the npm registry, PyPI, a Debian archive, GitHub.

Plain HTTPS through urllib (the host's CA store, which `make setup` extends with the
locally added CAs): each answer becomes a list of `Release`s, or a `SourceError`
that says whether the source was missing the package (404) or could not be asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import lzma
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from builder.model.errors import FactoryError

TIMEOUT = 60.0
PYPI = "https://pypi.org/pypi"


def npm_registry() -> str:
    """npm's own setting ($NPM_CONFIG_REGISTRY), else the public registry."""
    return os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")


class SourceError(FactoryError):
    """A release source did not answer with the package's releases."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        """True when the source could not be asked at all (network, server error)."""


@dataclass(frozen=True)
class Release:
    version: str
    published: dt.datetime | None
    withdrawn: str = ""
    """Why it must never be chosen (deprecated on npm, yanked on PyPI); empty when fine."""


@dataclass(frozen=True)
class Offer:
    """Everything a source offers for one package."""

    releases: list[Release]
    latest: str | None = None
    """The source's own idea of the newest (npm's `latest` dist-tag)."""
    notes: str = ""
    """Where release notes live (repository or homepage)."""


def _get(url: str, what: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "hjk-images", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{what} answered {exc.code} {exc.reason} for {url}", unreachable=exc.code >= 500) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{what} can't be reached ({reason}) at {url}", unreachable=True) from None


def _get_json(url: str, what: str, shape: type = dict) -> Any:
    """The JSON document at URL, of SHAPE (dict or list); anything else (an HTML error page
    from a proxy, a mirror's odd answer) is the source's fault, named, never a traceback."""
    body = _get(url, what)
    try:
        data = json.loads(body)
    except ValueError:
        start = body[:60].decode("utf-8", "replace").strip()
        raise SourceError(f"{what} answered something that isn't JSON for {url} (it starts {start!r})",
                          unreachable=False) from None
    if not isinstance(data, shape):
        raise SourceError(f"{what} answered JSON of an unexpected shape for {url} (a {type(data).__name__}, "
                          f"not a {shape.__name__})", unreachable=False)
    return data


def _when(text: str | None) -> dt.datetime | None:
    """A publish time; one that can't be read counts as unknown (and so as too young)."""
    if not text or not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _repository_url(meta: dict[str, Any]) -> str:
    repo = meta.get("repository")
    url = repo.get("url", "") if isinstance(repo, dict) else str(repo or "")
    url = url.removeprefix("git+").removesuffix(".git").replace("git://", "https://").replace("ssh://git@", "https://")
    return url or str(meta.get("homepage") or "")


def npm(package: str) -> Offer:
    """Every release of an npm package with its publish time; deprecated ones marked."""
    quoted = urllib.parse.quote(package, safe="@")
    meta = _get_json(f"{npm_registry()}/{quoted}", "the npm registry")
    times = meta.get("time") or {}
    releases = [
        Release(version, _when(times.get(version)), str(info.get("deprecated") or ""))
        for version, info in (meta.get("versions") or {}).items()
    ]
    latest = (meta.get("dist-tags") or {}).get("latest")
    # the packument may leave repository and homepage to each version's manifest
    notes = _repository_url(meta) or _repository_url((meta.get("versions") or {}).get(latest) or {})
    return Offer(releases, latest, notes)


def npm_tarball(package: str, version: str) -> str:
    """The URL of a release's tarball on the npm registry."""
    quoted = urllib.parse.quote(package, safe="@")
    meta = _get_json(f"{npm_registry()}/{quoted}/{version}", "the npm registry")
    return str(meta["dist"]["tarball"])


def release_exists(source: str, package: str, version: str) -> bool:
    """Whether the npm registry or PyPI holds that exact release: a small question (the one
    release's document), answered False only when the source says it doesn't exist."""
    try:
        if source == "npm":
            _get_json(f"{npm_registry()}/{urllib.parse.quote(package, safe='@')}/{urllib.parse.quote(version)}",
                      "the npm registry")
            return True
        if source == "pypi":  # the project's document: not every mirror serves one release's
            return any(r.version == version for r in pypi(package).releases)
    except SourceError as exc:
        if " answered 404 " in str(exc):
            return False
        raise
    raise ValueError(f"no release registry for source {source!r}")


def sha256_of(url: str) -> str:
    """Download URL and hash it: what the build will check (sources publish other digests,
    npm's sha512 integrity among them)."""
    return hashlib.sha256(_get(url, "the download")).hexdigest()


def pypi(package: str) -> Offer:
    """Every release of a PyPI project with its first upload time; yanked ones marked."""
    meta = _get_json(f"{PYPI}/{urllib.parse.quote(package)}/json", "PyPI")
    releases = []
    for version, files in (meta.get("releases") or {}).items():
        if not files:
            continue
        uploaded = min((_when(f.get("upload_time_iso_8601")) for f in files), default=None,
                       key=lambda t: t or dt.datetime.max.replace(tzinfo=dt.UTC))
        yanked = next((str(f.get("yanked_reason") or "yanked") for f in files if f.get("yanked")), "")
        releases.append(Release(version, uploaded, yanked))
    urls = (meta.get("info") or {}).get("project_urls") or {}
    notes = next((urls[k] for k in ("Changelog", "Release notes", "Changes", "Source", "Homepage") if k in urls), "")
    return Offer(releases, None, notes or str((meta.get("info") or {}).get("home_page") or ""))


def debian(mirror: str, suite: str, arch: str, package: str) -> Offer:
    """The version of a Debian package the suite's archive serves now (main, ARCH)."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/main/binary-{arch}/Packages.xz"
    try:
        index = lzma.decompress(_get(url, f"the Debian archive ({suite})")).decode("utf-8", "replace")
    except lzma.LZMAError:
        raise SourceError(f"the Debian archive ({suite}) answered something that isn't xz for {url}",
                          unreachable=False) from None
    versions = [
        line.split(": ", 1)[1] for stanza in index.split("\n\n") if f"\nPackage: {package}\n" in f"\n{stanza}\n"
        for line in stanza.splitlines() if line.startswith("Version: ")
    ]
    if not versions:
        raise SourceError(f"the Debian archive has no package {package} in {suite}/main ({arch})", unreachable=False)
    return Offer([Release(v, None) for v in versions], versions[-1], f"https://tracker.debian.org/pkg/{package}")


def github(repository: str) -> Offer:
    """Releases of a GitHub repository (tag names) with their publish times."""
    data = _get_json(f"https://api.github.com/repos/{repository}/releases?per_page=50", "GitHub", list)
    releases = [Release(str(r["tag_name"]).removeprefix("v"), _when(r.get("published_at")),
                        "draft or pre-release" if r.get("draft") or r.get("prerelease") else "") for r in data]
    return Offer(releases, None, f"https://github.com/{repository}/releases")
