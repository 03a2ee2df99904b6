"""Variant data stays data: a value that would change the Dockerfile's instructions is refused
when the file loads, naming the file, the key and the character at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.errors import FactoryError
from tests.conftest import load_variants
from tests.unit.test_variants import PLATFORMS, SHA, minimal, write

ARCHIVE = "  - {{name: t, source: archive, version: '1.0', url: '{url}', sha256: " + SHA + ", links: {links}}}\n"


@pytest.mark.parametrize(("extra", "key", "fault"), [
    ("env:\n  \"A\\nRUN touch /pwned\": x\n", "env.'A\\nRUN touch /pwned'", "control character '\\n'"),
    ("env:\n  A: \"x\\nRUN touch /pwned\"\n", "env.A", "control character '\\n'"),
    ("tools:\n  - {name: t, source: npm, version: '1.3.0;touch${IFS}/tmp/pwned'}\n", "tools[0].version",
     "character ';' at position 6"),
    ("tools:\n  - {name: t, source: npm, package: 'a b', version: '1.0'}\n", "tools[0].package", "character ' '"),
    ("tools:\n  - {name: t, source: apt, package: 'x$(id)', version: '1.0'}\n", "tools[0].package", "character '$'"),
    ("tools:\n" + ARCHIVE.format(url="https://e.org/a;rm", links="{t: bin/t}"), "tools[0].url", "character ';'"),
    ("tools:\n" + ARCHIVE.format(url="file:///etc/passwd", links="{t: bin/t}"), "tools[0].url", "not well formed"),
    ("tools:\n" + ARCHIVE.format(url="https://e.org/a", links="{'t;x': bin/t}"), "tools[0].links", "character ';'"),
    ("tools:\n" + ARCHIVE.format(url="https://e.org/a", links="{t: ../../etc}"), "tools[0].links.t", "no .."),
    ("packages: ['curl && rm -rf /']\n", "packages[0]", "character ' '"),
    ("user: 'dev; rm'\n", "user", "character ';'"),
    ("description: \"a\\nRUN touch /pwned\"\n", "description", "control character '\\n'"),
    ("context_files: /etc\n", "context_files", "not well formed"),
    ("fragments: {root: [../outside.j2]}\n", "fragments.root[0]", "no .."),
    ("runtime: {init: [/sbin/init], stop_signal: \"SIGTERM\\nRUN x\", flags: {docker: tmpfs=/run}}\n"
     "devcontainer: {overrideCommand: false}\n", "runtime.stop_signal", "control character '\\n'"),
])
def test_hostile_variant_data_is_refused_naming_file_key_and_character(
    tmp_path: Path, extra: str, key: str, fault: str,
) -> None:
    path = write(tmp_path, "a", minimal("a", extra=extra))
    with pytest.raises(FactoryError) as err:
        load_variants(tmp_path, PLATFORMS)
    message = str(err.value)
    assert "\n" not in message, "the error is one line"
    assert message.startswith(f"{path}: {key}"), message
    assert fault in message, message
