"""`hjk-images`: a thin Click layer. Each command parses its options, calls a stage or the
runner (`builder.runner`), and prints through `builder.present`."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape
from rich.table import Table

from builder import project, queries, runner
from builder.engine import auth, commands, oci
from builder.engine import registry as registries
from builder.model import starting
from builder.model.allowlist import trivy_ignore
from builder.model.config import CONFIG_ENV, SUPPORTED_PLATFORMS, Settings, load_settings
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, ReleaseRecord, TestResults, load, merge_results, save
from builder.present import report
from builder.present.console import ConsoleObserver, err_console, note, out_console, show, stage_table
from builder.present.plot import size_plot
from builder.stages import lint as lint_stage
from builder.stages import lock, root, scaffold, sign, smoke
from builder.stages import plan as plan_stage
from builder.stages import render as render_stage

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
    commands.handle_stop_signals()
    try:
        oci.registry_timeout()  # settings from the environment are checked before any work starts
    except FactoryError as exc:
        raise click.ClickException(str(exc)) from None
    obj = ctx.ensure_object(dict)
    obj["config"] = config_path
    obj["namespace"] = namespace.lower() if namespace else None  # OCI names are lower case


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


@main.command()
@variant_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write into (default: rendered/ in the project).")
@click.option("--check", is_flag=True, help="Write nothing; fail if rendered/ differs from the templates' output.")
@click.pass_context
@friendly_errors
def render(ctx: click.Context, variant_names: tuple[str, ...], out_dir: Path | None, check: bool) -> None:
    """Render the variants' Dockerfiles (and the files they COPY)."""
    settings = settings_of(ctx)
    rendered = render_stage.render_all(project_of(ctx).variants.select(variant_names), settings)
    target = out_dir or render_stage.default_out_dir(settings)
    if check:
        stale = render_stage.stale(rendered, target, whole_set=not variant_names)
        if stale:
            raise FactoryError(f"rendered Dockerfiles are out of date for: {', '.join(stale)} "
                               f"(in {target}); run `hjk-images render` and commit the result")
        note(f"rendered Dockerfiles in {target} match the templates ({len(rendered)} variants)")
        return
    written, removed = render_stage.write_all(rendered, target, prune=not variant_names and not out_dir)
    for path in written:
        click.echo(str(path))
    for gone in removed:
        note(f"removed {gone}: no variant '{gone.name}' any more")


@main.command()
@variant_option
@platform_option
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan on stdout.")
@click.option("--offline", is_flag=True, help="Don't ask the registry what could be reused.")
@changed_option
@dockerfile_options
@click.pass_context
@friendly_errors
def plan(ctx: click.Context, variant_names: tuple[str, ...], platforms: tuple[str, ...],
         registry: str | None, as_json: bool, offline: bool, changed_since: str | None = None) -> None:
    """Show the build graph: variants x platforms, what each builds on, and what would be built."""
    settings = settings_of(ctx)
    target = project.registry_address(settings, registry)
    names = selected(ctx, variant_names, changed_since)
    prepared = project.prepare(project_of(ctx), target, names, list(platforms)) if names is not None else None
    statuses = project.predict(prepared, target) if prepared and not offline else {}
    if as_json:
        click.echo(json.dumps(plan_stage.plan_document(prepared.plan if prepared else None, statuses), indent=2))
    elif prepared is None:
        click.echo("nothing to build")
    else:
        out_console.print(report.plan_table(prepared.plan, statuses))


