"""Smoke-test images the way Headjack runs them, with testcontainers.

Each image (one platform, by digest) is started the way Headjack starts it
(`builder.model.headjack.plan_run`: PID 1 from io.headjack.init, else `sleep infinity`;
the flags of io.headjack.docker.flags; no --user) with a host folder at
/workspace. Then every check the variant and its ancestors declare runs by a
plain `exec` (no -u, as Headjack's agents do), each under a timeout. Containers
carry a run label and are always removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from builder.engine import commands as tools
from builder.engine import oci
from builder.engine.containers import Container, remove_labelled
from builder.engine.devcontainer import remove as remove_dev_containers
from builder.model import headjack
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, CheckOutcome, ImageResult, TestResults
from builder.model.variants import OMITTED_TOOLS_FILE, Variant, VariantSet
from builder.stages.smoke.checks import declared_checks, runtime_checks
from builder.stages.smoke.devcontainer import check_image_devcontainer, check_options
from builder.stages.smoke.session import (
    RUN_LABEL,
    CheckFn,
    ClientOptions,
    ImageFacts,
    Omitted,
    Session,
    Target,
    host_arch,
    privileged_allowed,
    timed,
)

__all__ = ["RUN_LABEL", "CheckFn", "ClientOptions", "ImageFacts", "Omitted", "Session", "Target", "host_arch",
           "privileged_allowed"]

def container_kwargs(run: headjack.HeadjackRun) -> dict[str, Any]:
    """Headjack's flags as docker-py arguments for testcontainers: the same container the
    `docker run` flags would make. A flag with no translation is refused, never dropped."""
    kwargs: dict[str, Any] = {"binds": {}, "tmpfs": {}, "anonymous_volumes": []}
    for key, value in run.flags.items():
        values = value if isinstance(value, list) else [value]
        if key == "privileged" and isinstance(value, bool):
            kwargs["privileged"] = value
        elif key == "cgroupns" and isinstance(value, str):
            kwargs["cgroupns"] = value
        elif key in ("cap-add", "security-opt"):
            kwargs[key.replace("-", "_")] = [str(v) for v in values]
        elif key == "tmpfs":
            for spec in values:
                path, _, options = str(spec).partition(":")
                kwargs["tmpfs"][path] = options
        elif key in ("volume", "v"):
            for spec in values:
                parts = str(spec).split(":")
                if len(parts) >= 2:
                    kwargs["binds"][parts[0]] = {"bind": parts[1], "mode": parts[2] if len(parts) > 2 else "rw"}
                else:
                    kwargs["anonymous_volumes"].append(parts[0])
        else:
            raise FactoryError(f"the smoke stage can't apply the flag --{key} from the image's "
                               f"{headjack.flags_label(run.runtime)} label")
    return kwargs


def headjack_run(labels: dict[str, str], reference: str) -> headjack.HeadjackRun:
    """Headjack's start for this image on this host; the --privileged probe runs only when asked for."""
    refused = headjack.wants_privileged(labels) and not privileged_allowed(reference)
    try:
        return headjack.plan_run(labels, "docker", privileged_refused=refused)
    except headjack.ContractError as exc:
        raise FactoryError(f"image {reference}: {exc}") from None


def _wait_ready(container: Container, run: headjack.HeadjackRun, timeout: int) -> None:
    """Wait until a readiness command succeeds; fail at once if the container exits."""
    probe = ["true"]
    if run.has_init:  # an init that is systemd is ready when systemd says so
        probe = ["sh", "-c", "command -v systemctl >/dev/null || exit 0; "
                 "case $(systemctl is-system-running) in running|degraded) exit 0;; esac; exit 1"]
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        status, code = container.state()
        if status != "running":
            raise RuntimeError(f"the container exited (code {code}) before it was ready")
        if container.exec(probe, timeout=30)[0] == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"`{' '.join(probe)}` did not succeed within {timeout} s")
        pause.wait(1.0)


