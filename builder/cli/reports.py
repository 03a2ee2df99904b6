"""Read-only looks at what was made: sizes, diffs, signatures, the scan policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from rich.markup import escape

from builder import project, queries
from builder.cli.common import (
    friendly_errors,
    main,
    platform_option,
    project_of,
    record_option,
    settings_of,
    variant_option,
)
from builder.model.allowlist import trivy_ignore
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, ReleaseRecord, load
from builder.present import report
from builder.present.console import note, out_console, show
from builder.present.plot import size_plot
from builder.stages import sign


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
