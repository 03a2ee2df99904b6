"""The pipeline: build, test, publish, release, merge."""

from __future__ import annotations

from pathlib import Path

import click

from builder import pipeline, project, runner
from builder.cli.common import (
    budget_option,
    changed_option,
    client_options,
    dockerfile_options,
    friendly_errors,
    keyless_option,
    main,
    network_option,
    platform_option,
    project_of,
    record_option,
    registry_option,
    require_tools_option,
    root_drift_option,
    sbom_option,
    selected,
    settings_of,
    sign_key_option,
    variant_option,
)
from builder.cli.variants import plan
from builder.model.config import SUPPORTED_PLATFORMS
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, TestResults, load, merge_results, save
from builder.present import report
from builder.present.console import ConsoleObserver, note, out_console, stage_table
from builder.stages import smoke


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
    request = pipeline.ReleaseRequest(
        registry=registry, variant_names=list(variant_names), platforms=list(platforms), force=force,
        max_parallel=max_parallel, network=network, require_all_tools=require_all_tools,
        allow_root_drift=allow_root_drift, clients=runner.Clients(clients or ("headjack",), host_user),
        publish=runner.PublishRequest(version=version, force=force, sign_key=sign_key, with_sbom=with_sbom,
                                      allow_over_budget=allow_over_budget),
    )
    observer = ConsoleObserver(show_indexes=False)
    try:
        pipeline.release(project_of(ctx), request, observer)
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
