"""`hjk-images`: a thin Click layer. Each command parses its options, calls a stage, the
runner (`builder.runner`) or a query (`builder.queries`), and prints through
`builder.present`. The commands live by topic; importing each module registers them."""

from builder.cli import images, pins, registry, reports, variants  # noqa: F401  (registers their commands)
from builder.cli.common import entry, main

__all__ = ["entry", "main"]