@main.command()
@variant_option
@platform_option
@registry_option
@click.option("--builder", help="An existing buildx builder to use (e.g. a multi-node one).")
@click.option("--force", is_flag=True, help="Rebuild even when the registry holds an identical build.")
@click.option("--no-cache", is_flag=True, help="Also bypass the builder's layer cache (implies --force).")
@click.option("--jobs", "max_parallel", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Builds run at the same time.")
@record_option
@network_option
@require_tools_option
@root_drift_option
@click.option("--dry-run", is_flag=True, help="Show what would be built or reused; build nothing.")
@click.option("--load", is_flag=True,
              help="With --dockerfile: build it for this machine's platform only and load it into the local "
                   "engine (as NAME:dev, or --tag) instead of pushing it: the quick local loop.")
@click.option("--tag", "local_tag", metavar="REF", help="With --load: the local tag (default NAME:dev).")
@changed_option
@dockerfile_options
@click.pass_context
@friendly_errors
def build(ctx: click.Context, variant_names: tuple[str, ...], platforms: tuple[str, ...],
          registry: str | None, builder: str | None, force: bool, no_cache: bool,
          max_parallel: int, record_path: Path | None, network: str | None, require_all_tools: bool,
          allow_root_drift: bool, dry_run: bool, load: bool, local_tag: str | None,
          changed_since: str | None) -> None:
    """Build variants for every platform, push them, and join each into a multi-arch index.

    Parents build first; children build FROM their parent's digest. A build whose
    inputs match an image already in the registry is reused, not rebuilt.
    """
    if load:
        build_local(ctx, registry, builder, network, local_tag)
        return
    if dry_run:
        ctx.invoke(plan, variant_names=variant_names, platforms=platforms, registry=registry,
                   as_json=False, offline=False, changed_since=changed_since)
        return
    settings = settings_of(ctx)
    names = selected(ctx, variant_names, changed_since)
    if names is None:
        note("nothing to build")
        return
    target = project.start_registry(settings, registry)
    options = runner.build_options(settings, builder=builder, force=force or no_cache, no_cache=no_cache,
                                   max_parallel=max_parallel, network=network, require_all_tools=require_all_tools,
                                   allow_root_drift=allow_root_drift)
    record = runner.build(settings, target, project.prepare(project_of(ctx), target, names, list(platforms)), options,
                          ConsoleObserver(), record_path)
    if not record.ok:
        skipped = [b.key for b in record.builds if b.status == "skipped"]
        raise FactoryError("some builds failed" + (f"; not built because of them: {', '.join(skipped)}"
                                                   if skipped else ""))


def build_local(ctx: click.Context, registry: str | None, builder: str | None, network: str | None,
                local_tag: str | None) -> None:
    """`build --dockerfile F --name NAME --load`: this platform only, loaded, not pushed."""
    settings = settings_of(ctx)
    team = project_of(ctx).team
    if team is None:
        raise FactoryError("--load builds a team's Dockerfile: give --dockerfile and --name")
    name = team.name
    tag = local_tag or f"{name}:dev"
    target = project.start_registry(settings, registry)  # where the parent lives
    options = runner.build_options(settings, builder=builder, network=network, load={name: tag})
    platform = f"linux/{smoke.host_arch()}"
    record = runner.build(settings, target, project.prepare(project_of(ctx), target, [name], [platform]), options,
                          ConsoleObserver(show_indexes=False))
    if not record.ok:
        raise FactoryError("the build failed")
    click.echo(f"docker run --rm -it {tag}")
    note(f"loaded {tag} ({platform}); with Headjack: hjk run <branch> --image {tag}")


@main.command()
@variant_option
@platform_option
@record_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable sizes on stdout.")
@click.option("--explain", is_flag=True,
              help="Also what weighs most inside each image: Debian packages, npm packages, big files.")
@click.option("--threshold", "threshold_mb", type=click.IntRange(1), default=20, show_default=True,
              help="With --explain: list files over this many MB.")
@click.option("--readme", "readme", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Instead: write the last release record's sizes between the sizes markers of this file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw stacked bars per image (root, inherited, each own layer) into FILE (.svg or .png).")
@click.pass_context
@friendly_errors
def size(ctx: click.Context, variant_names: tuple[str, ...], platforms: tuple[str, ...], record_path: Path | None,
         as_json: bool, explain: bool, threshold_mb: int, readme: Path | None, plot_path: Path | None) -> None:
    """What each built image weighs: compressed (registry) and uncompressed (engine), and the
    layers that weigh the most with the Dockerfile step that made them."""
    if readme:
        write_readme_sizes(readme)
        return
    record = load(record_path or project.default_record_path(), BuildRecord)
    measured = queries.sizes_of(record, list(variant_names), list(platforms))
    inside = queries.weights_of(record, measured, threshold_mb) if explain else []
    if plot_path:
        try:
            size_plot(measured, queries.inherited_layers(record, measured), plot_path)
        except ValueError as exc:
            raise FactoryError(str(exc)) from None
        note(f"plot: {plot_path}")
    if as_json:
        click.echo(json.dumps([{"variant": b.variant, "platform": b.platform, "digest": b.digest,
                                **(b.sizes.model_dump() if b.sizes else {}),
                                **({"inside": inside[i].model_dump()} if inside else {})}
                               for i, b in enumerate(measured)], indent=2))
        return
    out_console.print(report.size_table(measured))
    for build, weights in zip(measured, inside, strict=False):
        out_console.print(report.weights_table(build, weights))


@main.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--no-packages", is_flag=True, help="Skip reading the packages inside both images (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON (for CI).")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the comparison as Markdown here (a pull request body or comment).")
@friendly_errors
def diff_cmd(old: str, new: str, no_packages: bool, as_json: bool, markdown: Path | None) -> None:
    """What a user who has OLD pulls to get NEW: two references (REPO:TAG or REPO@DIGEST), or
    two release records (every variant both published). Per variant and platform: the layers
    shared, the compressed bytes to pull, and the Debian and npm packages that moved."""
    diffs = queries.image_diffs(old, new, packages=not no_packages)
    if markdown:
        markdown.write_text(report.diff_markdown(diffs), encoding="utf-8")
    if as_json:
        click.echo(json.dumps([d.model_dump() for d in diffs], indent=2))
        return
    show(report.diff_table(diffs))


@main.command("pin")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True,
              help="Change nothing; exit 1 naming each FROM that is unpinned or behind the registry's tag.")
@registry_option
@click.pass_context
@friendly_errors
def pin_cmd(ctx: click.Context, files: tuple[Path, ...], check: bool, registry: str | None) -> None:
    """Pin each FROM naming a factory image to the index digest its tag holds now:
    `image:tag@sha256:...`, the tag kept for readability, everything else as it was."""
    lines = runner.pin(project_of(ctx), registry, list(files), check=check)
    behind = [line for line in lines if not line.current]
    for line in behind:
        click.echo(line.describe())
    if check and behind:
        named = " ".join(map(str, files))
        raise FactoryError(f"{len(behind)} FROM line(s) unpinned or behind: run `hjk-images pin {named}`")
    note(f"{len(lines)} FROM line(s) naming a factory image, {len(behind)} {'behind' if check else 'moved'}"
         if lines else "no FROM line names a factory image")


@main.command("feature")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/feature"),
              show_default=True, help="Folder to write the Feature into (as FOLDER/<id>/).")
