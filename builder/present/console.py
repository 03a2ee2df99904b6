"""The terminal side of a run: progress and notes on stderr, tables and references to
copy on stdout. `ConsoleObserver` is what the CLI hands the runner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from builder.model.graph import Plan
from builder.model.records import BuildRecord, ImageResult, ReleaseRecord, TagPlan, TestResults
from builder.present import report

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console()


def note(message: str) -> None:
    err_console.print(message, highlight=False)


def show(renderable: Any) -> None:
    out_console.print(renderable)


def build_failures(record: BuildRecord) -> None:
    """Each failed build with where it failed and the tail of its output."""
    for failed in (b for b in record.builds if b.status == "failed"):
        note(f"[red]{failed.variant} {failed.platform} failed[/]; log: {failed.log}\n{escape(failed.error or '')}")


def test_results(results: TestResults) -> None:
    """The per-image table, then every failure with its check named and, for a failed image, its logs."""
    show(report.test_summary(results))
    for image in results.images:
        if image.deviation:
            who = "Headjack" if image.client == "headjack" else "the Dev Containers CLI"
            note(f"[yellow]{image.variant} {image.platform}: started as {who} does, except: "
                 f"{escape(image.deviation)}[/]")
        if image.error:
            note(f"[red]{image.variant} {image.platform}: {escape(image.error)}[/]")
        for check in (c for c in image.checks if c.status == "failed"):
            note(f"[red]{image.variant} {image.platform}: check '{escape(check.name)}' failed:[/] "
                 f"{escape(check.detail)}")
        if not image.passed and image.logs:
            note(f"--- container logs ({image.variant} {image.platform}) ---\n{escape(image.logs[-3000:])}")


def stage_table(rows: list[tuple[str, str]]) -> None:
    table = Table("stage", "result", title="release")
    for name, outcome in rows:
        table.add_row(name, outcome)
    show(table)


class ConsoleObserver:
    """Shows a run as it goes; keeps the stages it was told of for the release table."""

    def __init__(self, *, show_indexes: bool = True) -> None:
        self.stages: list[tuple[str, str]] = []
        self.show_indexes = show_indexes

    def note(self, message: str) -> None:
        note(message)

    def board(self, plan: Plan) -> AbstractContextManager[report.Board]:
        @contextmanager
        def live() -> Iterator[report.Board]:
            with report.Board(plan, err_console) as board:
                yield board
        return live()

    def built(self, record: BuildRecord, saved: Path) -> None:
        show(report.build_summary(record))
        if self.show_indexes:
            show(report.index_summary(record))
        note(f"build record: {saved}")
        build_failures(record)

    def image_tested(self, result: ImageResult) -> None:
        failed = sum(c.status == "failed" for c in result.checks)
        word = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
        note(f"{result.variant} {result.platform} ({result.client}): {word} ({len(result.checks)} checks, "
             f"{failed} failed)")

    def tested(self, results: TestResults, saved: Path, junit: Path | None) -> None:
        test_results(results)
        note(f"test results: {saved}" + (f"; JUnit: {junit}" if junit else ""))

    def published(self, plans: list[TagPlan], release: ReleaseRecord | None, repository: str,
                  saved: Path | None) -> None:
        if release is None:
            for p in plans:
                note(f"would tag {p.source} as: {', '.join(p.tags)}")
            note("dry run: nothing changed")
            return
        table = Table("variant", "tags", "moved", "pinned reference", title=f"published to {repository}")
        for v in release.variants:
            table.add_row(v.variant, ", ".join(v.tags), ", ".join(v.moved) or "(none)", v.pinned)
        show(table)
        for v in release.variants:
            click.echo(v.pinned)
        if release.pull_costs:  # what users of the images the tags held before pull now
            show(report.diff_table(release.pull_costs))
        note(f"release record: {saved}")

    def stage(self, name: str, outcome: str) -> None:
        self.stages.append((name, outcome))
        note(f"[bold]== {name}: {outcome}[/]")
