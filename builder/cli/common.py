"""What every command shares: the group, the error handler, the options, the project a command
works on."""

from __future__ import annotations

import functools
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from builder import project
from builder.engine import commands as tools
from builder.engine import oci
from builder.model.config import CONFIG_ENV, SUPPORTED_PLATFORMS, Settings, load_settings
from builder.model.errors import FactoryError
from builder.present.console import err_console, note

F = TypeVar("F", bound=Callable[..., Any])

def friendly_errors(func: F) -> F:
    """Turn FactoryError into one clear message and exit 1; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FactoryError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def entry() -> None:
    """The console script: the CLI under a last-resort handler, so that no input ends in a
    traceback. Click reports usage errors; commands report FactoryError (friendly_errors);
    anything else is a bug, said in one line with the trace kept in a file."""
    try:
        main(standalone_mode=True)
    except Exception as exc:
        command = next((a for a in sys.argv[1:] if a in main.commands), "")
        fd, trace = tempfile.mkstemp(prefix="hjk-images-trace-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(traceback.format_exc())
        summary = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        named = f"hjk-images {command}".strip()
        err_console.print(f"[bold red]error:[/] {named} failed unexpectedly ({escape(summary)}); "
                          f"the full trace is in {trace}", highlight=False)
        sys.exit(70)


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides = {"namespace": obj["namespace"]} if obj.get("namespace") else {}
        obj["settings"] = load_settings(obj.get("config"), overrides=overrides)
    settings: Settings = obj["settings"]
    return settings


def project_of(ctx: click.Context) -> project.Project:
    """The command's project: settings, variants (with --dockerfile's), lock, each read once."""
    obj = ctx.ensure_object(dict)
    if "project" not in obj:
        team = project.TeamDockerfile(*obj["dockerfile"]) if obj.get("dockerfile") else None
        obj["project"] = project.load_project(settings_of(ctx), team)
    loaded: project.Project = obj["project"]
    return loaded


def dockerfile_options(func: F) -> F:
    """--dockerfile/--name: take a team's own Dockerfile through the pipeline as a variant."""

    def remember(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        obj = ctx.ensure_object(dict)
        obj.setdefault("dockerfile_parts", {})[_param.name] = value
        parts = obj["dockerfile_parts"]
        if parts.get("dockerfile") and parts.get("dockerfile_name"):
            obj["dockerfile"] = (Path(parts["dockerfile"]).resolve(), parts["dockerfile_name"])
        elif "dockerfile" in parts and "dockerfile_name" in parts and bool(parts["dockerfile"]) != bool(
            parts["dockerfile_name"]
        ):
            raise click.UsageError("--dockerfile and --name go together")
        return value

    func = click.option("--name", "dockerfile_name", metavar="NAME", callback=remember, expose_value=False,
                        help="The variant name for --dockerfile.")(func)
    func = click.option("--dockerfile", type=click.Path(exists=True, dir_okay=False), callback=remember,
                        expose_value=False, metavar="PATH",
                        help="A team's own Dockerfile whose FROM is one of our variants: built, tested "
                             "and published like a variant (its checks: the parent's, plus hjk-checks.yaml "
                             "beside it).")(func)
    return func


registry_option = click.option(
    "--registry", metavar="HOST[:PORT]", envvar="HJK_REGISTRY",
    help="Registry to use (e.g. ghcr.io; also $HJK_REGISTRY). Default: factory.yaml's, else the embedded one.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV, help=f"Overlay file merged over factory.yaml (also ${CONFIG_ENV}).",
)
@click.option("--namespace", envvar="HJK_NAMESPACE", metavar="NAME",
              help="Override the namespace images are pushed under (e.g. a GitHub org; also $HJK_NAMESPACE).")
@click.version_option(package_name="headjack-images")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, namespace: str | None) -> None:
    """Build, test and publish the Headjack agent images (base -> systemd -> dind).

    Typical use: `hjk-images release` runs every stage against the embedded
    local registry; name a registry with --registry or in factory.yaml.
    """
    tools.handle_stop_signals()
    try:
        oci.registry_timeout()  # settings from the environment are checked before any work starts
    except FactoryError as exc:
        raise click.ClickException(str(exc)) from None
    obj = ctx.ensure_object(dict)
    obj["config"] = config_path
    obj["namespace"] = namespace.lower() if namespace else None  # OCI names are lower case