@click.option("--dockerfile", is_flag=True,
              help="Also print the Dockerfile lines that run the same install from FOLDER (for plain Docker "
                   "builds; FOLDER relative to the build context).")
@click.option("--publish", is_flag=True,
              help="Publish it to REGISTRY/NAMESPACE/features/<id> (as `release` does beside the images) and sign it.")
@registry_option
@sign_key_option
@keyless_option
@click.option("--json", "as_json", is_flag=True, help="With --publish: print what was published as JSON.")
@click.pass_context
@friendly_errors
def feature_cmd(ctx: click.Context, out_dir: Path, dockerfile: bool, publish: bool, registry: str | None,
                sign_key: Path | None, keyless: bool, as_json: bool) -> None:
    """Write the agents Dev Container Feature (devcontainer-feature.json, install.sh), made
    from the variant data: the agents' pins and settings, and Node where an image has none."""
    made = queries.agents_feature(project_of(ctx))
    home = made.write(out_dir)
    note(f"feature {made.id} {made.version} written to {home}")
    if dockerfile:
        click.echo(made.dockerfile_fragment(out_dir.as_posix()), nl=False)
    if publish:
        shipped = runner.publish_feature(project_of(ctx), registry, sign_key, keyless, ConsoleObserver())
        if as_json:
            click.echo(shipped.model_dump_json(indent=2))


