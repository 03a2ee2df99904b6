"""Questions asked of a registry about images: what an index holds, whether a tag exists;
and images written here (OCI layouts) pushed to it as they are.

Goes through `docker buildx imagetools` and `skopeo`, which use the user's docker
login; localhost registries are spoken to over plain http, as the engine does, so
it works for GHCR and the embedded registry alike.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from builder.engine import commands as tools
from builder.model.errors import FactoryError

TIMEOUT_ENV = "HJK_REGISTRY_TIMEOUT"


@dataclass(frozen=True)
class IndexInfo:
    reference: str
    digest: str
    media_type: str
    platforms: dict[str, str] = field(default_factory=dict)
    """platform ('linux/arm64') -> manifest digest; attestation manifests are left out."""


def _platform_name(entry: dict[str, object]) -> str | None:
    plat = entry.get("platform")
    if not isinstance(plat, dict):
        return None
    os_name, arch = plat.get("os"), plat.get("architecture")
    if os_name == "unknown" or arch == "unknown":
        return None  # BuildKit attestation manifests
    variant = plat.get("variant")
    return f"{os_name}/{arch}" + (f"/{variant}" if variant and arch != "arm64" else "")


def registry_timeout() -> float:
    """Seconds a registry question may take ($HJK_REGISTRY_TIMEOUT, default 120): a registry
    that stalls longer is a failed answer, never a missing image."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return 120.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise FactoryError(f"{TIMEOUT_ENV}={value!r}: give the seconds a registry question may take, e.g. 120")
    return seconds


def _imagetools_inspect(reference: str, template: str) -> str:
    """`imagetools inspect --format TEMPLATE`, transient registry errors retried."""
    argv = ["docker", "buildx", "imagetools", "inspect", "--format", template, reference]
    try:
        return tools.retry_transient(lambda: tools.run(argv, timeout=registry_timeout())).stdout
    except tools.CommandError as exc:
        reason = exc.output.strip().splitlines()
        raise FactoryError(f"image {reference} can't be inspected: {reason[-1] if reason else 'unknown error'}") \
            from None


def config_of(reference: str) -> str:
    """The image config (JSON) of a single-platform image."""
    return _imagetools_inspect(reference, "{{json .Image}}")


def inspect(reference: str) -> IndexInfo:
    """Digest and per-platform digests of REFERENCE; FactoryError naming it and the registry's
    answer when it can't be read (absent, or the registry failed)."""
    manifest = json.loads(_imagetools_inspect(reference, "{{json .Manifest}}"))
    platforms: dict[str, str] = {}
    for entry in manifest.get("manifests") or []:
        name = _platform_name(entry)
        if name:
            platforms[name] = entry["digest"]
    if "manifests" not in manifest:
        # a single-platform image: its platform is in its config
        config = json.loads(_imagetools_inspect(reference, "{{json .Image}}"))
        name = _platform_name({"platform": {"os": config.get("os"), "architecture": config.get("architecture"),
                                            "variant": config.get("variant")}})
        if name:
            platforms[name] = manifest["digest"]
    return IndexInfo(
        reference=reference, digest=manifest["digest"],
        media_type=manifest.get("mediaType", ""), platforms=platforms,
    )


class RegistryError(FactoryError):
    """The registry answered something other than the image or 'not found' (an auth error,
    a server error, no answer at all): nothing can be concluded about the image."""


def _not_found(output: str) -> bool:
    """True only for the registry's 404 (containerd reports it as '<ref>: not found', and
    only for a 404): every other answer is an error, never 'absent'."""
    lines = output.strip().splitlines()
    return bool(lines) and lines[-1].rstrip().endswith(": not found")


def lookup(reference: str) -> str | None:
    """The digest REFERENCE points at; None only when the registry says it doesn't exist.
    Any other failure raises RegistryError with the registry's answer (transient ones are
    retried first)."""
    argv = ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference]

    def ask() -> str | None:
        result = tools.run(argv, check=False, timeout=registry_timeout())
        if result.returncode == 0:
            digest: str = json.loads(result.stdout)["digest"]
            return digest
        output = result.stderr or result.stdout
        if _not_found(output):
            return None
        raise tools.CommandError(argv, result.returncode, output)

    try:
        return tools.retry_transient(ask)
    except tools.CommandError as exc:
        tail = exc.output.strip().splitlines()
        raise RegistryError(f"the registry did not say whether {reference} exists: "
                            f"{tail[-1] if tail else 'no answer'}{tools.auth_hint(exc.output)}") from None


