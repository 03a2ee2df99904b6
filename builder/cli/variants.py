"""The variant files and what they make: render, plan, lint, a new variant, how to start an
image, the agents Feature."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from builder import project, queries, runner
from builder.cli.common import (
    changed_option,
    dockerfile_options,
    friendly_errors,
    keyless_option,
    main,
    platform_option,
    project_of,
    registry_option,
    selected,
    settings_of,
    sign_key_option,
    variant_option,
)
from builder.model import starting
from builder.model.errors import FactoryError
from builder.present import report
from builder.present.console import ConsoleObserver, note, out_console
from builder.stages import lint as lint_stage
from builder.stages import plan as plan_stage
from builder.stages import render as render_stage
from builder.stages import scaffold


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