@main.command("run-args")
@click.argument("variant_name", metavar="VARIANT")
@click.option("--client", "client", type=click.Choice(list(starting.CLIENTS)), default="docker", show_default=True,
              help="Who starts it: Headjack (labels), Headjack's --image or devcontainer mode, a "
                   "devcontainer.json, docker or podman.")
@click.option("--reference", metavar="REF", help="The image to start. Default: the published VARIANT, pinned to "
              "the digest of the last release (release record), else of its tag in the registry.")
@registry_option
@click.option("--readme", "readme", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Instead: write every variant's commands into this file's starting markers (README).")
@click.pass_context
@friendly_errors
def run_args(ctx: click.Context, variant_name: str, client: str, reference: str | None, registry: str | None,
             readme: Path | None) -> None:
    """Print how CLIENT starts a published VARIANT: the exact command, or the devcontainer.json.

    Made from the variant's data (its runtime flags, init and devcontainer metadata),
    never typed by hand; `--readme README.md` writes the README's "Starting the variants".
    """
    settings = settings_of(ctx)
    variants = project_of(ctx).variants
    if readme:
        repository = f"{settings.config.registry or 'ghcr.io'}/{settings.config.namespace}/{settings.config.image}"
        text = report.starting_markdown(list(variants), repository)
        try:
            readme.write_text(report.with_section(readme.read_text(encoding="utf-8"), "starting", text))
        except ValueError as exc:
            raise FactoryError(f"{readme}: {exc}") from None
        note(f"{readme}: start commands of {len(variants.names)} variants written")
        return
    variant = variants[variant_name]
    pinned = reference or queries.published_reference(settings, variant.name, registry)
    out_console.print(starting.command(variant, pinned, client), markup=False, highlight=False, soft_wrap=True)


def write_readme_sizes(readme: Path) -> None:
    release = load(project.default_release_path(), ReleaseRecord)
    if not any(v.sizes for v in release.variants):
        raise FactoryError(f"{project.default_release_path()} holds no sizes: release again first")
    try:
        readme.write_text(report.with_sizes(readme.read_text(encoding="utf-8"), report.sizes_markdown(release)))
    except ValueError as exc:
        raise FactoryError(f"{readme}: {exc}") from None
    note(f"{readme}: sizes of the release of {release.created} written")


@main.command()
@click.pass_context
@friendly_errors
def lint(ctx: click.Context) -> None:
    """hadolint on the rendered Dockerfiles, yamllint on the variant files, shellcheck on the
    helper scripts and the agents Feature's installer, Headjack's label contract, and the
    workflows' hjk-images commands."""
    settings = settings_of(ctx)
    variants = project_of(ctx).variants.select([])
    rendered = render_stage.render_all(variants, settings)
    # a fork without the Feature's variant makes no Feature (`feature` itself says so)
    agents = settings.config.feature
    made = queries.agents_feature(project_of(ctx)) if agents and agents.variant in project_of(ctx).variants else None
    generated = {f"feature {made.id}/{name}": text for name, text in made.files.items()
                 if text.startswith("#!")} if made else {}
    findings = lint_stage.lint(settings, rendered, [v.path for v in variants], main, generated)
    for finding in findings:
        note(f"[red]{finding.tool}[/] {finding.target}:\n{escape(finding.output.strip())}")
    if findings:
        raise FactoryError(f"lint found problems in {len(findings)} target(s)")
    note(f"lint clean: {len(rendered)} Dockerfiles, {len(variants)} variant files")


@main.command("test")
@variant_option
@platform_option
@click.option("--image", "image_ref", metavar="REF",
              help="Test this image (index or single) instead of the build record's.")
@record_option
@click.option("--results", "results_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results (JSON) here; publish reads them. Default: the state folder's records/test.json.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a JUnit XML report here (for CI).")
@click.option("--jobs", "parallel", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Images tested at the same time.")
@changed_option
@client_options
@dockerfile_options
@click.pass_context
@friendly_errors
def test_cmd(ctx: click.Context, variant_names: tuple[str, ...], platforms: tuple[str, ...], image_ref: str | None,
             record_path: Path | None, results_path: Path | None, junit_path: Path | None, parallel: int,
             changed_since: str | None, clients: tuple[str, ...], host_user: str | None) -> None:
    """Smoke-test built images on every platform, started the way Headjack starts them.

    Runs each variant's declared checks plus its ancestors', and the runtime
    check modules in variants/checks/. With `--client devcontainer` each image is
    also started by the Dev Containers CLI (a devcontainer.json naming only the
    image) and checked there: the remote user and its uid, the workspace, PID 1,
    systemd, the inner engine, the agents. Exits non-zero if any check fails.
    """
    settings = settings_of(ctx)
    variants = project_of(ctx).variants
    names = selected(ctx, variant_names, changed_since)
    if names is None:
        note("nothing to test")
        return
    variants.select(names)  # unknown names fail here
    if image_ref:
        if len(names) > 1:
            raise FactoryError("--image takes at most one --variant")
        targets = smoke.image_targets(image_ref, names[0] if names else None, list(platforms))
    else:
        record = load(record_path or project.default_record_path(), BuildRecord)
        targets = smoke.targets_of(record, names, list(platforms))
    results = runner.test(settings, variants, targets, ConsoleObserver(), parallel=parallel,
                          results_path=results_path, junit_path=junit_path,
                          clients=runner.Clients(clients or ("headjack",), host_user))
    if not results.passed:
        raise FactoryError("smoke tests failed")


@main.command("publish")
@record_option
@click.option("--results", "results_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Test results, repeatable (one per platform runner). Default: the last test run's.")
@click.option("--version", "version", help="Release version for the immutable V-<version> tag "
              "(default: from a git tag images/vX.Y.Z on HEAD).")
@click.option("--force", is_flag=True, help="Allow moving an immutable tag to a different digest.")
@click.option("--dry-run", is_flag=True, help="Print exactly what would be tagged; change nothing.")
@click.option("--release-record", "release_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the release record here (default: the state folder's records/release.json).")
@variant_option
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH", type=click.Choice(SUPPORTED_PLATFORMS),
              help="Publish a one-platform index (repeatable): a team image built for these platforms only. "
                   "Default: every platform the variant declares.")
@sign_key_option
@sbom_option
@budget_option
@keyless_option
@dockerfile_options
@click.pass_context
@friendly_errors
def publish_cmd(ctx: click.Context, record_path: Path | None, results_paths: tuple[Path, ...], version: str | None,
                force: bool, dry_run: bool, release_path: Path | None, variant_names: tuple[str, ...],
                platforms: tuple[str, ...], sign_key: Path | None, with_sbom: bool, allow_over_budget: bool,
                keyless: bool) -> None:
    """Move the public tags to tested indexes: only what passed, one step per variant.

    With --sign-key, each published index and its platform images are signed (cosign).
    """
    settings = settings_of(ctx)
    record = load(record_path or project.default_record_path(), BuildRecord)
    results = merge_results([load(p, TestResults) for p in results_paths or (project.default_results_path(),)])
    request = runner.PublishRequest(version=version, force=force, dry_run=dry_run, only=list(variant_names),
                                    sign_key=sign_key, with_sbom=with_sbom, release_path=release_path,
                                    allow_over_budget=allow_over_budget, keyless=keyless, platforms=list(platforms))
    runner.publish(settings, project_of(ctx).variants, record, results, request, ConsoleObserver())


@main.command()
@variant_option
@platform_option
@registry_option
@click.option("--version", "version", help="Release version (default: a git tag images/vX.Y.Z on HEAD).")
@click.option("--force", is_flag=True, help="Rebuild everything, and allow moving immutable tags.")
@click.option("--jobs", "max_parallel", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Builds (and image tests) run at the same time.")
@network_option
@require_tools_option
@root_drift_option
@click.option("--dry-run", is_flag=True, help="Show the plan; build, test and publish nothing.")
@sign_key_option
@sbom_option
@budget_option
@client_options
@dockerfile_options
@click.pass_context
@friendly_errors
def release(ctx: click.Context, variant_names: tuple[str, ...], platforms: tuple[str, ...], registry: str | None,
            version: str | None, force: bool, max_parallel: int, network: str | None, require_all_tools: bool,
            allow_root_drift: bool, dry_run: bool, sign_key: Path | None, with_sbom: bool, allow_over_budget: bool,
            clients: tuple[str, ...], host_user: str | None) -> None:
    """The main job: render -> build -> test -> publish, stopping at the first failed stage.

    With no --registry and none in factory.yaml, it starts the embedded local
    registry and bootstraps the root image there.
    """
    if dry_run:
        ctx.invoke(plan, variant_names=variant_names, platforms=platforms, registry=registry,
                   as_json=False, offline=False)
        return
    request = runner.ReleaseRequest(
        registry=registry, variant_names=list(variant_names), platforms=list(platforms), force=force,
        max_parallel=max_parallel, network=network, require_all_tools=require_all_tools,
        allow_root_drift=allow_root_drift, clients=runner.Clients(clients or ("headjack",), host_user),
        publish=runner.PublishRequest(version=version, force=force, sign_key=sign_key, with_sbom=with_sbom,
                                      allow_over_budget=allow_over_budget),
    )
    observer = ConsoleObserver(show_indexes=False)
    try:
        runner.release(project_of(ctx), request, observer)
    finally:
        stage_table(observer.stages)


@main.command()
@click.argument("record_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--record", "record_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged build record here (default: the state folder's records/build.json).")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH", type=click.Choice(SUPPORTED_PLATFORMS),
              help="Only these platforms were built (repeatable): a team image released for fewer platforms "
                   "than its variant declares. Default: every declared platform.")
@dockerfile_options
@click.pass_context
@friendly_errors
def merge(ctx: click.Context, record_files: tuple[Path, ...], record_path: Path | None,
          platforms: tuple[str, ...]) -> None:
    """Join per-platform build records (e.g. one per CI runner) into multi-arch indexes.

    Refuses a variant whose declared platforms (or those --platform names) are not all built.
    """
    declared = {v.name: [p for p in v.platforms if not platforms or p in platforms] for v in project_of(ctx).variants}
    merged = runner.merge([load(p, BuildRecord) for p in record_files], declared)
    saved = save(merged, record_path or project.default_record_path())
    out_console.print(report.index_summary(merged))
    note(f"merged build record: {saved}")


@main.command()
@click.argument("reference")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="cosign public key. Without it, a keyless (OIDC) signature is expected.")
@click.option("--certificate-identity-regexp", "identity", metavar="REGEX",
              help="Keyless: who must have signed. Default: a workflow of source_url's repository.")
