"""Release gates fail closed: registry errors are never 'absent', old passes never hide new
failures, an index must hold what was tested, and checks survive PYTHONOPTIMIZE."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.engine import commands, oci
from builder.engine.oci import IndexInfo
from builder.model.config import TagScheme
from builder.model.errors import FactoryError
from builder.model.records import BuildRecord, ImageResult, PlatformBuild, RootRecord, TestResults, VariantIndex
from builder.stages import publish

REPO = "localhost:5000/ns/img"
AMD, ARM = "sha256:" + "a" * 64, "sha256:" + "b" * 64
INDEX = "sha256:" + "c" * 64


def result(reference: str, passed: bool) -> ImageResult:
    return ImageResult(variant="tiny", platform="linux/amd64", reference=reference, checks=[],
                       error=None if passed else "failed")


def test_an_old_pass_never_hides_a_new_failure() -> None:
    ref = f"{REPO}@{AMD}"
    assert TestResults(run_id="1", images=[result(ref, True)]).passed_for("tiny", "linux/amd64", ref)
    both = TestResults(run_id="1+2", images=[result(ref, True), result(ref, False)])
    assert not both.passed_for("tiny", "linux/amd64", ref)
    assert not TestResults(run_id="0", images=[]).passed_for("tiny", "linux/amd64", ref)


@pytest.mark.parametrize(
    ("output", "absent"),
    [
        ("ERROR: localhost:5000/ns/img:v1: not found", True),
        ("ERROR: unexpected status from HEAD request to http://h/v2/ns/img/manifests/v1: 401 Unauthorized", False),
        ("ERROR: failed to authorize: failed to fetch anonymous token: 403 Forbidden", False),
        ("ERROR: unexpected status from HEAD request to http://h/v2/ns/img/manifests/v1: 500 Internal Server Error",
         False),
        ('ERROR: Head "http://localhost:5000/v2/ns/img/manifests/v1": dial tcp [::1]:5000: connect: '
         "connection refused", False),
        ("", False),
    ],
)
def test_only_the_registrys_not_found_means_absent(output: str, absent: bool) -> None:
    assert oci._not_found(output) is absent


def test_a_registry_error_on_a_tag_lookup_is_raised_not_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "ERROR: unexpected status from HEAD request to http://h/v2/x/manifests/t: 401 Unauthorized"
    monkeypatch.setattr(commands, "run", lambda argv, **_: commands.Result(list(argv), 1, "", answer))
    with pytest.raises(oci.RegistryError, match=r"did not say whether .* exists: .*401 Unauthorized"):
        oci.lookup(f"{REPO}:t")
    monkeypatch.setattr(commands, "run", lambda argv, **_: commands.Result(list(argv), 1, "", "ERROR: x: not found"))
    assert oci.lookup(f"{REPO}:t") is None


def test_a_transient_error_is_retried_and_said(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter([(1, "ERROR: unexpected status: 503 Service Unavailable"), (0, json.dumps({"digest": INDEX}))])

    def run(argv: list[str], **_: object) -> commands.Result:
        code, text = next(answers)
        return commands.Result(list(argv), code, text if code == 0 else "", "" if code == 0 else text)

    monkeypatch.setattr(commands, "run", run)
    monkeypatch.setattr("builder.engine.commands.wait_exponential", lambda **_: (lambda _state: 0))
    assert oci.lookup(f"{REPO}:t") == INDEX
    assert "retrying in" in capsys.readouterr().err


def record() -> BuildRecord:
    builds = [PlatformBuild(variant="tiny", platform=p, status="built", digest=d)
              for p, d in (("linux/amd64", AMD), ("linux/arm64", ARM))]
    return BuildRecord(registry="localhost:5000", repository=REPO, created="", revision="abcdef1234",
                       root=RootRecord(reference="r", digest="d", platforms={}), builds=builds,
                       variants=[VariantIndex(name="tiny", platforms=["linux/amd64", "linux/arm64"],
                                              tag="t", digest=INDEX, parent="root")])


def passing() -> TestResults:
    return TestResults(run_id="1", images=[
        ImageResult(variant="tiny", platform=p, reference=f"{REPO}@{d}", checks=[])
        for p, d in (("linux/amd64", AMD), ("linux/arm64", ARM))])


def plan(monkeypatch: pytest.MonkeyPatch, index_platforms: dict[str, str],
         lookup: object = None) -> list[publish.TagPlan]:
    monkeypatch.setattr(oci, "inspect", lambda ref: IndexInfo(ref, INDEX, "index", index_platforms))
    monkeypatch.setattr(oci, "lookup", lookup or (lambda ref: None))
    return publish.plan_publish(record(), passing(), {"tiny": ["linux/amd64", "linux/arm64"]}, TagScheme(),
                                "1.0.0", dt.date(2026, 1, 1), force=False)


def test_the_index_must_hold_the_tested_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plan(monkeypatch, {"linux/amd64": AMD, "linux/arm64": ARM})[0].index_digest == INDEX
    other = "sha256:" + "d" * 64
    with pytest.raises(FactoryError, match=f"holds {other} for linux/arm64, but the image that passed"):
        plan(monkeypatch, {"linux/amd64": AMD, "linux/arm64": other})


def test_a_registry_error_stops_the_immutable_tag_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(ref: str) -> str | None:
        raise oci.RegistryError(f"the registry did not say whether {ref} exists: 500 Internal Server Error")

    with pytest.raises(oci.RegistryError, match="500 Internal Server Error"):
        plan(monkeypatch, {"linux/amd64": AMD, "linux/arm64": ARM}, refuse)


def test_runtime_checks_fail_under_pythonoptimize(tmp_path: Path) -> None:
    """A check module's `assert` still fails with PYTHONOPTIMIZE set: the smoke stage compiles
    check modules with asserts kept."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "v.py").write_text("def check_fails(session):\n    assert False, 'must fail'\n")
    script = (
        "from pathlib import Path\n"
        "from builder.stages.smoke.checks import _runtime_modules\n"
        "class V: lineage = (); name = 'v'\n"
        f"(name, module), = _runtime_modules(V(), Path({str(checks)!r}))\n"
        "try:\n    module.check_fails(None)\nexcept AssertionError as e:\n    print('failed:', e)\n"
    )
    proc = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, check=False,
                          env={"PYTHONOPTIMIZE": "2", "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[2])
    assert proc.stdout.strip() == "failed: must fail", proc.stderr


def fake_registry(monkeypatch: pytest.MonkeyPatch, answer: Callable[[str, list[str]], str | None]) -> list[str]:
    """publish's view of the registry: ANSWER(reference, tags written so far); returns the writes."""
    written: list[str] = []

    def run(argv: list[str], **_: object) -> commands.Result:
        written.append(argv[argv.index("-t") + 1])
        return commands.Result(argv, 0, "", "")

    monkeypatch.setattr(publish, "_current_digest", lambda reference: answer(reference, written))
    monkeypatch.setattr(commands, "run", run)
    return written


def test_an_immutable_tag_written_while_publish_ran_is_never_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan saw `tiny-sha-abc` free; by the time it is written, another run has written
    it: publish stops, naming the tag, before any tag (moving ones included) is written."""
    from builder.model.records import TagPlan

    other = "sha256:" + "d" * 64
    seen: list[str] = []

    def answer(reference: str, _written: list[str]) -> str | None:
        seen.append(reference)
        return other if reference.endswith(":tiny-sha-abc") and seen.count(reference) > 1 else None

    written = fake_registry(monkeypatch, answer)
    plan = TagPlan("tiny", f"{REPO}@{INDEX}", INDEX, {}, ["tiny", "tiny-sha-abc"], ("tiny-sha-abc",))
    with pytest.raises(FactoryError, match=rf"refusing to move immutable tag {REPO}:tiny-sha-abc: it was written "
                                           rf"\({other}\) while this publish ran"):
        publish.apply([plan], REPO, settle=0)
    assert written == []


def test_a_run_that_overwrites_the_immutable_tag_at_once_wins_and_this_one_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both runs found the tag free and both wrote it; the other wrote last. Read back after
    the settle, the tag isn't ours: this publish stops before its moving tags."""
    from builder.model.records import TagPlan

    other = "sha256:" + "d" * 64

    def answer(reference: str, written: list[str]) -> str | None:
        return other if reference in written else None  # whatever we write, the other run overwrites

    written = fake_registry(monkeypatch, answer)
    plan = TagPlan("tiny", f"{REPO}@{INDEX}", INDEX, {}, ["tiny", "tiny-sha-abc"], ("tiny-sha-abc",))
    with pytest.raises(FactoryError, match=rf"immutable tag {REPO}:tiny-sha-abc holds {other}, not this "
                                           rf"publish's {INDEX}: another run wrote it at the same time and won"):
        publish.apply([plan], REPO, settle=0)
    assert written == [f"{REPO}:tiny-sha-abc"]  # the moving tag `tiny` was never written


@pytest.mark.parametrize(("stderr", "refused"), [
    ("docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create "
     "failed: unable to start container process: unable to apply caps: operation not permitted: unknown", True),
    ("Error response from daemon: manifest unknown", None),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", None),
])
def test_only_the_hosts_own_refusal_counts_as_refusing_privileged(
    monkeypatch: pytest.MonkeyPatch, stderr: str, refused: bool | None,
) -> None:
    from builder.engine import containers
    from builder.stages import smoke
    from builder.stages.smoke import session

    monkeypatch.setattr(session, "_privileged_probe", {})
    monkeypatch.setattr(containers, "run", lambda argv, **_: commands.Result(argv, 125, "", stderr))
    if refused is None:
        with pytest.raises(FactoryError, match="failed for another reason than the host refusing it"):
            smoke.privileged_allowed("img")
    else:
        assert smoke.privileged_allowed("img") is False


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e9"])
def test_a_registry_timeout_that_is_not_seconds_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(oci.TIMEOUT_ENV, value)
    with pytest.raises(FactoryError, match=rf"HJK_REGISTRY_TIMEOUT='{value}': give the seconds"):
        oci.registry_timeout()


def test_a_git_failure_inside_a_repository_is_an_error_not_unknown(tmp_path: Path) -> None:
    from builder.engine import git

    assert git.revision(tmp_path) == ("unknown", None)  # not a repository: no revision to name
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(FactoryError, match=f"git can't read the revision of {tmp_path}"):
        git.revision(tmp_path)  # a repository without a commit: git fails, and says why
