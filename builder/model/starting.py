"""How each client starts a variant: the exact command (or devcontainer.json), made from the
variant's data, for `hjk-images run-args` and the README's "Starting the variants".

Clients:
- `headjack`: Headjack with image labels (it reads io.headjack.* from the image itself);
- `headjack-image`: Headjack's later `--image` mode, which reads no labels: the runtime
  flags follow `--`, and it appends `sleep infinity` (the ENTRYPOINT of an init image
  still boots);
- `headjack-devcontainer`: Headjack's devcontainer mode, a devcontainer.json in the repository;
- `devcontainer`: the Dev Containers CLI (VS Code, Codespaces and DevPod read the same file);
- `docker`, `podman`: by hand, with the flags of the image's labels.
"""

from __future__ import annotations

import json
import shlex

from builder.model import headjack
from builder.model.variants import Variant

CLIENTS = ("headjack", "headjack-image", "headjack-devcontainer", "devcontainer", "docker", "podman")
WORKTREE = '"$PWD"'


def devcontainer_json(reference: str) -> str:
    """All a project needs: the image. Everything else comes from its devcontainer.metadata label."""
    return json.dumps({"image": reference}, indent=2)


def _flags(variant: Variant, runtime: str) -> list[str]:
    text = {str(name): flags for name, flags in variant.runtime.flags.items()}.get(runtime, "")
    return headjack.to_args(headjack.parse_flags(text))


def _line(argv: list[str]) -> str:
    return " ".join(a if a.startswith(WORKTREE) else shlex.quote(a) for a in argv)


def command(variant: Variant, reference: str, client: str) -> str:
    """What a user types (or writes) to start VARIANT's image REFERENCE with CLIENT."""
    if client not in CLIENTS:
        raise ValueError(f"unknown client '{client}' (known: {', '.join(CLIENTS)})")
    keep_alive = [] if variant.runtime.init else list(headjack.DEFAULT_INIT)
    if client == "headjack":
        return _line(["hjk", "run", "BRANCH", "--image", reference])
    if client == "headjack-image":
        flags = _flags(variant, "docker")
        return _line(["hjk", "run", "BRANCH", "--image", reference, *(["--", *flags] if flags else [])])
    if client == "headjack-devcontainer":
        return (f"# .devcontainer/devcontainer.json in the repository:\n{devcontainer_json(reference)}\n"
                "hjk run BRANCH")
    if client == "devcontainer":
        return (f"# .devcontainer/devcontainer.json:\n{devcontainer_json(reference)}\n"
                "devcontainer up --workspace-folder . && devcontainer exec --workspace-folder . bash")
    runtime = client
    run = [runtime, "run", "--detach", "--name", "agent", *_flags(variant, runtime),
           "-v", f"{WORKTREE}:{headjack.WORKSPACE}", reference, *keep_alive]
    return _line(run) + "\n" + _line([runtime, "exec", "-it", "agent", "bash"])