@click.option("--certificate-oidc-issuer", "issuer", default="https://token.actions.githubusercontent.com",
              show_default=True, help="Keyless: the OIDC issuer of the signer's certificate.")
@click.option("--release-record", "release_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The provenance must name this release's commit (default: the last release record, if any).")
@click.option("--json", "as_json", is_flag=True, help="Print what was verified as JSON.")
@click.pass_context
@friendly_errors
def verify(ctx: click.Context, reference: str, key: Path | None, identity: str | None, issuer: str,
           release_path: Path | None, as_json: bool) -> None:
    """Check what REFERENCE (an index or image) promises: its cosign signature, and on each of
    its platform images a signed SBOM and a signed provenance naming the release's commit."""
    identity = identity or sign.default_identity(settings_of(ctx).config.source_url)
    release_file = release_path or project.default_release_path()
    commit = load(release_file, ReleaseRecord).revision if release_file.is_file() else None
    verdicts = sign.verify_all(reference, key, identity, issuer, commit)
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in verdicts], indent=2))
    for v in verdicts:
        note(f"{'[green]verified[/]' if v.ok else '[red]MISSING[/]'} {v.what} {v.reference}: {escape(v.detail)}")
    failed = [v for v in verdicts if not v.ok]
    if failed:
        raise FactoryError("\n".join(v.detail for v in failed))
    click.echo(f"verified: {reference}")


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