def local_image_size(reference: str) -> int:
    """Size of an image in the local engine (uncompressed)."""
    return int(tools.run(["docker", "image", "inspect", "--format", "{{.Size}}", reference], timeout=60).stdout)


def exists(reference: str) -> bool:
    try:
        inspect(reference)
    except FactoryError:
        return False
    return True


def join_index(target: str, sources: list[str]) -> IndexInfo:
    """Write one multi-platform index at TARGET from per-platform images (by digest)."""
    tools.run(["docker", "buildx", "imagetools", "create", "-t", target, *sources], timeout=300)
    return inspect(target)


def raw_manifest(reference: str) -> dict[str, object]:
    result = tools.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference], timeout=120)
    data: dict[str, object] = json.loads(result.stdout)
    return data


def repository_of(reference: str) -> str:
    """'host/ns/name:tag' or 'host/ns/name@sha' -> 'host/ns/name'."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def loopback(reference: str) -> bool:
    """Whether REFERENCE's registry host (port allowed) is exactly `localhost`, in 127.0.0.0/8
    or `::1`: parsed, never matched by prefix (`localhost.example.com` is a remote host)."""
    host = reference.split("/", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain_http(reference: str) -> bool:
    """Loopback registries speak plain http, as the docker engine assumes for them."""
    return loopback(reference)


def push_layout(layout: Path, ref_name: str, target: str) -> str:
    """Copy the image REF_NAME of the OCI layout LAYOUT to TARGET as it is (no re-compression,
    the manifest's bytes kept); returns the digest the registry holds it under."""
    tools.require("skopeo")
    with tempfile.TemporaryDirectory(prefix="hjk-push-") as tmp:
        digest_file = Path(tmp) / "digest"
        argv = ["skopeo", "copy", "--quiet", "--preserve-digests", "--digestfile", str(digest_file)]
        if _plain_http(target):
            argv.append("--dest-tls-verify=false")
        argv += [f"oci:{layout}:{ref_name}", f"docker://{target}"]
        tools.retry_transient(lambda: tools.run(argv, timeout=registry_timeout() * 5))
        return digest_file.read_text().strip()


def raw_config(reference: str) -> dict[str, object]:
    """The image config of a single-platform image as the registry stores it, every key kept
    (BuildKit's inline cache metadata among them)."""
    tools.require("skopeo")
    argv = ["skopeo", "inspect", "--config", "--raw"]
    if _plain_http(reference):
        argv.append("--tls-verify=false")
    result = tools.retry_transient(lambda: tools.run([*argv, f"docker://{reference}"], timeout=registry_timeout()))
    data: dict[str, object] = json.loads(result.stdout)
    return data


def artifact_files(reference: str) -> dict[str, bytes]:
    """The files in the tar layers of an OCI artifact (a Dev Container Feature), by name
    without a leading `./`."""
    tools.require("skopeo")
    with tempfile.TemporaryDirectory(prefix="hjk-artifact-") as tmp:
        argv = ["skopeo", "copy", "--quiet", *(["--src-tls-verify=false"] if _plain_http(reference) else []),
                f"docker://{reference}", f"dir:{tmp}"]
        tools.retry_transient(lambda: tools.run(argv, timeout=registry_timeout() * 5))
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
        found: dict[str, bytes] = {}
        for layer in manifest.get("layers") or []:
            with tarfile.open(Path(tmp) / str(layer["digest"]).split(":", 1)[1]) as tar:
                for member in tar.getmembers():
                    data = tar.extractfile(member) if member.isfile() else None
                    if data is not None:
                        found[member.name.removeprefix("./")] = data.read()
        return found


def write_tag(target: str, source: str) -> None:
    """Point TARGET (repository:tag) at SOURCE (repository@digest), the manifest as it is."""
    tools.retry_transient(lambda: tools.run(["docker", "buildx", "imagetools", "create", "-t", target, source],
                                            timeout=600))


def layers_of(reference: str) -> list[tuple[str, int]]:
    """(digest, compressed size) of each layer of a single-platform image, bottom first."""
    manifest = raw_manifest(reference)
    layers = manifest.get("layers") or []
    if not isinstance(layers, list):
        raise FactoryError(f"image {reference}: its manifest has no layer list")
    return [(str(layer["digest"]), int(layer["size"])) for layer in layers if isinstance(layer, dict)]
