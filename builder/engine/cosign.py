"""Sign published images with cosign, and verify signatures.

Key-based signing works offline (a local registry, no transparency log);
without a key, cosign signs keyless (OIDC), which needs the internet and an
identity provider, as in the GitHub release workflow. The key's password is
read from COSIGN_PASSWORD and never appears in arguments or logs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from pathlib import Path

from builder.engine import commands as tools
from builder.engine import oci
from builder.model.errors import FactoryError

PASSWORD_ENV = "COSIGN_PASSWORD"
SBOM_TYPE = "cyclonedx"
PROVENANCE_TYPE = "slsaprovenance1"
"""cosign's names for the predicate types we attach (CycloneDX, SLSA provenance v1)."""


def key_env() -> dict[str, str]:
    """The key's password for cosign's environment, masked in everything we print."""
    password = os.environ.get(PASSWORD_ENV, "")
    tools.register_secret(password)
    return {PASSWORD_ENV: password}


def insecure_flags(reference: str) -> list[str]:
    """cosign refuses plain-http registries unless told; loopback ones are plain http."""
    return ["--allow-insecure-registry"] if oci.loopback(reference) else []


def sign(reference: str, key: Path | None) -> None:
    """Sign REFERENCE (repository@digest) and, for an index, every platform image in it."""
    if "@sha256:" not in reference:
        raise FactoryError(f"sign by digest, not by tag: {reference}")
    tools.require("cosign", "install cosign (`make setup` does on Debian)")
    argv = ["cosign", "sign", "--yes", "--recursive"]
    env = {}
    if key is not None:
        if not key.is_file():
            raise FactoryError(f"signing key {key} not found")
        argv += ["--key", str(key), "--tlog-upload=false"]
        env = key_env()
    argv += insecure_flags(reference)
    tools.retry_transient(lambda: tools.run([*argv, reference], env=env, timeout=300))


GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


def workflow_identity(source_url: str) -> str:
    """The certificate identity of a keyless signature made by a workflow of SOURCE_URL's
    repository (a regular expression): what `verify` accepts by default."""
    return "^" + re.escape(source_url.rstrip("/")) + r"/\.github/workflows/"


def verify(reference: str, key: Path | None, identity: str | None = None, issuer: str = GITHUB_OIDC_ISSUER) -> str:
    """Check REFERENCE's signature; return cosign's summary or raise naming the image.

    With a key, the key decides. Keyless, the signer must be IDENTITY (a regular
    expression over the certificate's identity) from ISSUER: never anybody at all."""
    tools.require("cosign", "install cosign (`make setup` does on Debian)")
    argv = ["cosign", "verify", "--output", "text"]
    if key is not None:
        argv += ["--key", str(key), "--insecure-ignore-tlog=true"]
    else:
        if not identity:
            raise FactoryError("keyless verification needs the signer's identity (--certificate-identity-regexp)")
        argv += ["--certificate-identity-regexp", identity, "--certificate-oidc-issuer", issuer]
    argv += insecure_flags(reference)
    result = tools.run([*argv, reference], check=False, timeout=300)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise FactoryError(f"signature of {reference} does not verify: {reason[-1] if reason else 'no reason given'}")
    return (result.stderr or result.stdout).strip()


def attest(reference: str, predicate: Path, predicate_type: str, key: Path | None) -> None:
    """Attach PREDICATE to REFERENCE as an in-toto attestation signed with KEY (None: keyless)."""
    signing = ["--key", str(key), "--tlog-upload=false"] if key is not None else []
    tools.retry_transient(lambda: tools.run(
        ["cosign", "attest", "--yes", *signing, "--type", predicate_type,
         "--predicate", str(predicate), *insecure_flags(reference), reference],
        env=key_env() if key is not None else None, timeout=300))


