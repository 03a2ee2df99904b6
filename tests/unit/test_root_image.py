"""The root image writer: the same bytes for the same file system, on any machine and at
any time, and a layout a registry client can read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from builder.engine import ocilayout
from builder.model.config import RootBootstrap
from builder.model.graph import package_moves
from builder.model.root_tree import HELPERS, TreeFile, root_tree
from builder.stages import root
from tests.conftest import PROJECT_DIR

STATUS = """Package: libc6
Status: install ok installed
Version: 2.41-12

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Version: 5.2.37-2
Description: the shell
 Version: not a field
"""


def rootfs_tar(path: Path, status: str = STATUS) -> Path:
    with tarfile.open(path, "w") as archive:
        data = status.encode()
        info = tarfile.TarInfo("./var/lib/dpkg/status")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def write(tar: Path, out: Path, arch: str = "amd64") -> ocilayout.LayoutImage:
    return ocilayout.write_image(tar, out, arch=arch, labels={"k": "v"}, cmd=["bash"], created_by="ADD root.tar /")


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def test_same_file_system_same_digest_wherever_and_whenever_written(tmp_path: Path) -> None:
    first = rootfs_tar(tmp_path / "a.tar")
    second = rootfs_tar(tmp_path / "elsewhere-b.tar")
    os.utime(second, (1_000_000_000, 1_000_000_000))  # another file time, another name
    one, two = write(first, tmp_path / "one"), write(second, tmp_path / "sub" / "two")
    assert one.digest == two.digest and one.diff_id == two.diff_id
    assert ocilayout.read_image(tmp_path / "one") == one


def test_the_layer_header_carries_no_time_or_name_and_unpacks_to_the_tarball(tmp_path: Path) -> None:
    tar = rootfs_tar(tmp_path / "root.tar")
    image = write(tar, tmp_path / "out")
    manifest = json.loads(blob(image.path, image.digest))
    layer = blob(image.path, manifest["layers"][0]["digest"])
    assert layer[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME or other flags
    assert layer[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert gzip.decompress(layer) == tar.read_bytes()
    assert image.diff_id == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()


def test_the_config_is_fixed_and_names_its_platform(tmp_path: Path) -> None:
    image = write(rootfs_tar(tmp_path / "root.tar"), tmp_path / "out", arch="arm64")
    manifest = json.loads(blob(image.path, image.digest))
    config = json.loads(blob(image.path, manifest["config"]["digest"]))
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert {h["created"] for h in config["history"]} == {"1970-01-01T00:00:00Z"}
    assert config["config"]["Cmd"] == ["bash"] and config["config"]["Labels"] == {"k": "v"}
    index = json.loads((image.path / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == ocilayout.REF_NAME


def test_another_file_system_or_platform_is_another_digest(tmp_path: Path) -> None:
    base = write(rootfs_tar(tmp_path / "a.tar"), tmp_path / "a")
    moved = write(rootfs_tar(tmp_path / "b.tar", STATUS.replace("2.41-12", "2.41-13")), tmp_path / "b")
    other_arch = write(rootfs_tar(tmp_path / "c.tar"), tmp_path / "c", arch="arm64")
    assert len({base.digest, moved.digest, other_arch.digest}) == 3


def test_a_half_written_layout_is_not_read_as_an_image(tmp_path: Path) -> None:
    image = write(rootfs_tar(tmp_path / "a.tar"), tmp_path / "out")
    manifest = json.loads(blob(image.path, image.digest))
    (image.path / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":", 1)[1]).unlink()
    assert ocilayout.read_image(image.path) is None
    assert ocilayout.read_image(tmp_path / "absent") is None


def test_installed_packages_are_read_from_dpkg_status(tmp_path: Path) -> None:
    assert root.packages_in(rootfs_tar(tmp_path / "a.tar")) == {"libc6": "2.41-12", "bash": "5.2.37-2"}


def test_a_moved_root_names_the_packages_that_moved_it() -> None:
    before = {"libc6": "2.41-12", "bash": "5.2", "gone": "1"}
    after = {"libc6": "2.41-13", "bash": "5.2", "new": "2"}
    assert package_moves(before, after) == "gone 1 -> (none); libc6 2.41-12 -> 2.41-13; new (none) -> 2"
    assert package_moves({}, after) == ""
    assert package_moves(before, before) == "no package moved"


def test_the_key_tag_names_suite_arch_and_inputs() -> None:
    inputs = root.RootInputs(RootBootstrap(), root_tree(PROJECT_DIR / "dockerfiles"))
    tag = root.key_tag("r.example/ns/img-root", inputs, "arm64")
    assert tag == f"r.example/ns/img-root:trixie-arm64-{inputs.key('arm64')}"
    # a helper's edit moves the image's key, not the file system's (no bootstrap runs for it)
    edited = (TreeFile(inputs.tree[0].path, inputs.tree[0].data + b"# edited\n", 0o755), *inputs.tree[1:])
    assert root.RootInputs(RootBootstrap(), edited).key("arm64") != inputs.key("arm64")
    assert root.cache_key(inputs.boot, "arm64") == root.cache_key(RootBootstrap(), "arm64")


def test_the_tree_replaces_the_build_hosts_network_files_and_lands_at_the_epoch(tmp_path: Path) -> None:
    source = tmp_path / "rootfs.tar"
    with tarfile.open(source, "w") as archive:
        for name, data in (("./etc/hostname", b"buildhost\n"), ("./etc/resolv.conf", b"nameserver 10.0.0.1\n"),
                           ("./etc/os-release", b"ID=debian\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    tree = root_tree(PROJECT_DIR / "dockerfiles")
    made = [tmp_path / "a.tar", tmp_path / "b.tar"]
    for out in made:
        root.with_tree(source, tree, out)
    assert made[0].read_bytes() == made[1].read_bytes()
    with tarfile.open(made[0]) as archive:
        members = {m.name.removeprefix("./"): m for m in archive}
        assert archive.extractfile(members["etc/hostname"]).read() == b""  # type: ignore[union-attr]
        assert archive.extractfile(members["etc/os-release"]).read() == b"ID=debian\n"  # type: ignore[union-attr]
        names = [n.removeprefix("./") for n in archive.getnames()]
        assert names.count("etc/hostname") == 1 and names.count("etc/resolv.conf") == 1  # replaced, not added
        assert members["run/secrets"].isdir()
        assert members["usr/local/bin/settle-times"].mode == 0o755
        assert {m.mtime for m in members.values()} == {0}
        assert {f"usr/local/bin/{name}" for name in HELPERS} <= set(members)
