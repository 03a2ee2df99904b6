"""Registry credentials: logged in once through the engine's own credential store,
so buildx, imagetools and cosign all use them. The password only ever travels on
standard input; it is masked in every message this package prints."""

from __future__ import annotations

from builder.engine import commands as tools
from builder.model.errors import FactoryError


def login(registry: str, username: str, password: str) -> None:
    if not password:
        raise FactoryError(f"no password given for {registry} (pipe it to --password-stdin)")
    tools.register_secret(password)
    result = tools.run(
        ["docker", "login", "--username", username, "--password-stdin", registry],
        input_text=password, check=False, timeout=120,
    )
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise FactoryError(f"login to {registry} as {username} failed: {tools.redact(reason[-1] if reason else '')}")
