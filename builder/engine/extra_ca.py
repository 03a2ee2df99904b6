"""The extra CA bundle for TLS-intercepting proxies, handed to builds as a secret."""

from __future__ import annotations

from pathlib import Path

from builder.engine import state
from builder.model.config import Settings
from builder.model.errors import FactoryError

# Where Debian (update-ca-certificates) keeps locally added certificates.
SYSTEM_EXTRA_DIR = Path("/usr/local/share/ca-certificates")


def bundle_path(settings: Settings) -> Path | None:
    """A PEM file to pass as the `extra_ca` build secret, or None when there is none.

    `ca_bundle: auto` takes the host's locally added CAs (what a proxy's users
    install), `none` turns it off, anything else is a PEM file path.
    """
    choice = settings.config.ca_bundle
    if choice == "none":
        return None
    if choice == "auto":
        certs = sorted(SYSTEM_EXTRA_DIR.rglob("*.crt")) if SYSTEM_EXTRA_DIR.is_dir() else []
        if not certs:
            return None
        target = state.subdir("secrets") / "extra-ca.pem"
        target.touch(mode=0o600)
        target.write_text("".join(c.read_text() for c in certs))
        return target
    path = settings.ca_bundle
    if path is None or not path.is_file():
        raise FactoryError(f"ca_bundle: {choice} is not a file")
    return path