@main.command("new-variant")
@click.argument("name")
@click.option("--parent", default="base", show_default=True, help="The variant to build on.")
@click.pass_context
@friendly_errors
def new_variant(ctx: click.Context, name: str, parent: str) -> None:
    """Write a commented starting variant file NAME.yaml and its check module, then say what to run."""
    settings = settings_of(ctx)
    # validating reads the variants again: the new file was just written
    written = scaffold.new_variant(settings.variants_dir, name, parent, project_of(ctx).variants,
                                   validate=lambda: project.variants_of(settings)[name])
    for path in written:
        click.echo(str(path))
    steps = ("plan", "render", "build", "test", "release")
    note("next:\n" + f"  edit {written[0]}\n" + "\n".join(f"  hjk-images {s} --variant {name}" for s in steps))


@main.command("bump")
@click.option("--only", "only", multiple=True, metavar="TOOL", help="Only this tool (repeatable).")
@click.option("--group", metavar="NAME", help="Only the tools of this group (factory.yaml: bump.groups).")
@click.option("--dry-run", is_flag=True, help="Print the table, write nothing, exit 0.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when any pin would move.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as Markdown here (a pull request body).")
@click.option("--pins", "pin_files", multiple=True, metavar="DOCKERFILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also move the factory FROM pins of this team Dockerfile to what the registry's tags hold "
                   "now, as `pin` does (repeatable); they join the same table.")
