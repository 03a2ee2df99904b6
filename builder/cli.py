"""`hjk-images`: a thin Click layer over the pipeline stages."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from builder import registry as registry_mod
from builder import rootfs
from builder.config import CONFIG_ENV, Settings, load_settings
from builder.errors import FactoryError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)
out_console = Console()


def friendly_errors(func: F) -> F:
    """Turn FactoryError into one clear message and exit 1; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FactoryError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config"))
    settings: Settings = obj["settings"]
    return settings


def note(message: str) -> None:
    err_console.print(message, highlight=False)


registry_option = click.option(
    "--registry", metavar="HOST[:PORT]",
    help="Registry to use (e.g. ghcr.io). Default: factory.yaml's, else the embedded local registry.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV, help=f"Overlay file merged over factory.yaml (also ${CONFIG_ENV}).",
)
@click.version_option(package_name="headjack-images")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Build, test and publish the Headjack agent images (base -> systemd -> dind).

    Typical use: `hjk-images release` runs every stage against the embedded
    local registry; name a registry with --registry or in factory.yaml.
    """
    ctx.ensure_object(dict)["config"] = config_path


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
    reg = registry_mod.embedded(settings_of(ctx), port)
    was_running = registry_mod.answers_v2(reg.address)
    status = reg.up()
    note(f"registry {'already running' if was_running else 'started'} at {status.address} (data: {status.data_dir})")


@registry.command("down")
@port_option
@click.pass_context
@friendly_errors
def registry_down(ctx: click.Context, port: int | None) -> None:
    """Stop the embedded registry (its data is kept)."""
    reg = registry_mod.embedded(settings_of(ctx), port)
    note(f"registry at {reg.address} " + ("stopped" if reg.down() else "was not running"))


@registry.command("status")
@port_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def registry_status(ctx: click.Context, port: int | None, as_json: bool) -> None:
    """Show the embedded registry's address, state and what it stores."""
    reg = registry_mod.embedded(settings_of(ctx), port)
    status = reg.status()
    content = registry_mod.catalog(status.address) if status.running else {}
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

@main.group()
def root() -> None:
    """The variants' root OS image."""


@root.command("bootstrap")
@registry_option
@click.option("--platform", "platforms", multiple=True, help="Limit to these platforms (repeatable).")
@click.pass_context
@friendly_errors
def root_bootstrap(ctx: click.Context, registry: str | None, platforms: tuple[str, ...]) -> None:
    """Make a minimal Debian root per platform from Debian's packages and push one index.

    Root file systems are cached by suite, architecture, package list and mirror.
    """
    settings = settings_of(ctx)
    if settings.config.root.source != "bootstrap":
        raise FactoryError(
            f"root.source is '{settings.config.root.source}' ({settings.config.root.reference}): "
            "nothing to bootstrap"
        )
    target = registry_mod.resolve_registry(settings, registry)
    image = rootfs.bootstrap(settings, target, list(platforms) or None, report=note)
    note(f"root index: {image.reference}")
    for platform, digest in sorted(image.platforms.items()):
        note(f"  {platform}: {digest}")
    click.echo(image.pinned)


@root.command("clear-cache")
@friendly_errors
def root_clear_cache() -> None:
    """Forget cached root file systems (the next bootstrap makes them again)."""
    note(f"removed {rootfs.clear_cache()} cached root file system(s)")
