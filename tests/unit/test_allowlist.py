"""The vulnerability allow-list: every entry with a reason and an expiry, an expired one
fails, and Trivy gets the rest as its ignore file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from tests.conftest import hjk

ENTRY = "  - {id: CVE-2025-12345, reason: the daemon is never started in an agent container, expires: %s}\n"


def policy(tmp_path: Path, entries: str, *args: str) -> tuple[int, str, Path]:
    allowlist = tmp_path / "allow.yaml"
    allowlist.write_text("entries:\n" + entries)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("vulnerability_allowlist: allow.yaml\n")
    proc = hjk("--config", str(overlay), "scan-policy", *args, check=False)
    return proc.returncode, proc.stderr, allowlist


def test_entries_become_trivys_ignore_file(tmp_path: Path) -> None:
    out = tmp_path / ".trivyignore.yaml"
    code, said, _ = policy(tmp_path, ENTRY % "2099-01-31" + ENTRY.replace("12345", "99999").replace(
        "}", ", variants: [dind]}") % "2099-01-31", "--variant", "base", "--trivy-ignore", str(out))
    assert code == 0, said
    assert yaml.safe_load(out.read_text()) == {"vulnerabilities": [{
        "id": "CVE-2025-12345", "statement": "the daemon is never started in an agent container",
        "expired_at": dt.date(2099, 1, 31)}]}  # the dind-only entry is left out for base
    assert "1 accepted finding(s) for base, none expired" in said


def test_an_expired_entry_fails(tmp_path: Path) -> None:
    code, said, allowlist = policy(tmp_path, ENTRY % "2020-01-31")
    assert code == 1
    assert f"{allowlist}: expired allow-list entries" in said and "CVE-2025-12345 (expired 2020-01-31)" in said


def test_an_entry_without_a_reason_or_an_expiry_names_the_file_and_entry(tmp_path: Path) -> None:
    code, said, allowlist = policy(tmp_path, "  - {id: CVE-2025-12345, expires: 2099-01-31}\n")
    assert code == 1 and str(allowlist) in said and "entries[0].reason" in said
    code, said, _ = policy(tmp_path, "  - {id: CVE-2025-12345, reason: accepted for a good reason here}\n")
    assert code == 1 and "entries[0].expires" in said


def test_the_committed_allow_list_is_valid() -> None:
    assert "none expired" in hjk("scan-policy").stderr