@registry_option
@click.pass_context
@friendly_errors
def bump_cmd(ctx: click.Context, only: tuple[str, ...], group: str | None, dry_run: bool, check: bool,
             as_json: bool, markdown: Path | None, pin_files: tuple[Path, ...], registry: str | None) -> None:
    """Move every tool pin to the newest release its source offers, within its policy.

    npm: the `latest` dist-tag; PyPI: the newest final release; apt: the version the
    root's suite serves now; archives: their `feed:` (npm:PACKAGE or github:OWNER/REPO).
    Per tool, `update:` (latest, minor, patch, pinned) bounds the move and `min_age:`
    (default bump.min_age, 2d) holds back releases younger than that. Deprecated and
    yanked releases are never chosen. The variant files keep their comments and layout;
    the lock is rewritten to match. Nothing is written when a source can't be reached.
    """
    outcome = runner.bump(project_of(ctx), runner.BumpRequest(list(only), group, dry_run or check, list(pin_files),
                                                              registry), ConsoleObserver())
    bumps = outcome.bumps
    if as_json:
        click.echo(json.dumps([b.model_dump() for b in bumps], indent=2))
    else:
        out_console.print(report.bump_table(bumps))
    if markdown:
        markdown.write_text(report.bump_markdown(bumps), encoding="utf-8")
    moving = [b for b in bumps if b.moves]
    for path in outcome.written:
        note(f"wrote {path}")
    failed = [b for b in bumps if b.status == "error"]
    stuck = [b for b in bumps if b.status == "problem"]
    if failed:
        unwritten = " nothing was written." if any(b.unreachable for b in failed) and moving else ""
        raise FactoryError(f"{len(failed)} tool(s) could not be checked: "
                           + "; ".join(f"{b.variant}/{b.tool}: {b.detail}" for b in failed) + unwritten)
    if stuck:
        raise FactoryError("pins on withdrawn releases: "
                           + "; ".join(f"{b.variant}/{b.tool}: {b.detail}" for b in stuck))
    if check and moving:
        raise FactoryError(f"{len(moving)} pin(s) would move")
    note(f"{len(moving)} pin(s) " + ("would move (dry run: nothing written)" if dry_run or check else "moved")
         if moving else "every pin is current")