# --- variants: render, plan, lint ---------------------------------------------

variant_option = click.option(
    "--variant", "variant_names", multiple=True, metavar="NAME",
    help="Only this variant (repeatable). Default: all.",
)
changed_option = click.option(
    "--changed-since", metavar="GIT_REF",
    help="Only variants whose rendered build context changed since GIT_REF, and their children (for CI).",
)
network_option = click.option(
    "--network", type=click.Choice(["default", "host", "none"]), default=None,
    help="Network for RUN steps (host: reach mirrors served on this machine's loopback).",
)
def client_options(func: F) -> F:
    """--client and --host-user: who starts the images in the smoke tests."""
    func = click.option(
        "--host-user", metavar="NAME",
        help="Run the Dev Containers CLI as this host user (needed as root: root's uid is never remapped; "
             "CI runners' own users need nothing).")(func)
    return click.option(
        "--client", "clients", multiple=True, type=click.Choice(["headjack", "devcontainer"]),
        help="Who starts each image (repeatable): Headjack's label rules (the default), and/or the "
             "Dev Containers CLI as VS Code, Codespaces, DevPod and Headjack's devcontainer mode do.")(func)


platform_option = click.option(
    "--platform", "platforms", multiple=True, metavar="OS/ARCH", type=click.Choice(SUPPORTED_PLATFORMS),
    help="Only this platform (repeatable), e.g. linux/arm64. Default: every platform of each variant.",
)
record_option = click.option(
    "--record", "record_path", type=click.Path(dir_okay=False, path_type=Path),
    help="The build record (JSON) to write or read. Default: the state folder's records/build.json.",
)
sign_key_option = click.option(
    "--sign-key", type=click.Path(dir_okay=False, path_type=Path), envvar="HJK_SIGN_KEY",
    help="cosign private key to sign what is published (password in $COSIGN_PASSWORD; also $HJK_SIGN_KEY).",
)
keyless_option = click.option(
    "--keyless", is_flag=True,
    help="Without --sign-key: sign and attest keyless (OIDC, e.g. in a GitHub workflow with id-token: write).",
)
require_tools_option = click.option(
    "--require-all-tools", is_flag=True, envvar="HJK_REQUIRE_ALL_TOOLS",
    help="Fail before building when an optional tool (goenv, node-build) can't be fetched, instead of "
         "leaving it out: for real releases (also $HJK_REQUIRE_ALL_TOOLS=1).",
)
root_drift_option = click.option(
    "--allow-root-drift", is_flag=True,
    help="Build on a root other than the one images.lock.yaml pins (the Debian archive moved) instead of "
         "refusing; the build and release records name each drifted root.",
)
budget_option = click.option(
    "--allow-over-budget", is_flag=True,
    help="Publish even where an image is over its size budget (said, and kept in the release record).",
)
sbom_option = click.option(
    "--sbom/--no-sbom", "with_sbom", default=True, show_default=True,
    help="Make a CycloneDX SBOM per platform image and attach it in the registry.",
)


def selected(ctx: click.Context, variant_names: tuple[str, ...], changed_since: str | None) -> list[str] | None:
    """The variants asked for; None when --changed-since finds nothing to do."""
    if not changed_since:
        return list(variant_names)
    changed = project.changed_variants(project_of(ctx), changed_since)
    chosen = [n for n in changed if not variant_names or n in variant_names]
    note(f"changed since {changed_since}: {', '.join(chosen) or 'nothing'}")
    return chosen or None


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)
