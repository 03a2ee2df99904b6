"""A team's own Dockerfile through the same pipeline: parent pinned by digest, both platforms, parent's checks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from builder.engine import oci
from builder.engine.registry import catalog
from builder.engine.state import STATE_ENV
from builder.model.records import BuildRecord, TestResults, load
from tests.conftest import FIXTURE_CONFIG, hjk
from tests.docker.conftest import FixtureBuild

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def team_project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile.dev").write_text(
        "FROM ghcr.io/fixture/images:tiny\n"
        "USER 0\n"
        "COPY note.txt /etc/team-note\n"
        "RUN echo team > /etc/team-release\n"
        "USER developer\n"
    )
    (tmp_path / "note.txt").write_text("from the team's build context\n")
    (tmp_path / "hjk-checks.yaml").write_text(
        "commands:\n"
        "  - {name: team release file, run: cat /etc/team-release, expect: '^team$'}\n"
        "  - {name: context file copied, run: cat /etc/team-note, expect: build context}\n"
    )
    return tmp_path / "Dockerfile.dev"


def test_a_team_dockerfile_is_built_and_tested_like_a_variant(fixture_build: FixtureBuild, tmp_path: Path) -> None:
    dockerfile = team_project(tmp_path)
    record = tmp_path / "record.json"
    hjk("--config", str(FIXTURE_CONFIG), "build", "--dockerfile", str(dockerfile), "--name", "team",
        "--variant", "team", "--registry", fixture_build.registry.address, "--record", str(record))
    built = load(record, BuildRecord)
    statuses = {b.key: b.status for b in built.builds}
    assert statuses == {"tiny/amd64": "reused", "tiny/arm64": "reused", "team/amd64": "built", "team/arm64": "built"}
    team = built.variant("team")
    assert team.parent == "tiny"
    assert set(oci.inspect(f"{team.tag}").platforms) == {"linux/amd64", "linux/arm64"}
    results = tmp_path / "results.json"
    hjk("--config", str(FIXTURE_CONFIG), "test", "--dockerfile", str(dockerfile), "--name", "team",
        "--variant", "team", "--record", str(record), "--results", str(results))
    for image in load(results, TestResults).images:
        names = {c.name for c in image.checks if c.status == "passed"}
        # tiny's checks, then the team's own
        assert {"release file", "team release file", "context file copied"} <= names, image.platform


def test_plan_shows_the_team_dockerfile_on_its_parent(tmp_path: Path) -> None:
    dockerfile = team_project(tmp_path)
    plan = json.loads(hjk("--config", str(FIXTURE_CONFIG), "plan", "--offline", "--json",
                          "--dockerfile", str(dockerfile), "--name", "team").stdout)
    assert {(j["variant"], j["parent"]) for j in plan["jobs"]} >= {("team", "tiny")}


def test_a_from_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:trixie\nRUN true\n")
    proc = hjk("--config", str(FIXTURE_CONFIG), "plan", "--offline", "--dockerfile", str(dockerfile),
               "--name", "team", check=False)
    assert proc.returncode == 1
    assert f"{dockerfile}: the final FROM debian:trixie is not one of this factory's images" in proc.stderr


MULTI_STAGE = """\
# The product page's best practice: compile in one stage, copy into the final one.
FROM nowhere.invalid:5000/fixture/images:tiny AS builder
USER 0
RUN apt-get update \\
 && apt-get install -y --no-install-recommends tcc libc6-dev \\
 && printf '#include <stdio.h>\\nint main(void) { puts("hello from stage one"); return 0; }\\n' > /tmp/hello.c \\
 && tcc -o /usr/local/bin/hello /tmp/hello.c

FROM scratch AS unused
FROM ghcr.io/fixture/images:leaf
COPY --from=builder /usr/local/bin/hello /usr/local/bin/hello
"""


def test_every_stage_of_a_multi_stage_dockerfile_builds_on_this_runs_digests(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    dockerfile = tmp_path / "Dockerfile.dev"
    dockerfile.write_text(MULTI_STAGE)
    (tmp_path / "hjk-checks.yaml").write_text(
        "commands:\n  - {name: stage one's binary runs, run: hello, expect: '^hello from stage one$'}\n"
    )
    record = tmp_path / "record.json"
    team = ("--config", str(FIXTURE_CONFIG), "--dockerfile", str(dockerfile), "--name", "multi")
    # build
    hjk(team[0], team[1], "build", *team[2:], "--variant", "multi", "--registry", fixture_build.registry.address,
        "--record", str(record))
    built = load(record, BuildRecord)
    statuses = {b.key: b.status for b in built.builds}
    # the final stage's variant (leaf) is the parent; tiny, named by a stage, is built (here: reused) first
    assert statuses == {"tiny/amd64": "reused", "tiny/arm64": "reused", "leaf/amd64": "reused",
                        "leaf/arm64": "reused", "multi/amd64": "built", "multi/arm64": "built"}
    assert built.variant("multi").parent == "leaf"
    results = tmp_path / "results.json"
    hjk(team[0], team[1], "test", *team[2:], "--variant", "multi", "--record", str(record), "--results", str(results))
    images = load(results, TestResults).images
    assert {i.platform for i in images} == {"linux/amd64", "linux/arm64"}
    for image in images:
        outcome = {c.name: c.status for c in image.checks}
        assert outcome["stage one's binary runs"] == "passed", image.platform
        assert outcome["leaf file"] == "passed"  # the parent's checks ran too
    # the tags the Dockerfile names were never asked for: the pinned digests were used
    for build in built.builds_of("multi"):
        log = Path(build.log or "").read_text()
        assert "nowhere.invalid" not in log and "ghcr.io" not in log


def test_the_quick_local_loop_loads_one_platform_and_reuses_earlier_layers(
    fixture_build: FixtureBuild, tmp_path: Path,
) -> None:
    dockerfile = team_project(tmp_path)
    tag = f"hjk-loop-{tmp_path.name.lower()}:dev"
    team = ("--config", str(FIXTURE_CONFIG), "build", "--dockerfile", str(dockerfile), "--name", "loop",
            "--registry", fixture_build.registry.address, "--load", "--tag", tag)
    try:
        first = hjk(*team)
        assert f"docker run --rm -it {tag}" in first.stdout
        ran = subprocess.run(["docker", "run", "--rm", tag, "cat", "/etc/team-release"],
                             capture_output=True, text=True, check=True)
        assert ran.stdout.strip() == "team"
        # one line changed in the last step: every earlier step comes from the layer cache
        dockerfile.write_text(dockerfile.read_text().replace("echo team >", "echo team-2 >"))
        hjk(*team)
        ran = subprocess.run(["docker", "run", "--rm", tag, "cat", "/etc/team-release"],
                             capture_output=True, text=True, check=True)
        assert ran.stdout.strip() == "team-2"
        log = (Path(os.environ[STATE_ENV]) / "logs" / "build" / f"loop-{HOST_ARCH}.log").read_text()
        copy_step = next(line for line in log.splitlines() if "COPY note.txt" in line)
        step = copy_step.split()[0]  # "#7"
        assert any(line.startswith(f"{step} CACHED") for line in log.splitlines()), log[-2000:]
        # nothing was pushed for it
        repo = fixture_build.record.repository.split("/", 1)[1]
        assert not any(t.startswith("build-loop") for t in catalog(fixture_build.registry.address).get(repo, []))
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
