"""Can a download be reached from here? Asked before a build, for the tools a variant may
leave out, so that whether a tool is in an image is decided once and becomes part of
the build's identity (an image without goenv is not the image with it)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

PROBE_TIMEOUT = 15.0


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when URL answers a HEAD request (redirects followed) with a success."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "hjk-images"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(200 <= response.status < 400)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def unreachable(urls: Iterable[str]) -> set[str]:
    """The URLs among URLS that can't be reached now (asked in parallel)."""
    wanted = sorted(set(urls))
    if not wanted:
        return set()
    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        answers = dict(zip(wanted, pool.map(reachable, wanted), strict=True))
    return {url for url, ok in answers.items() if not ok}
