"""The Dev Containers side of the image contract: the `devcontainer:` key of a variant file,
the `devcontainer.metadata` label rendered from it, the start commands printed from it, and
the Dev Containers CLI pinned like a tool."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli import main
from builder.model import devcontainer, starting
from builder.model.config import load_settings
from builder.model.errors import FactoryError
from builder.model.records import Bump
from builder.model.tools import CLIENTS, client_tools
from builder.present import report
from builder.stages import bump, lock
from builder.stages.lint import contract_problems
from builder.stages.render import render_variant
from tests.conftest import PROJECT_DIR, load_variants
from tests.unit.test_variants import PLATFORMS, minimal, write


def project_variants():  # type: ignore[no-untyped-def]
    return load_variants(PROJECT_DIR / "variants", PLATFORMS)


def rendered_label(name: str) -> list[dict[str, object]]:
    """The label as an engine would store it: the rendered LABEL line read back by shell rules."""
    settings = load_settings(None, project_dir=PROJECT_DIR)
    text = render_variant(project_variants()[name], settings).dockerfile
    line = re.search(r'devcontainer\.metadata=("(?:[^"\\]|\\.)*")', text)
    assert line, "no devcontainer.metadata label rendered"
    (value,) = shlex.split(line.group(1))
    return json.loads(value.replace("\\$", "$"))  # type: ignore[no-any-return]


def test_each_variant_carries_its_ancestors_entries_then_its_own() -> None:
    base, systemd, dind = (rendered_label(n) for n in ("base", "systemd", "dind"))
    assert base == [{"remoteUser": "developer", "updateRemoteUserUID": True}]
    assert systemd[0] == base[0] and len(systemd) == 2
    assert systemd[1] == {"overrideCommand": False, "init": False, "privileged": True,
                          "mounts": [{"type": "bind", "source": "/sys/fs/cgroup", "target": "/sys/fs/cgroup"}]}
    assert dind[:2] == systemd and len(dind) == 3
    # `${devcontainerId}` reaches the label literally: the Dockerfile must not expand it
    assert dind[2] == {"mounts": [{"type": "volume", "source": "hjk-dind-var-lib-docker-${devcontainerId}",
                                   "target": "/var/lib/docker"}]}


def test_the_merged_metadata_is_what_a_client_starts() -> None:
    dind = project_variants()["dind"]
    merged = devcontainer.merged(dind.devcontainer)
    assert merged["remoteUser"] == "developer" and merged["overrideCommand"] is False
    assert merged["privileged"] is True and merged["init"] is False
    assert [m["target"] for m in merged["mounts"]] == ["/sys/fs/cgroup", "/var/lib/docker"]


def test_base_ends_as_its_user_by_name_and_init_images_boot_from_their_entrypoint() -> None:
    settings = load_settings(None, project_dir=PROJECT_DIR)
    variants = project_variants()
    base = render_variant(variants["base"], settings).dockerfile
    assert "\nUSER developer\n" in base and "ENTRYPOINT" not in base
    systemd = render_variant(variants["systemd"], settings).dockerfile
    assert '\nENTRYPOINT ["/lib/systemd/systemd"]\n' in systemd
    assert "\nCMD " not in systemd  # nothing of the parent's command is kept to confuse the init
    assert systemd.rstrip().endswith("USER 0")


@pytest.mark.parametrize(("entry", "message"), [
    ("  remoteuser: developer\n", r"devcontainer\.remoteuser: unknown key \(did you mean 'remoteUser'\?\)"),
    ("  privileged: maybe\n", r"devcontainer\.privileged: Input should be a valid boolean"),
    ("  mounts: [{type: tmpfs, target: /x}]\n", r"devcontainer\.mounts"),
    ("  userEnvProbe: always\n", r"devcontainer\.userEnvProbe"),
])
def test_a_bad_entry_is_refused_naming_the_file_and_key(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, "a", minimal("a", extra="devcontainer:\n" + entry))
    with pytest.raises(FactoryError, match=message) as err:
        load_variants(tmp_path, PLATFORMS)
    assert str(path) in str(err.value)


def test_a_child_never_repeats_its_parents_entry(tmp_path: Path) -> None:
    write(tmp_path, "a", minimal("a", extra="devcontainer:\n  remoteUser: developer\n"))
    path = write(tmp_path, "b", minimal("b", parent="a", extra="devcontainer:\n  remoteUser: developer\n"))
    with pytest.raises(FactoryError, match=r"devcontainer\.remoteUser: repeats what an ancestor's entry") as err:
        load_variants(tmp_path, PLATFORMS)
    assert str(path) in str(err.value)


def test_an_init_image_must_keep_its_entrypoint_under_dev_containers_clients(tmp_path: Path) -> None:
    runtime = "runtime:\n  init: [/sbin/init]\n  flags: {docker: privileged=true}\n"
    path = write(tmp_path, "a", minimal("a", extra=runtime))
    with pytest.raises(FactoryError, match=r"devcontainer\.overrideCommand: an image with an init") as err:
        load_variants(tmp_path, PLATFORMS)
    assert str(path) in str(err.value)
    write(tmp_path, "a", minimal("a", extra=runtime + "devcontainer:\n  overrideCommand: false\n"))
    assert load_variants(tmp_path, PLATFORMS)["a"].devcontainer[0].overrideCommand is False


def test_lint_reads_the_label_back_and_refuses_what_a_client_would_misread() -> None:
    label = 'devcontainer.metadata="[{\\"remoteUser\\":\\"dev\\",\\"overrideCommand\\":true}]"'
    init = 'io.headjack.init="/sbin/init" io.headjack.docker.flags="privileged=true"'
    problems = contract_problems(f"FROM x\nLABEL {label} {init}\nUSER 0\n")
    assert problems == ["io.headjack.init is set but devcontainer.metadata lacks overrideCommand false: "
                        "Dev Containers clients would replace the init with their own shell"]
    broken = contract_problems('FROM x\nLABEL devcontainer.metadata="[{\\"remoteUsr\\":1}]"\nUSER 0\n')
    assert len(broken) == 1 and broken[0].startswith("label devcontainer.metadata:")
    assert contract_problems('FROM x\nLABEL devcontainer.metadata="{\\"remoteUser\\":\\"dev\\"}"\nUSER dev\n') == []


def test_start_commands_come_from_the_variant_data() -> None:
    variants = project_variants()
    ref = "ghcr.io/gilmanlab/headjack:systemd@sha256:" + "a" * 64
    assert starting.command(variants["systemd"], ref, "headjack-image") == (
        f"hjk run BRANCH --image {ref} -- --cgroupns=host --privileged --volume=/sys/fs/cgroup:/sys/fs/cgroup:rw")
    assert starting.command(variants["base"], ref, "headjack-image") == f"hjk run BRANCH --image {ref}"
    docker = starting.command(variants["base"], ref, "docker").splitlines()
    assert docker[0] == f'docker run --detach --name agent -v "$PWD":/workspace {ref} sleep infinity'
    podman = starting.command(variants["dind"], ref, "podman").splitlines()[0]
    assert podman == f'podman run --detach --name agent --systemd=always -v "$PWD":/workspace {ref}'
    json_text = starting.command(variants["dind"], ref, "devcontainer").split("\n", 1)[1].rsplit("\n", 1)[0]
    assert json.loads(json_text) == {"image": ref}
    with pytest.raises(ValueError, match="unknown client 'vscode'"):
        starting.command(variants["base"], ref, "vscode")


def test_the_readme_start_commands_are_the_generated_ones() -> None:
    """README's "Starting the variants" is written by `run-args --readme`, never by hand."""
    settings = load_settings(None, project_dir=PROJECT_DIR)
    repository = f"{settings.config.registry or 'ghcr.io'}/{settings.config.namespace}/{settings.config.image}"
    readme = (PROJECT_DIR / "README.md").read_text()
    expected = report.with_section(readme, "starting", report.starting_markdown(list(project_variants()), repository))
    assert readme == expected, "README.md is stale: run `hjk-images run-args base --readme README.md`"


