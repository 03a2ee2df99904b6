"""String types for variant data that reaches a Dockerfile: each admits only the characters
its kind needs, so a one-line data change can never become a build instruction (a newline
starting a new RUN, a `;` inside one). A refusal names the character and where it is."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator


def _control(value: str, kind: str) -> None:
    for index, char in enumerate(value, 1):
        if ord(char) < 32 or ord(char) == 127:
            raise ValueError(f"{kind} {value!r}: control character {char!r} at position {index} is not allowed")


def checked(kind: str, allowed: str, shape: str | None = None, hint: str = "") -> AfterValidator:
    """A validator admitting only the characters of the class ALLOWED (a regex character class
    body), then, when given, the whole-value pattern SHAPE."""
    one = re.compile(f"[{allowed}]")
    whole = re.compile(shape) if shape else None

    def check(value: str) -> str:
        _control(value, kind)
        for index, char in enumerate(value, 1):
            if not one.fullmatch(char):
                raise ValueError(f"{kind} {value!r}: character {char!r} at position {index} is not allowed"
                                 + (f" ({hint})" if hint else ""))
        if whole is not None and not whole.fullmatch(value):
            raise ValueError(f"{kind} {value!r} is not well formed" + (f" ({hint})" if hint else ""))
        return value

    return AfterValidator(check)


def _text(value: str) -> str:
    _control(value, "text")
    return value


Text = Annotated[str, AfterValidator(_text)]
"""Free text (descriptions, env values, labels): anything but control characters."""
DebianPackage = Annotated[str, checked("Debian package", "a-z0-9.+-", r"[a-z0-9][a-z0-9.+-]*",
                                       "lowercase letters, digits, . + -")]
PackageName = Annotated[str, checked("package", "A-Za-z0-9@/._+-", r"(@[a-z0-9][\w.-]*/)?[A-Za-z0-9][\w.+-]*",
                                     "an apt, npm (@scope/name) or PyPI name")]
Version = Annotated[str, checked("version", "A-Za-z0-9.+~_-", r"[A-Za-z0-9][A-Za-z0-9.+~_-]*",
                                 "an exact version, no ranges or wildcards")]
Url = Annotated[str, checked("URL", r"A-Za-z0-9:/?#\[\]@!*,=%._~+-", r"https?://[^/\s]+(/.*)?",
                             "an http(s) URL without spaces, quotes or shell characters")]
CommandName = Annotated[str, checked("command name", "A-Za-z0-9._-", r"[A-Za-z0-9][A-Za-z0-9._-]*")]
RelativePath = Annotated[str, checked("path", "A-Za-z0-9._/+-", r"(?!/)(?!.*(^|/)\.\.(/|$)).+",
                                      "relative, below its folder, no ..")]
AbsolutePath = Annotated[str, checked("path", "A-Za-z0-9._/+-", r"/(?!.*(^|/)\.\.(/|$))[^/].*",
                                      "absolute, no ..")]
UserName = Annotated[str, checked("user", "a-z0-9_-", r"[a-z_][a-z0-9_-]{0,31}", "a Linux user name")]
EnvName = Annotated[str, checked("environment variable", "A-Za-z0-9_", r"[A-Za-z_][A-Za-z0-9_]*")]
Signal = Annotated[str, checked("signal", "A-Z0-9+-", r"SIG[A-Z0-9]+([+-][0-9]+)?|[0-9]+", "e.g. SIGRTMIN+3")]
