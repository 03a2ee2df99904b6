"""Layer steps as a person reads them."""

from __future__ import annotations

import pytest

from builder.engine.sizes import _tidy


@pytest.mark.parametrize(("created_by", "step"), [
    ("RUN |3 A=1 B=x y C=3 /bin/bash -o pipefail -c apt-get update # buildkit", "RUN apt-get update"),
    ("RUN |2 BASE_IMAGE=r@sha256:1 BASE_DIGEST=sha256:1 /bin/bash -o pipefail -c npm i -g x # buildkit",
     "RUN npm i -g x"),
    ("ADD rootfs.tar / # buildkit", "ADD rootfs.tar /"),
    ("/bin/sh -c #(nop) COPY file:abc in / ", "COPY file:abc in /"),
    ("RUN |1 A=1 echo no shell # buildkit", "RUN echo no shell"),
    ("", ""),
])
def test_steps_lose_their_wrappers(created_by: str, step: str) -> None:
    assert _tidy(created_by) == step