def test_run_args_prints_the_command_for_a_named_image() -> None:
    result = CliRunner().invoke(main, ["run-args", "dind", "--client", "headjack-devcontainer", "--reference", "R"])
    assert result.exit_code == 0, result.output
    assert '"image": "R"' in result.output and result.output.rstrip().endswith("hjk run BRANCH")
    unknown = CliRunner().invoke(main, ["run-args", "nosuch", "--reference", "R"])
    assert unknown.exit_code != 0 and "no variant named 'nosuch'" in unknown.output


def test_the_dev_containers_cli_is_pinned_locked_and_bumped_like_a_tool(tmp_path: Path) -> None:
    settings = load_settings(None, project_dir=PROJECT_DIR)
    (cli,) = client_tools(settings.config)
    assert (cli.name, cli.package, cli.source) == ("devcontainer", "@devcontainers/cli", "npm")
    loaded = lock.load(settings)
    assert loaded is not None
    pin = loaded.tools[CLIENTS]["devcontainer"]
    assert (pin.package, pin.source, pin.version) == ("@devcontainers/cli", "npm", cli.version)
    assert lock.stale_tools(settings, project_variants(), loaded) == []
    # the setup script installs the lock's pin, not a version of its own
    setup = (PROJECT_DIR / "scripts" / "setup-host.sh").read_text()
    assert "@devcontainers/cli@$DEVCONTAINER_VERSION" in setup and "0.89" not in setup
    chosen = bump.selected_tools(project_variants(), ["devcontainer"], {}, None, client_tools(settings.config))
    assert chosen == [(CLIENTS, cli)]
    factory = tmp_path / "factory.yaml"
    factory.write_text((PROJECT_DIR / "factory.yaml").read_text())
    moved = Bump(variant=CLIENTS, tool="devcontainer", source="npm", current=cli.version, status="bump",
                      target="9.9.9")
    text = bump.edited_text(factory, [moved], "clients")
    assert '- {name: devcontainer, package: "@devcontainers/cli", version: 9.9.9}' in text
    assert text.replace("9.9.9", cli.version) == factory.read_text()  # nothing else moved, comments kept