def attestations(reference: str, predicate_type: str, key: Path | None, identity: str | None = None,
                 issuer: str = GITHUB_OIDC_ISSUER) -> list[dict[str, object]]:
    """The in-toto statements of PREDICATE_TYPE attached to REFERENCE whose signature verifies
    (by KEY, or keyless by IDENTITY and ISSUER); raises naming the image when there are none.
    Verified statements about another digest come back too, so the caller can name them;
    a statement whose signature doesn't verify never does."""
    argv = ["cosign", "verify-attestation", "--type", predicate_type]
    if key is not None:
        argv += ["--key", str(key), "--insecure-ignore-tlog=true"]
    elif identity:
        argv += ["--certificate-identity-regexp", identity, "--certificate-oidc-issuer", issuer]
    else:
        raise FactoryError("keyless verification needs the signer's identity (--certificate-identity-regexp)")
    result = tools.run([*argv, *insecure_flags(reference), reference], check=False, timeout=300)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        if key is not None:
            # cosign stops at the first envelope it can't use (one about another digest, or a
            # forgery beside good ones): read every envelope and keep each whose own signature
            # verifies by KEY, so the caller can name what they are about; none: not verified
            downloaded = tools.run(["cosign", "download", "attestation", "--predicate-type", predicate_type,
                                    *insecure_flags(reference), reference], check=False, timeout=300)
            verified = _verified_statements(downloaded.stdout, key) if downloaded.returncode == 0 else []
            if verified:
                return verified
        raise FactoryError(f"no verified {predicate_type} attestation on {reference}: "
                           f"{reason[-1] if reason else 'no reason given'}")
    return _statements(result.stdout)


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what an envelope's signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _verified_statements(output: str, key: Path) -> list[dict[str, object]]:
    """The statements of the DSSE envelopes in OUTPUT that carry a signature KEY verifies
    (checked one by one with `cosign verify-blob` over the envelope's PAE)."""
    verified = []
    with tempfile.TemporaryDirectory() as tmp:
        blob, signature = Path(tmp) / "pae", Path(tmp) / "sig"
        for line in output.splitlines():
            if not line.strip().startswith("{"):
                continue
            envelope = json.loads(line)
            payload = base64.b64decode(envelope.get("payload", ""))
            blob.write_bytes(_pae(str(envelope.get("payloadType", "")), payload))
            for sig in envelope.get("signatures") or []:
                signature.write_text(str(sig.get("sig", "")))
                checked = tools.run(["cosign", "verify-blob", "--key", str(key), "--signature", str(signature),
                                     "--insecure-ignore-tlog=true", str(blob)], check=False, timeout=120)
                if checked.returncode == 0:
                    verified.append(json.loads(payload))
                    break
    return verified


def _statements(output: str) -> list[dict[str, object]]:
    """The in-toto statements inside cosign's DSSE envelopes, one per line."""
    statements = []
    for line in output.splitlines():
        if line.strip().startswith("{"):
            envelope = json.loads(line)
            statements.append(json.loads(base64.b64decode(envelope["payload"])))
    return statements


def local_key_pair(folder: Path) -> tuple[Path, Path]:
    """This machine's own signing key pair, made on first use (password: $COSIGN_PASSWORD,
    else empty): what a local release signs with, so its images can be verified."""
    key, public = folder / "cosign.key", folder / "cosign.pub"
    if not key.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        tools.require("cosign", "install cosign (`make setup` does on Debian)")
        tools.run(["cosign", "generate-key-pair"], cwd=folder, env=key_env(), timeout=60)
    return key, public


def attach_sbom(reference: str, sbom_file: Path, key: Path | None, keyless: bool = False) -> str:
    """Attach SBOM_FILE to REFERENCE: a signed attestation with a key (or keyless), else a plain
    OCI artifact."""
    insecure = insecure_flags(reference)
    if key is not None or keyless:
        attest(reference, sbom_file, SBOM_TYPE, key)
        return "attestation"
    tools.run(["cosign", "attach", "sbom", "--sbom", str(sbom_file), "--type", "cyclonedx", *insecure, reference],
              timeout=300)
    return "artifact"
