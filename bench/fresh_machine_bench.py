"""Fresh-machine benchmark: what a new CI runner pays when the registry already holds a build.

Rows (a "fresh machine" is a state folder of its own and a second Docker engine
started for the run, with no images and no build cache):
  root bootstrap 1/2  two `root bootstrap` runs, each with its own empty state
                      folder (no cached root file system): time and the digest per
                      platform, which must agree;
  fresh no-op         `build` of every variant on a fresh machine pointed at a
                      registry that holds the build: time (target: under 15 s),
                      and whether it built nothing and recorded the same digests;
  cold base           base for amd64 with --no-cache on a fresh machine;
  last-step change    base for amd64 with only its last step changed, on another
                      fresh machine, its layers from the registry's cache: time
                      and the ratio to cold (target: at most 0.3).
Prints a table and the figures as JSON. Not run by the tests.

    .venv/bin/python bench/fresh_machine_bench.py [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
HJK = str(Path(sys.executable).parent / "hjk-images")

sys.path.insert(0, str(PROJECT))
from bench.build_bench import free_port, report, timed  # noqa: E402
from builder.engine import oci  # noqa: E402
from builder.engine import registry as registries  # noqa: E402
from builder.model.records import BuildRecord, load  # noqa: E402

LAST_STEP = "RUN echo last-step-change > /tmp/hjk-bench-last-step\n"


BRIDGE = ("hjkbench0", "172.31.251.1/24")


@contextmanager
def fresh_engine(folder: Path) -> Iterator[dict[str, str]]:
    """A second dockerd with an empty data root (no images, no build cache); yields the
    environment that points the docker CLI at it. Its builds use the host's network.

    It gets a bridge of its own: `--bridge none` would make it delete the main
    engine's docker0."""
    folder.mkdir(parents=True)
    sock = folder / "docker.sock"
    name, address = BRIDGE
    subprocess.run(["ip", "link", "delete", name], capture_output=True)
    for argv in (["ip", "link", "add", name, "type", "bridge"], ["ip", "addr", "add", address, "dev", name],
                 ["ip", "link", "set", name, "up"]):
        subprocess.run(argv, check=True)
    log = open(folder / "dockerd.log", "w")  # noqa: SIM115 - open for the daemon's lifetime
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"),
         "--pidfile", str(folder / "docker.pid"), "--host", f"unix://{sock}", "--bridge", name,
         "--iptables=false"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    env = {"DOCKER_HOST": f"unix://{sock}"}
    try:
        for _ in range(60):
            if subprocess.run(["docker", "info"], env={**os.environ, **env}, capture_output=True).returncode == 0:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"the second engine did not start; see {folder / 'dockerd.log'}")
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        log.close()
        subprocess.run(["ip", "link", "delete", name], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def hjk(*args: str, env: dict[str, str], config: Path | None = None) -> float:
    return timed([HJK, *(["--config", str(config)] if config else []), *args], env=env)


def fork(workdir: Path, name: str, overlay: str, last_step: bool = False) -> Path:
    """The project's variants (and lock) in a folder of their own, with an overlay config."""
    folder = workdir / name
    shutil.copytree(PROJECT / "variants", folder / "variants")
    shutil.copy(PROJECT / "images.lock.yaml", folder / "images.lock.yaml")
    if last_step:
        (folder / "variants" / "bench-last-step.j2").write_text(LAST_STEP)
        base = folder / "variants" / "base.yaml"
        base.write_text(base.read_text() + "fragments:\n  user: [bench-last-step.j2]\n")
    (folder / "overlay.yaml").write_text(overlay + "variants_dir: variants\n")
    return folder / "overlay.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hjk-fresh-bench-"))
    reg = registries.EmbeddedRegistry(free_port(), workdir / "registry")
    reg.up()
    figures: dict[str, object] = {}
    try:
        address = reg.address
        for run in (1, 2):  # each from nothing: its own state folder, its own repository
            overlay = fork(workdir, f"root{run}", f"namespace: bench-root{run}\n")
            state = {"HJK_STATE_DIR": str(workdir / f"state-root{run}")}
            figures[f"root_bootstrap_{run}_s"] = round(
                hjk("root", "bootstrap", "--registry", address, env=state, config=overlay), 1)
            figures[f"root_bootstrap_{run}_digests"] = oci.inspect(
                f"{address}/bench-root{run}/headjack-root:trixie").platforms
        figures["root_digests_equal"] = figures["root_bootstrap_1_digests"] == figures["root_bootstrap_2_digests"]

        first = workdir / "first.json"  # the machine that built the release (this one, warm)
        hjk("build", "--registry", address, "--record", str(first), env={})
        with fresh_engine(workdir / "engine-noop") as engine:
            noop = workdir / "noop.json"
            state = {"HJK_STATE_DIR": str(workdir / "state-noop"), **engine}
            figures["fresh_noop_s"] = round(hjk("build", "--registry", address, "--record", str(noop), env=state), 2)
        before, after = load(first, BuildRecord), load(noop, BuildRecord)
        figures["fresh_noop_built"] = after.count("built")
        figures["fresh_noop_reused"] = after.count("reused")
        figures["fresh_noop_same_digests"] = (
            {b.key: b.digest for b in before.builds} == {b.key: b.digest for b in after.builds})

        base = ("build", "--variant", "base", "--platform", "linux/amd64", "--registry", address, "--network", "host")
        with fresh_engine(workdir / "engine-cold") as engine:
            state = {"HJK_STATE_DIR": str(workdir / "state-cold"), **engine}
            figures["cold_base_amd64_s"] = round(hjk(*base, "--no-cache", "--force", "--record",
                                                     str(workdir / "cold.json"), env=state), 1)
        changed = fork(workdir, "last-step", "", last_step=True)
        with fresh_engine(workdir / "engine-change") as engine:
            state = {"HJK_STATE_DIR": str(workdir / "state-change"), **engine}
            record = workdir / "change.json"
            figures["last_step_change_s"] = round(hjk(*base, "--record", str(record), env=state, config=changed), 1)
        (built,) = [b for b in load(record, BuildRecord).builds if b.variant == "base"]
        figures["last_step_change_cache"] = built.layer_cache
        figures["last_step_ratio"] = round(
            float(figures["last_step_change_s"]) / float(figures["cold_base_amd64_s"]), 2)  # type: ignore[arg-type]
    finally:
        reg.down()
        shutil.rmtree(workdir, ignore_errors=True)

    report(list(figures.items()), figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