def test_junit_tells_the_clients_apart() -> None:
    from xml.etree import ElementTree as ET

    from builder.model.records import CheckOutcome, ImageResult, TestResults
    from builder.stages import smoke

    ok = CheckOutcome(name="c", kind="devcontainer", status="passed", duration_s=0.1, detail="")
    images = [ImageResult(variant="base", platform="linux/amd64", reference="r", checks=[ok]),
              ImageResult(variant="base", platform="linux/amd64", reference="r", checks=[ok], client="devcontainer",
                          deviation="host refuses --privileged")]
    suites = ET.fromstring(smoke.junit_xml(TestResults(run_id="1", images=images))).findall("testsuite")
    assert [s.get("name") for s in suites] == ["base linux/amd64", "base linux/amd64 (devcontainer)"]
    (prop,) = suites[1].iter("property")
    assert prop.get("name") == "devcontainer-deviation"


def test_a_deviation_is_never_shown_as_a_plain_pass() -> None:
    """An image started with stand-in flags (the host refused --privileged) passes, but the
    table, the release's stage line and the release record say how it was started."""
    from rich.console import Console

    from builder.model.records import CheckOutcome, ImageResult, TestResults
    from builder.present import report

    ok = CheckOutcome(name="c", kind="devcontainer", status="passed", duration_s=0.1, detail="")
    plain = ImageResult(variant="base", platform="linux/amd64", reference="r@sha256:" + "a" * 64, checks=[ok])
    stand_in = plain.model_copy(update={"variant": "dind", "client": "devcontainer",
                                        "deviation": "--privileged refused by the host: --cap-add=SYS_ADMIN"})
    results = TestResults(run_id="1", images=[plain, stand_in])
    assert results.passed and (plain.verdict, stand_in.verdict) == ("passed", "passed with a deviation")
    assert results.deviations == ["dind linux/amd64 (devcontainer): --privileged refused by the host: "
                                  "--cap-add=SYS_ADMIN"]
    console = Console(width=200, record=True)
    console.print(report.test_summary(results))
    assert "passed with a deviation" in console.export_text()
