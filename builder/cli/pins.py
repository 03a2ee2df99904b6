"""Pins: team Dockerfiles' FROM lines, the tools' versions (bump), the lock."""

from __future__ import annotations

import json
from pathlib import Path

import click

from builder import queries, runner
from builder.cli.common import (
    echo_lines,
    friendly_errors,
    main,
    project_of,
    registry_option,
    settings_of,
)
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, load
from builder.present import report
from builder.present.console import ConsoleObserver, note, out_console
from builder.stages import lock


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