@contextmanager
def started(
    target: Target, facts: ImageFacts, run: headjack.HeadjackRun, run_id: str, ready_timeout: int,
) -> Iterator[Session]:
    workspace = Path(tempfile.mkdtemp(prefix="hjk-workspace-"))
    # Headjack mounts the user's project folder, owned by the user that the
    # image's uid maps to; make ours the same so ownership checks are real.
    os.chown(workspace, 1000, 1000)
    flags = container_kwargs(run)
    flags["binds"] = {str(workspace): {"bind": headjack.WORKSPACE, "mode": "rw"}, **flags["binds"]}
    container = Container(target.reference, platform=target.platform, command=run.init,
                          labels={RUN_LABEL: run_id}, flags=flags)
    try:
        try:
            container.start()
        except Exception as exc:  # docker refused to create or start it
            raise StartError(f"{target.reference} ({target.platform}) could not start: {exc}", "") from None
        session = Session(container, facts, workspace, target)
        try:
            _wait_ready(container, run, ready_timeout)
        except Exception as exc:
            raise StartError(f"{target.reference} ({target.platform}) did not become ready: {exc}",
                             session.logs()) from None
        yield session
    finally:
        try:
            container.remove()
        finally:
            shutil.rmtree(workspace, ignore_errors=True)


class StartError(FactoryError):
    def __init__(self, message: str, logs: str) -> None:
        super().__init__(message)
        self.logs = logs


def stop_check(session: Session, timeout: int) -> CheckOutcome:
    """The image's stop signal shuts its init down cleanly, well within the timeout."""
    def run() -> tuple[bool, str]:
        if session.emulated:
            raise Omitted("qemu-user does not deliver the init's stop signal; checked on native platforms")
        elapsed = session.container.stop(timeout)
        _, code = session.container.state()
        ok = elapsed < timeout - 1
        return ok, f"stopped in {elapsed:.1f} s with exit {code} ({session.facts.stop_signal or 'SIGTERM'})"

    return timed(f"stops on {session.facts.stop_signal or 'SIGTERM'}", "lifecycle", run)


def check_image(variant: Variant, target: Target, run_id: str, checks_dir: Path) -> ImageResult:
    slow = target.platform.endswith("arm64")  # emulated here; native elsewhere is only faster
    ready_timeout = 600 if slow else 180
    try:
        facts = ImageFacts.of(target.reference, target.platform)
        run = headjack_run(facts.labels, target.reference)
        started_as = run.run_argv("NAME", target.reference, "WORKTREE")
        with started(target, facts, run, run_id, ready_timeout) as session:
            code, out = session.exec(["cat", OMITTED_TOOLS_FILE], user="root")
            omitted = set(out.split()) if code == 0 else set()
            checks = declared_checks(variant, session, omitted) + runtime_checks(variant, session, checks_dir)
            if run.has_init:
                checks.append(stop_check(session, timeout=90))
            logs = session.logs() if any(c.status == "failed" for c in checks) else None
            return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                               checks=checks, logs=logs, started_as=started_as, deviation=run.substituted or None)
    except StartError as exc:
        return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                           checks=[], error=str(exc), logs=exc.logs, started_as=started_as,
                           deviation=run.substituted or None)
    except FactoryError as exc:
        return ImageResult(variant=variant.name, platform=target.platform, reference=target.reference,
                           checks=[], error=str(exc))


CLIENTS = ("headjack", "devcontainer")
"""Who starts the images: Headjack's label rules (always), the Dev Containers CLI (asked for)."""


