"""cosign's command lines: keyless where no key is given (the release workflow), keyed and
offline otherwise. Recorded, not run: keyless signing needs an OIDC provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.engine import commands, cosign


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def run(argv: list[str], **_: object) -> commands.Result:
        seen.append(list(argv))
        return commands.Result(list(argv), 0, "", "")

    monkeypatch.setattr(commands, "run", run)
    monkeypatch.setattr(commands, "require", lambda tool, hint="": tool)
    return seen


def test_keyless_attestations_carry_no_key(calls: list[list[str]], tmp_path: Path) -> None:
    predicate = tmp_path / "p.json"
    assert cosign.attach_sbom("ghcr.io/o/i@sha256:1", predicate, None, keyless=True) == "attestation"
    assert calls[-1] == ["cosign", "attest", "--yes", "--type", "cyclonedx", "--predicate", str(predicate),
                         "ghcr.io/o/i@sha256:1"]
    cosign.sign("ghcr.io/o/i@sha256:1", None)
    assert calls[-1] == ["cosign", "sign", "--yes", "--recursive", "ghcr.io/o/i@sha256:1"]


def test_keyed_attestations_are_offline(calls: list[list[str]], tmp_path: Path) -> None:
    key = tmp_path / "cosign.key"
    cosign.attest("localhost:5000/o/i@sha256:1", tmp_path / "p.json", cosign.PROVENANCE_TYPE, key)
    assert calls[-1][:6] == ["cosign", "attest", "--yes", "--key", str(key), "--tlog-upload=false"]
    assert "--allow-insecure-registry" in calls[-1] and "slsaprovenance1" in calls[-1]


def test_without_key_or_keyless_the_sbom_is_a_plain_artifact(calls: list[list[str]], tmp_path: Path) -> None:
    assert cosign.attach_sbom("ghcr.io/o/i@sha256:1", tmp_path / "s.json", None) == "artifact"
    assert calls[-1][:3] == ["cosign", "attach", "sbom"]
