"""The vulnerability allow-list: findings accepted for now, each with a reason and an
expiry. An expired entry fails the scan, so an exception is looked at again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pydantic import Field

from builder.model.config import Strict
from builder.model.loading import load_model


class Allowed(Strict):
    id: str = Field(pattern=r"^(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|[A-Z]+-[\w.-]+)$")
    """The finding's id as the scanner reports it (CVE-..., GHSA-...)."""
    reason: str = Field(min_length=10)
    """Why it is accepted: what makes it unreachable or harmless here."""
    expires: dt.date
    """The day it stops being accepted (YYYY-MM-DD)."""
    variants: list[str] | None = None
    """The variants it applies to; every variant when absent."""


class Allowlist(Strict):
    entries: list[Allowed] = Field(default_factory=list)

    def expired(self, today: dt.date) -> list[Allowed]:
        return [e for e in self.entries if e.expires < today]

    def for_variant(self, variant: str | None) -> list[Allowed]:
        return [e for e in self.entries if variant is None or e.variants is None or variant in e.variants]


def load_allowlist(path: Path) -> Allowlist:
    return load_model(path, Allowlist) if path.is_file() else Allowlist()


def trivy_ignore(entries: list[Allowed]) -> str:
    """The entries as Trivy's YAML ignore file (`.trivyignore.yaml`): id, statement, expiry."""
    lines = ["# Written by `hjk-images scan-policy` from the vulnerability allow-list.", "vulnerabilities:"]
    for entry in entries:
        # a JSON string is a valid YAML double-quoted scalar, whatever the reason holds
        lines += [f"  - id: {entry.id}", f"    statement: {json.dumps(entry.reason)}",
                  f"    expired_at: {entry.expires}"]
    if not entries:
        lines[-1] = "vulnerabilities: []"
    return "\n".join(lines) + "\n"
