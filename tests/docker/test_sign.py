"""Key-based cosign signing and verification against the local registry."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild

PASSWORD = "correct horse battery staple"


def key_pair(folder: Path) -> tuple[Path, Path]:
    subprocess.run(["cosign", "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    return folder / "cosign.key", folder / "cosign.pub"


@pytest.fixture(scope="module")
def signed_tiny(fixture_build: FixtureBuild, passing_results: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("keys")
    private, public = key_pair(folder)
    proc = hjk("--config", str(FIXTURE_CONFIG), "publish", "--record", str(fixture_build.record_path),
               "--results", str(passing_results), "--variant", "tiny", "--sign-key", str(private),
               "--release-record", str(folder / "release.json"), env={"COSIGN_PASSWORD": PASSWORD})
    return proc, public, folder


def test_publish_signs_the_index_and_every_platform_image(signed_tiny, fixture_build: FixtureBuild) -> None:  # type: ignore[no-untyped-def]
    proc, public, _ = signed_tiny
    record = fixture_build.record
    index = f"{record.repository}@{record.variant('tiny').digest}"
    assert f"signed {index}" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    for target in [index, *(f"{record.repository}@{b.digest}" for b in record.builds_of("tiny"))]:
        verified = hjk("verify", target, "--key", str(public))
        assert f"verified: {target}" in verified.stdout


def test_a_wrong_key_or_an_unsigned_image_does_not_verify(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    _, public, _ = signed_tiny
    record = fixture_build.record
    _, other_public = key_pair(tmp_path)
    index = f"{record.repository}@{record.variant('tiny').digest}"
    wrong = hjk("verify", index, "--key", str(other_public), check=False)
    assert wrong.returncode == 1 and f"signature of {index} does not verify" in wrong.stderr
    unsigned = f"{record.repository}@{record.variant('broken').digest}"
    proc = hjk("verify", unsigned, "--key", str(public), check=False)
    assert proc.returncode == 1 and f"signature of {unsigned} does not verify" in proc.stderr


def test_with_a_key_the_sbom_is_a_signed_attestation(signed_tiny, fixture_build: FixtureBuild) -> None:  # type: ignore[no-untyped-def]
    proc, public, _ = signed_tiny
    record = fixture_build.record
    build = next(b for b in record.builds_of("tiny") if b.platform == "linux/arm64")
    reference = f"{record.repository}@{build.digest}"
    assert f"tiny-arm64.cdx.json attached to {reference} as attestation" in proc.stderr
    verified = subprocess.run(
        ["cosign", "verify-attestation", "--type", "cyclonedx", "--key", str(public),
         "--insecure-ignore-tlog=true", "--allow-insecure-registry", reference],
        capture_output=True, text=True, check=False,
    )
    assert verified.returncode == 0, verified.stderr


def _verdicts(stdout: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(stdout[: stdout.rindex("\nverified: ")])
    return data


def test_verify_checks_signature_sbom_and_provenance_of_every_platform(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    _, public, folder = signed_tiny
    record = fixture_build.record
    index = f"{record.repository}@{record.variant('tiny').digest}"
    proc = hjk("verify", index, "--key", str(public), "--release-record", str(folder / "release.json"), "--json")
    verdicts = _verdicts(proc.stdout)
    assert [v["what"] for v in verdicts] == ["signature", "sbom", "provenance", "sbom", "provenance"]
    assert all(v["ok"] for v in verdicts), verdicts
    assert all(v["detail"] == f"built from commit {record.revision}" for v in verdicts if v["what"] == "provenance")
    # what the provenance says: the commit, the parent (the root here) by digest, the rendered context
    document = json.loads((folder / "provenance" / "tiny-arm64.provenance.json").read_text())
    definition = document["buildDefinition"]
    assert definition["externalParameters"]["commit"] == record.revision
    build = next(b for b in record.builds_of("tiny") if b.platform == "linux/arm64")
    names = {d.get("name"): d["digest"]["sha256"] for d in definition["resolvedDependencies"]}
    assert "sha256:" + names["parent"] == record.root.platforms["linux/arm64"]
    assert names["rendered build context"] == build.context_digest
    # a release record naming another commit: the provenance doesn't match it, and verify says so
    other = json.loads((folder / "release.json").read_text())
    other["revision"] = "0" * 40
    (tmp_path / "other.json").write_text(json.dumps(other))
    wrong = hjk("verify", index, "--key", str(public), "--release-record", str(tmp_path / "other.json"), check=False)
    assert wrong.returncode == 1
    assert f"names commit {record.revision}, the release record {'0' * 40}" in wrong.stderr


def test_an_image_without_attestations_says_which_are_missing(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """leaf is signed here but carries no SBOM or provenance: verify names what is missing."""
    _, public, folder = signed_tiny
    record = fixture_build.record
    leaf = f"{record.repository}@{record.variant('leaf').digest}"
    subprocess.run(["cosign", "sign", "--yes", "--recursive", "--key", str(folder / "cosign.key"),
                    "--tlog-upload=false", "--allow-insecure-registry", leaf],
                   check=True, capture_output=True, env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    proc = hjk("verify", leaf, "--key", str(public), check=False)
    assert proc.returncode == 1
    assert "verified signature" in proc.stderr
    assert "no verified cyclonedx attestation" in proc.stderr
    assert "no verified slsaprovenance1 attestation" in proc.stderr


def test_an_attestation_about_another_digest_does_not_verify(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild,
) -> None:
    """Last in this module: it overwrites tiny arm64's attestations with amd64's."""
    _, public, _ = signed_tiny
    record = fixture_build.record
    digests = {b.platform: b.digest for b in record.builds_of("tiny")}
    amd64, arm64 = (digests[p].replace(":", "-") for p in ("linux/amd64", "linux/arm64"))
    # copied as it is (imagetools would wrap it in an index)
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{record.repository}:{amd64}.att", f"docker://{record.repository}:{arm64}.att"],
                   check=True, capture_output=True)
    index = f"{record.repository}@{record.variant('tiny').digest}"
    proc = hjk("verify", index, "--key", str(public), check=False)
    assert proc.returncode == 1
    assert (f"attestation on {record.repository}@{digests['linux/arm64']} is about {digests['linux/amd64']}, "
            f"not {digests['linux/arm64']}: the subjects differ") in proc.stderr + proc.stdout


def test_an_unsigned_statement_about_the_right_digest_never_verifies(  # type: ignore[no-untyped-def]
    signed_tiny, fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    """Last in this module, after the subjects test left tiny arm64 with amd64's signed
    statements: a forged, unsigned SBOM statement about arm64 itself is attached beside
    them. Only verified statements count, so the SBOM still fails, naming amd64."""
    _, public, _ = signed_tiny
    record = fixture_build.record
    digests = {b.platform: b.digest for b in record.builds_of("tiny")}
    arm64 = f"{record.repository}@{digests['linux/arm64']}"
    statement = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://cyclonedx.org/bom",
                 "subject": [{"name": record.repository, "digest": {"sha256": digests["linux/arm64"][7:]}}],
                 "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}}
    envelope = {"payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
                "signatures": [{"keyid": "", "sig": base64.b64encode(b"forged").decode()}]}
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    attached = subprocess.run(["cosign", "attach", "attestation", "--attestation", str(forged),
                               "--allow-insecure-registry", arm64], capture_output=True, text=True, check=False)
    assert attached.returncode == 0, attached.stderr
    downloaded = subprocess.run(["cosign", "download", "attestation", "--allow-insecure-registry", arm64],
                                capture_output=True, text=True, check=True).stdout
    assert base64.b64encode(b"forged").decode() in downloaded  # the forgery is there to be found
    proc = hjk("verify", f"{record.repository}@{record.variant('tiny').digest}", "--key", str(public), check=False)
    assert proc.returncode == 1
    assert (f"the sbom attestation on {arm64} is about {digests['linux/amd64']}, "
            f"not {digests['linux/arm64']}: the subjects differ") in proc.stderr + proc.stdout
