"""Where images go: the embedded registry, the root image, logins."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from builder import project, runner
from builder.cli.common import (
    friendly_errors,
    main,
    registry_option,
    settings_of,
)
from builder.engine import auth
from builder.engine import registry as registries
from builder.model.config import SUPPORTED_PLATFORMS
from builder.model.errors import FactoryError
from builder.present.console import ConsoleObserver, note, out_console
from builder.stages import root

# --- registry -----------------------------------------------------------------

@main.group()
def registry() -> None:
    """Run the embedded local registry (a real `registry` process on 127.0.0.1)."""


port_option = click.option("--port", type=int, help="Port on 127.0.0.1 (default: embedded_registry.port).")


@registry.command("up")
@port_option
@click.pass_context
@friendly_errors
def registry_up(ctx: click.Context, port: int | None) -> None:
    """Start the embedded registry if it is not already answering."""
    reg = registries.embedded(settings_of(ctx), port)
    was_running = registries.answers_v2(reg.address)
    status = reg.up()
    note(f"registry {'already running' if was_running else 'started'} at {status.address} (data: {status.data_dir})")


@registry.command("down")
@port_option
@click.pass_context
@friendly_errors
def registry_down(ctx: click.Context, port: int | None) -> None:
    """Stop the embedded registry (its data is kept)."""
    reg = registries.embedded(settings_of(ctx), port)
    note(f"registry at {reg.address} " + ("stopped" if reg.down() else "was not running"))


@registry.command("status")
@port_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def registry_status(ctx: click.Context, port: int | None, as_json: bool) -> None:
    """Show the embedded registry's address, state and what it stores."""
    reg = registries.embedded(settings_of(ctx), port)
    status = reg.status()
    content = registries.catalog(status.address) if status.running else {}
    if as_json:
        click.echo(json.dumps({
            "address": status.address, "running": status.running, "pid": status.pid,
            "data_dir": str(status.data_dir), "repositories": content,
        }, indent=2))
    else:
        state_text = "running" if status.running else "stopped"
        owner = f" (pid {status.pid})" if status.pid else (" (not started by hjk-images)" if status.running else "")
        out_console.print(f"registry {status.address}: {state_text}{owner}", highlight=False)
        out_console.print(f"data: {status.data_dir}\nlog:  {status.log_path}", highlight=False)
        if content:
            table = Table("repository", "tags")
            for repo, tags in content.items():
                table.add_row(repo, ", ".join(tags))
            out_console.print(table)
    if not status.running:
        sys.exit(3)


# --- root image ---------------------------------------------------------------

@main.group("root")
def root_group() -> None:
    """The variants' root OS image."""


@root_group.command("bootstrap")
@registry_option
@click.option("--platform", "platforms", multiple=True, type=click.Choice(SUPPORTED_PLATFORMS),
              help="Limit to these platforms (repeatable).")
@click.option("--check", is_flag=True,
              help="Make each root again from scratch (no cache) and compare it with the registry's; "
                   "fail naming each platform that differs.")
@click.pass_context
@friendly_errors
def root_bootstrap(ctx: click.Context, registry: str | None, platforms: tuple[str, ...], check: bool) -> None:
    """Find or make a minimal Debian root per platform and push it; join the index when
    every platform is here.

    A root is the same bytes on every machine for the same inputs and archive state.
    It is found, with no mmdebstrap run, by the digest images.lock.yaml pins or by its
    input tag (<suite>-<arch>-<key>); otherwise made (root file systems are cached by
    suite, architecture, package list and mirror) and pushed as it is.
    """
    settings = settings_of(ctx)
    if settings.config.root.source != "bootstrap":
        raise FactoryError(
            f"root.source is '{settings.config.root.source}' ({settings.config.root.reference}): "
            "nothing to bootstrap"
        )
    target = project.start_registry(settings, registry)
    observer = ConsoleObserver()
    if check:
        problems = runner.root_check(settings, target, list(platforms), observer)
        if problems:
            raise FactoryError("the root is not what its inputs make now:\n  " + "\n  ".join(problems))
        note("every root is the same as the registry's")
        return
    image = runner.root_bootstrap(settings, target, list(platforms), observer)
    if image.digest:
        note(f"root index: {image.reference}")
    else:
        note("root index not joined: this run holds only some platforms (`merge` joins it)")
    for platform, digest in sorted(image.platforms.items()):
        note(f"  {platform}: {digest}")
    click.echo(image.pinned if image.digest else
               "\n".join(f"{image.reference.rsplit(':', 1)[0]}@{d}" for _, d in sorted(image.platforms.items())))


@root_group.command("clear-cache")
@friendly_errors
def root_clear_cache() -> None:
    """Forget cached root file systems (the next bootstrap makes them again)."""
    note(f"removed {root.clear_cache()} cached root file system(s)")


@main.command()
@click.argument("registry")
@click.option("--username", "-u", required=True, envvar="HJK_REGISTRY_USERNAME",
              help="User name (for GHCR: your GitHub user, or the workflow's github.actor).")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password or token (e.g. GITHUB_TOKEN, a PAT) from standard input.")
@friendly_errors
def login(registry: str, username: str, password_stdin: bool) -> None:
    """Log in to REGISTRY; build, publish and signing then use the engine's stored credentials."""
    password = sys.stdin.read().strip() if password_stdin else ""
    auth.login(registry, username, password)
    note(f"logged in to {registry} as {username}")