def run_tests(
    variants: VariantSet, targets: list[Target], checks_dir: Path, *, parallel: int = 2,
    on_result: Callable[[ImageResult], None] = lambda _r: None,
    clients: Sequence[str] = ("headjack",), devcontainer: ClientOptions | None = None,
) -> TestResults:
    """Every target started by each of CLIENTS: Headjack's label rules, the Dev Containers CLI
    (with DEVCONTAINER's options); a container per client, one after the other."""

    tools.ensure_docker()
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown or not clients:
        raise FactoryError(f"unknown client {', '.join(unknown) or '(none)'} (known: {', '.join(CLIENTS)})")
    if "devcontainer" in clients:
        if devcontainer is None:
            raise FactoryError("the devcontainer client needs its options (the CLI to run)")
        check_options(devcontainer)
    run_id = uuid.uuid4().hex[:12]

    def both(target: Target) -> list[ImageResult]:
        variant = variants[target.variant]
        results = []
        if "headjack" in clients:
            results.append(check_image(variant, target, run_id, checks_dir))
        if "devcontainer" in clients and devcontainer is not None:
            results.append(check_image_devcontainer(variant, target, run_id, devcontainer))
        return results

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            futures = [pool.submit(both, t) for t in targets]
            images = []
            for future in futures:
                for result in future.result():
                    on_result(result)
                    images.append(result)
    finally:
        remove_leftovers(run_id)
    return TestResults(run_id=run_id, images=images)


def remove_leftovers(run_id: str) -> None:
    """Belt and braces after Ctrl-C: remove any container this run labelled (and the volumes
    and uid-remap images of the dev containers among them)."""
    remove_dev_containers(f"{RUN_LABEL}={run_id}")
    remove_labelled(f"{RUN_LABEL}={run_id}")


def junit_xml(results: TestResults) -> str:
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites", name="hjk-images smoke tests")
    for image in results.images:
        failed = sum(c.status == "failed" for c in image.checks) + (1 if image.error else 0)
        started_by = "" if image.client == "headjack" else f" ({image.client})"
        suite = ET.SubElement(suites, "testsuite", name=f"{image.variant} {image.platform}{started_by}",
                              tests=str(len(image.checks) + (1 if image.error else 0)), failures=str(failed),
                              skipped=str(sum(c.status == "omitted" for c in image.checks)))
        if image.deviation:
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", name=f"{image.client}-deviation", value=image.deviation)
        if image.error:
            case = ET.SubElement(suite, "testcase", classname=image.variant, name="start")
            ET.SubElement(case, "failure", message=image.error[:500]).text = image.logs or image.error
        for check in image.checks:
            case = ET.SubElement(suite, "testcase", classname=f"{image.variant}.{image.platform}",
                                 name=check.name, time=f"{check.duration_s:.2f}")
            if check.status == "failed":
                ET.SubElement(case, "failure", message=check.detail[:500]).text = check.detail
            elif check.status == "omitted":
                ET.SubElement(case, "skipped", message=check.detail)
        if image.logs:
            ET.SubElement(suite, "system-out").text = image.logs
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def targets_of(record: BuildRecord, variant_names: list[str], platforms: list[str]) -> list[Target]:
    """Every image the build record built or reused, narrowed to the asked variants and platforms."""
    root_repo = record.root.reference.split("@", 1)[0].rsplit(":", 1)[0]
    targets = []
    for b in record.builds:
        if variant_names and b.variant not in variant_names:
            continue
        if platforms and b.platform not in platforms:
            continue
        if b.digest is None:
            continue  # failed or skipped builds have nothing to test
        root_digest = record.root.platforms.get(b.platform)
        targets.append(Target(
            variant=b.variant, platform=b.platform, reference=f"{record.repository}@{b.digest}",
            root_reference=f"{root_repo}@{root_digest}" if root_digest else None,
        ))
    return targets


def image_targets(reference: str, variant: str | None, platforms: list[str]) -> list[Target]:
    """Targets for any image reference: an index (one per platform) or a single image."""
    info = oci.inspect(reference)
    repo = oci.repository_of(reference)
    available = info.platforms or {}
    wanted = platforms or list(available)
    missing = [p for p in wanted if p not in available]
    if missing:
        raise FactoryError(
            f"image {reference} has no image for {', '.join(missing)} (it has: {', '.join(available) or 'none'})"
        )
    targets = []
    for platform in wanted:
        single = f"{repo}@{available[platform]}"
        name = variant or ImageFacts.of(single, platform).labels.get(headjack.VARIANT_LABEL)
        if not name:
            raise FactoryError(f"image {reference} has no {headjack.VARIANT_LABEL} label: name it with --variant")
        targets.append(Target(variant=name, platform=platform, reference=single))
    return targets