@main.command("scan-policy")
@click.option("--variant", metavar="NAME", help="Only the entries for this variant.")
@click.option("--trivy-ignore", "ignore_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the entries as Trivy's ignore file (.trivyignore.yaml) here.")
@click.pass_context
@friendly_errors
def scan_policy(ctx: click.Context, variant: str | None, ignore_file: Path | None) -> None:
    """Check the vulnerability allow-list and write it for the scanner.

    Every entry needs an id, a reason and an expiry date; an expired entry fails, so
    an accepted finding is looked at again. The release and scan workflows run this
    before Trivy, which fails on critical findings that have a fix.
    """
    settings = settings_of(ctx)
    path = settings.allowlist_path
    entries = queries.accepted_findings(project_of(ctx), variant, dt.datetime.now(dt.UTC).date())
    if ignore_file:
        ignore_file.write_text(trivy_ignore(entries), encoding="utf-8")
        note(f"wrote {ignore_file}")
    note(f"{path}: {len(entries)} accepted finding(s) for {variant or 'every variant'}, none expired")


@main.command("lock")
@click.option("--check", is_flag=True,
              help="Change nothing; fail with a diff when the lock is stale: against the variant files, the "
                   "root reference's digest now and the root pins the registry holds (CI gates on it).")
@click.option("--offline", is_flag=True,
              help="With --check: compare the lock with the variant files alone (no registry is asked).")
@registry_option
@click.option("--update", is_flag=True, help="Re-resolve the pins and report what moved, from what to what.")
@click.option("--only", metavar="NAME", help="With --update: only `root` or one tool (by name).")
@click.option("--record-debian", "debian_from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Record the Debian packages each image of this build record installed, and report drift.")
@click.pass_context
@friendly_errors
def lock_cmd(ctx: click.Context, check: bool, offline: bool, registry: str | None, update: bool, only: str | None,
             debian_from: Path | None) -> None:
    """Write images.lock.yaml: the root image's digests and every tool's pin.

    A bootstrapped root is pinned per platform by digest, with the Debian packages
    inside. `--update` (or `--update --only root`) makes it again from the archive
    (mmdebstrap: minutes for arm64 under emulation) and names the packages that
    moved it; without --update the pinned digests stay while the root's inputs do.

    Debian's archive drops old versions, so apt versions can't be pinned (point the
    root's mirror at a snapshot mirror to fix the archive's state); --record-debian
    keeps what each image actually installed, and says what changed since last time.
    """
    settings = settings_of(ctx)
    variants = project_of(ctx).variants
    path = lock.lock_path(settings)
    if offline and not check:
        raise click.UsageError("--offline goes with --check")
    if debian_from:
        installed = queries.debian_versions(load(debian_from, BuildRecord))
        drift = lock.record_debian(path, installed)
        echo_lines(drift)
        note(f"{path}: Debian packages of {len(installed)} images recorded, {len(drift)} changed")
    elif check:
        checked = queries.check_lock(project_of(ctx), registry, offline=offline)
        if checked.stale.diff:
            for line in checked.stale.moves:
                note(line)
            echo_lines(checked.stale.diff)
            raise FactoryError(f"{path} is stale: run `hjk-images lock --update` and commit it")
        if checked.root_problems:
            echo_lines(checked.root_problems)
            raise FactoryError(f"{path}: the root pins don't match what {checked.registry} holds")
        note(f"{path} is current" + (" with the variant files (offline: no registry was asked)" if offline else ""))
    else:
        # the root's digests are made again from the archive only when asked to move
        fresh = update and only in (None, "root")
        pins = runner.lock_pins(settings, fresh=fresh, report=note) if only in (None, "root") \
            else lock.root_pins(settings, lock.load(settings))
        moved = lock.update(settings, variants, only, pins)
        echo_lines(moved)
        note(f"{path}: " + (f"{len(moved)} pin(s) moved" if moved else "nothing moved"))
        if update and not moved:
            note("every pin is current")


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)
