"""What people see: a live board of running builds and the tables at the end.

On a terminal the board redraws in place; elsewhere (CI logs) every change is
one plain, timestamped line.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from builder.model import starting
from builder.model.graph import Plan
from builder.model.records import BuildRecord, Bump, ImageDiff, PlatformBuild, ReleaseRecord, TestResults, Weights
from builder.model.variants import Variant

STYLES = {
    "waiting": "dim", "building": "cyan", "built": "green", "reused": "green",
    "failed": "bold red", "skipped": "yellow",
}


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def short_digest(digest: str | None) -> str:
    return digest.split(":", 1)[1][:12] if digest and ":" in digest else "-"


class Board:
    """Listener for build progress events; use as a context manager."""

    def __init__(self, plan: Plan, console: Console) -> None:
        self.console = console
        self.lock = threading.Lock()
        self.status: dict[str, tuple[str, str, float]] = {
            j.key: ("waiting", "", time.monotonic()) for j in plan.jobs
        }
        self.started = time.monotonic()
        self.live: Live | None = None

    def _table(self) -> Table:
        table = Table("build", "state", "elapsed", "detail", title="hjk-images build")
        now = time.monotonic()
        for key, (state, detail, since) in self.status.items():
            elapsed = f"{now - since:.0f}s" if state == "building" else ""
            table.add_row(key, f"[{STYLES.get(state, '')}]{state}[/]", elapsed, escape(detail[:60]))
        return table

    def __enter__(self) -> Board:
        if self.console.is_terminal:
            # redrawn from the current state twice a second, so elapsed times keep counting
            self.live = Live(get_renderable=self._table, console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.__exit__(exc_type, exc, tb)

    def __call__(self, key: str, state: str, detail: str) -> None:
        with self.lock:
            previous = self.status.get(key, ("", "", 0.0))
            if previous[0] == state:
                return
            self.status[key] = (state, detail, time.monotonic())
            if self.live is None:
                stamp = time.strftime("%H:%M:%S")
                first_line = detail.splitlines()[0] if detail else ""
                self.console.print(escape(f"[{stamp}] {key}: {state} {first_line}".rstrip()), highlight=False)


def build_summary(record: BuildRecord) -> Table:
    table = Table("variant", "platform", "digest", "compressed", "unpacked", "time", "result", title="build summary")
    for b in record.builds:
        table.add_row(
            b.variant, b.platform, short_digest(b.digest), human_size(b.size_bytes),
            human_size(b.sizes.uncompressed if b.sizes else None),
            f"{b.duration_s:.0f}s", f"[{STYLES.get(b.status, '')}]{b.status}[/]",
        )
    return table


BUMP_STYLES = {"bump": "green", "waiting": "yellow", "problem": "red", "error": "red", "unchecked": "dim",
               "pinned": "dim", "current": ""}


def bump_table(bumps: list[Bump]) -> Table:
    """tool, variant, from, to, release date and notes link: the body of a refresh pull request."""
    table = Table("tool", "variant", "from", "to", "released", "release notes", "", title="hjk-images bump")
    for b in sorted(bumps, key=lambda b: (not b.moves, b.status != "error", b.variant, b.tool)):
        style = BUMP_STYLES.get(b.status, "")
        to = escape(b.target or f"({b.status})")
        table.add_row(b.tool, b.variant, escape(b.current), f"[{style}]{to}[/]" if style else to, b.released,
                      escape(b.notes), escape(b.detail))
    return table


def bump_markdown(bumps: list[Bump]) -> str:
    """The same table as Markdown, for a pull request body."""
    lines = ["| tool | variant | from | to | released | release notes | note |", "|---|---|---|---|---|---|---|"]
    for b in sorted(bumps, key=lambda b: (not b.moves, b.variant, b.tool)):
        cells = [b.tool, b.variant, b.current, b.target or f"({b.status})", b.released, b.notes, b.detail]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def index_summary(record: BuildRecord) -> Table:
    table = Table("variant", "index", "platforms", title="indexes")
    for v in record.variants:
        table.add_row(v.name, f"{v.tag}@{v.digest}" if v.digest else "[red]not indexed[/]", ", ".join(v.platforms))
    return table


def plan_table(plan: Plan, statuses: dict[str, str] | None = None) -> Table:
    table = Table("order", "variant", "platform", "builds on", "would", title=f"plan for {plan.repository}")
    for job in sorted(plan.jobs, key=lambda j: (j.level, j.variant, j.platform)):
        table.add_row(
            str(job.level), job.variant, job.platform, job.parent,
            (statuses or {}).get(job.key, "build"),
        )
    return table


def test_summary(results: TestResults) -> Table:
    table = Table("variant", "platform", "started by", "image", "checks", "failed", "omitted", "result",
                  title="smoke tests")
    for image in results.images:
        failed = sum(c.status == "failed" for c in image.checks) + (1 if image.error else 0)
        omitted = sum(c.status == "omitted" for c in image.checks)
        table.add_row(
            image.variant, image.platform, image.client, short_digest(image.reference.split("@")[-1]),
            str(len(image.checks)), str(failed), str(omitted),
            {"passed": "[green]passed[/]", "failed": "[bold red]FAILED[/]"}.get(
                image.verdict, f"[yellow]{image.verdict}[/]"),
        )
    return table


def size_table(builds: list[PlatformBuild], top: int = 5) -> Table:
    """Per image: compressed and uncompressed totals, then its biggest layers and their steps."""
    table = Table("variant", "platform", "compressed", "uncompressed", "biggest layers (uncompressed, step)",
                  title="image sizes")
    for b in builds:
        sizes = b.sizes
        if sizes is None:
            continue
        biggest = sorted(sizes.layers, key=lambda layer: layer.uncompressed or layer.compressed, reverse=True)[:top]
        lines = [f"{human_size(layer.uncompressed or layer.compressed)}  {escape(layer.step[:70]) or '?'}"
                 for layer in biggest]
        table.add_row(b.variant, b.platform, human_size(sizes.compressed), human_size(sizes.uncompressed),
                      "\n".join(lines))
    return table


def sizes_markdown(release: ReleaseRecord) -> str:
    """The release's sizes as a Markdown table, for the README."""
    rows = ["| variant | platform | compressed | unpacked |", "|---|---|---|---|"]
    for variant in release.variants:
        for platform, sizes in sorted(variant.sizes.items()):
            rows.append(f"| `{variant.variant}` | {platform} | {human_size(sizes.compressed)} | "
                        f"{human_size(sizes.uncompressed)} |")
    rows.append("")
    rows.append(f"Release of {release.created}, revision `{release.revision[:12]}`.")
    return "\n".join(rows)


