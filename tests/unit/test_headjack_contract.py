"""Headjack's label contract: label values -> `docker run` arguments, rule for rule as
Headjack's own `flags` package and `buildRunArgs` (internal/flags, internal/container)."""

from __future__ import annotations

import pytest

from builder.model import headjack
from builder.stages.lint import contract_problems
from tests.headjack_start import exec_argv

SYSTEMD_FLAGS = "privileged=true cgroupns=host volume=/sys/fs/cgroup:/sys/fs/cgroup:rw"


@pytest.mark.parametrize(
    ("label", "args"),
    [
        ("", []),
        ("memory=2g systemd=always", ["--memory=2g", "--systemd=always"]),
        ("privileged=true", ["--privileged"]),
        ("privileged=TRUE", ["--privileged"]),
        ("debug=false", []),
        ("privileged", ["--privileged"]),  # a bare key is true
        ("volume=/a:/b volume=/c:/d", ["--volume=/a:/b", "--volume=/c:/d"]),
        ("volume=/a:/b volume=/c:/d volume=/e", ["--volume=/a:/b", "--volume=/c:/d", "--volume=/e"]),
        ("env=FOO=bar", ["--env=FOO=bar"]),  # split on the first = only
        ("=orphan key=v", ["--key=v"]),  # an empty key is skipped
        ("zeta=1   alpha=2", ["--alpha=2", "--zeta=1"]),  # sorted by key, any white space
        ("privileged=true privileged=x", ["--privileged=x"]),  # a string after a bool overwrites it
        ("systemd=always privileged=true volume=/a:/b volume=/c:/d",
         ["--privileged", "--systemd=always", "--volume=/a:/b", "--volume=/c:/d"]),
        (SYSTEMD_FLAGS, ["--cgroupns=host", "--privileged", "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw"]),
    ],
)
def test_flags_label_becomes_headjacks_arguments(label: str, args: list[str]) -> None:
    assert headjack.to_args(headjack.parse_flags(label)) == args


def test_the_run_line_is_headjacks() -> None:
    labels = {"io.headjack.init": "/lib/systemd/systemd", "io.headjack.docker.flags": SYSTEMD_FLAGS}
    run = headjack.plan_run(labels)
    assert run.run_argv("hj-1", "img@sha256:x", "/src/wt") == [
        "run", "--detach", "--name", "hj-1", "--cgroupns=host", "--privileged",
        "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/src/wt:/workspace", "img@sha256:x",
        "/lib/systemd/systemd",
    ]
    assert run.substituted == "" and run.has_init


def test_no_labels_means_sleep_infinity_and_no_flags() -> None:
    run = headjack.plan_run({})
    assert run.run_argv("n", "img", "/w") == ["run", "--detach", "--name", "n", "-v", "/w:/workspace", "img",
                                               "sleep", "infinity"]
    assert not run.has_init


def test_init_is_split_on_white_space_like_strings_fields() -> None:
    assert headjack.init_command({"io.headjack.init": "  /sbin/init   --log-level=info "}) == [
        "/sbin/init", "--log-level=info"]


def test_each_runtime_reads_its_own_label() -> None:
    labels = {"io.headjack.docker.flags": "privileged=true", "io.headjack.podman.flags": "systemd=always"}
    assert headjack.plan_run(labels, "podman").flags == {"systemd": "always"}
    assert headjack.plan_run(labels, "docker").flags == {"privileged": True}
    assert headjack.plan_run(labels, "apple").flags == {}


def test_a_refused_privileged_is_replaced_and_said() -> None:
    labels = {"io.headjack.docker.flags": SYSTEMD_FLAGS,
              headjack.UNPRIVILEGED_LABEL: "cap-add=SYS_ADMIN cap-add=NET_ADMIN security-opt=seccomp=unconfined"}
    run = headjack.plan_run(labels, privileged_refused=True)
    assert headjack.to_args(run.flags) == [
        "--cap-add=SYS_ADMIN", "--cap-add=NET_ADMIN", "--cgroupns=host", "--security-opt=seccomp=unconfined",
        "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
    ]
    assert "replaced privileged=true" in run.substituted
    # nothing changes where the host allows --privileged
    assert headjack.plan_run(labels).flags == headjack.parse_flags(SYSTEMD_FLAGS)


def test_a_refused_privileged_without_a_stand_in_is_an_error() -> None:
    with pytest.raises(headjack.ContractError, match=r"no io\.headjack\.images\.docker\.unprivileged-flags"):
        headjack.plan_run({"io.headjack.docker.flags": "privileged=true"}, privileged_refused=True)


def test_exec_passes_no_user() -> None:
    assert exec_argv("n", ["claude", "--version"]) == ["exec", "n", "claude", "--version"]
    assert exec_argv("n", ["ls"], workdir="/workspace") == ["exec", "-w", "/workspace", "n", "ls"]


@pytest.mark.parametrize("text", ["privileged", "--privileged=true", "=x", "cgroupns=host bare"])
def test_flags_that_are_not_key_value_pairs_are_refused(text: str) -> None:
    with pytest.raises(headjack.ContractError):
        headjack.check_flags(text)


def _dockerfile(labels: str, user: str) -> str:
    return f'FROM x\nUSER 1000\nLABEL {labels} \\\n      org.example="a b"\nUSER {user}\n'


def test_lint_accepts_the_contract() -> None:
    assert contract_problems(_dockerfile(
        f'io.headjack.init="/lib/systemd/systemd" io.headjack.docker.flags="{SYSTEMD_FLAGS}"', "0")) == []


@pytest.mark.parametrize(
    ("labels", "user", "problem"),
    [
        ('io.headjack.init="/lib/systemd/systemd"', "0", "neither io.headjack.docker.flags"),
        (f'io.headjack.init="/sbin/init" io.headjack.docker.flags="{SYSTEMD_FLAGS}"', "1000",
         "ends as USER 1000"),
        ('io.headjack.init="/sbin/init" io.headjack.podman.flags="systemd"', "root",
         "'systemd' is not a key=value pair"),
    ],
)
def test_lint_names_a_broken_contract(labels: str, user: str, problem: str) -> None:
    problems = contract_problems(_dockerfile(labels, user))
    assert any(problem in p for p in problems), problems


def test_the_smoke_stage_applies_every_flag_to_its_container() -> None:
    from builder.model.errors import FactoryError
    from builder.stages.smoke import container_kwargs

    run = headjack.plan_run({
        "io.headjack.docker.flags": SYSTEMD_FLAGS + " volume=/var/lib/docker tmpfs=/run cap-add=NET_ADMIN"
                                    " security-opt=seccomp=unconfined",
    })
    assert container_kwargs(run) == {
        "privileged": True, "cgroupns": "host", "cap_add": ["NET_ADMIN"], "security_opt": ["seccomp=unconfined"],
        "binds": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        "anonymous_volumes": ["/var/lib/docker"], "tmpfs": {"/run": ""},
    }
    with pytest.raises(FactoryError, match="can't apply the flag --memory"):
        container_kwargs(headjack.plan_run({"io.headjack.docker.flags": "memory=2g"}))