SIZES_START, SIZES_END = "<!-- sizes:start -->", "<!-- sizes:end -->"


def with_section(document: str, name: str, text: str) -> str:
    """DOCUMENT with the text between the `<!-- NAME:start -->` and `<!-- NAME:end -->` markers
    replaced by TEXT."""
    first, last = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    start, end = document.find(first), document.find(last)
    if start < 0 or end < start:
        raise ValueError(f"no {first} ... {last} markers")
    return document[: start + len(first)] + "\n" + text + "\n" + document[end:]


def with_sizes(document: str, table: str) -> str:
    """DOCUMENT with the text between the sizes markers replaced by TABLE."""
    return with_section(document, "sizes", table)


CLIENT_TITLES = {
    "headjack": "Headjack, reading the image's labels",
    "headjack-image": "Headjack's --image mode (reads no labels: runtime flags after --)",
    "headjack-devcontainer": "Headjack's devcontainer mode",
    "devcontainer": "the Dev Containers CLI (VS Code, Codespaces and DevPod read the same file)",
    "docker": "docker run",
    "podman": "podman run",
}


def starting_markdown(variants: list[Variant], repository: str) -> str:
    """Every variant's start command per client, one block per variant, for the README."""
    parts = []
    for variant in variants:
        reference = f"{repository}:{variant.name}"
        lines = [f"# {CLIENT_TITLES[c]}\n{starting.command(variant, reference, c)}" for c in starting.CLIENTS]
        parts.append(f"`{variant.name}`:\n\n```sh\n" + "\n\n".join(lines) + "\n```")
    return "\n\n".join(parts)


def weights_table(build: PlatformBuild, weights: Weights) -> Table:
    """The heaviest Debian packages, npm packages and files inside one image, side by side."""
    table = Table("Debian package", "installed", "npm package", "on disk", "file", "size",
                  title=f"what weighs most in {build.variant} {build.platform}")
    columns = (weights.debian, weights.npm, weights.files)
    for row in range(max(len(c) for c in columns) if any(columns) else 0):
        cells: list[str] = []
        for column in columns:
            name, size = column[row] if row < len(column) else ("", None)
            cells += [escape(name[-60:]), human_size(size) if name else ""]
        table.add_row(*cells)
    return table


def diff_markdown(diffs: list[ImageDiff], title: str = "What an update costs to pull") -> str:
    """The same as Markdown, for a pull request: one row per variant and platform, then the
    packages that moved in each."""
    lines = [f"### {title}", "", "| variant | platform | shared layers | new layers | to pull | of |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {d.variant} | {d.platform} | {d.shared_layers} | {d.new_layers} | {human_size(d.bytes_to_pull)} "
              f"| {human_size(d.new_bytes)} |" for d in diffs]
    for d in (d for d in diffs if d.packages):
        lines += ["", f"<details><summary>{d.variant} {d.platform}: {len(d.packages)} package(s) moved</summary>",
                  "", *(f"- `{p}`" for p in d.packages), "", "</details>"]
    return "\n".join(lines) + "\n"


def diff_table(diffs: list[ImageDiff]) -> Table:
    """Per variant and platform: what a user who has the old image pulls for the new one."""
    table = Table("variant", "platform", "shared layers", "new layers", "to pull", "of", "packages moved",
                  title="what an update costs to pull")
    for d in diffs:
        moved = "\n".join(escape(p) for p in d.packages[:12]) + (f"\n(+{len(d.packages) - 12} more)"
                                                                if len(d.packages) > 12 else "")
        table.add_row(d.variant, d.platform, str(d.shared_layers), str(d.new_layers), human_size(d.bytes_to_pull),
                      human_size(d.new_bytes), moved or "-")
    return table
