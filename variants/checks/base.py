"""Runtime checks for base (and so for every variant built on it).

Each `check_*` function gets the started container's session; it fails by
raising AssertionError and may return a short detail.
"""

from __future__ import annotations

import os
import shlex

from builder.engine import commands as tools
from builder.stages.smoke import Session

GIT = "git -c user.name=Smoke -c user.email=smoke@headjack.invalid"


def check_plain_exec_runs_as_the_image_user(session: Session) -> str:
    """Headjack passes no -u: agents run as whatever USER the image ends with."""
    code, out = session.exec(["id", "-un"])
    assert code == 0, f"id failed: {out}"
    code, expected = session.exec(["getent", "passwd", session.user])
    name = expected.split(":", 1)[0] if code == 0 else session.user
    assert out.strip() == name, f"a plain exec runs as {out.strip()}, the image's USER is {session.user}"
    return f"agents run as {out.strip()}"


def check_git_commits_in_the_mounted_worktree(session: Session) -> str:
    """Headjack mounts the user's worktree, owned by the host user, at /workspace."""
    tools.run(["git", "init", "-q", str(session.workspace)])
    tools.run(["chown", "-R", "1000:1000", str(session.workspace)])
    code, out = session.shell(
        f"set -e; echo hello > note.txt; git add note.txt; {GIT} commit -qm first; git log --oneline | wc -l"
    )
    assert code == 0, f"git commit in /workspace failed as the image's user: {out}"
    _, uid = session.exec(["id", "-u"])
    owner = os.stat(session.workspace / "note.txt").st_uid
    assert str(owner) == uid.strip(), f"note.txt is owned by uid {owner} on the host, expected {uid.strip()}"
    return f"committed; files owned by uid {owner} on the host"


def check_version_managers_answer(session: Session) -> str:
    answers = []
    for argv in (["pyenv", "versions"], ["rustup", "--version"], ["nodenv", "--version"]):
        code, out = session.exec(argv)
        assert code == 0, f"{' '.join(argv)} failed: {out}"
        answers.append(out.strip().splitlines()[0] if out.strip() else "(no versions)")
    return "; ".join(answers)


def check_agent_clis_on_plain_exec(session: Session) -> str:
    """Headjack runs `docker exec <id> claude`: no login shell, so PATH must come from the image."""
    found = []
    for cli in ("claude", "gemini", "codex"):
        code, out = session.exec(["sh", "-c", f"command -v {cli}"])
        assert code == 0, f"{cli} is not on the PATH of a plain exec"
        found.append(out.strip())
    return ", ".join(found)


# How many package.json files of the global npm tree were read, then each whose
# `engines.node` this Node doesn't satisfy (judged by npm's own semver), one per line.
_ENGINE_MISMATCHES = r"""
const fs = require("fs"), path = require("path");
const npmRoot = path.dirname(path.dirname(fs.realpathSync(process.argv[1])));
const semver = require(path.join(npmRoot, "node_modules", "semver"));
const bad = [];
let read = 0;
function walk(dir) {
  for (const entry of fs.readdirSync(dir, {withFileTypes: true})) {
    if (!entry.isDirectory()) continue;
    const folder = path.join(dir, entry.name);
    if (entry.name.startsWith("@")) { walk(folder); continue; }
    const manifest = path.join(folder, "package.json");
    if (fs.existsSync(manifest)) {
      const pkg = JSON.parse(fs.readFileSync(manifest, "utf8"));
      read += 1;
      const wanted = pkg.engines && pkg.engines.node;
      if (typeof wanted === "string" && !semver.satisfies(process.version, wanted, {includePrerelease: true}))
        bad.push(`${pkg.name}@${pkg.version} wants node ${wanted}`);
    }
    if (fs.existsSync(path.join(folder, "node_modules"))) walk(path.join(folder, "node_modules"));
  }
}
walk(process.argv[2]);
console.log([read, ...bad].join("\n"));
"""


def check_npm_tree_is_valid_for_this_node(session: Session) -> str:
    """`npm ls` finds no invalid or missing package, and no package of the global tree
    declares an engines.node range that the image's Node doesn't satisfy."""
    code, out = session.exec(["npm", "ls", "--global", "--all"], timeout=300)
    assert code == 0, f"npm ls --global --all reports problems: {out.strip()[-800:]}"
    _, version = session.exec(["node", "--version"])
    code, out = session.shell(
        f"node -e {shlex.quote(_ENGINE_MISMATCHES)} \"$(command -v npm)\" \"$(npm root -g)\"", timeout=300,
    )
    assert code == 0, f"the engines check failed to run: {out.strip()[-500:]}"
    read, *mismatched = out.strip().splitlines()
    assert int(read) > 0, "no package.json found in the global npm tree"
    assert not mismatched, f"engine-mismatched packages under {version.strip()}: {'; '.join(mismatched)[:800]}"
    return f"npm tree valid; all {read} packages' engines.node ranges hold for {version.strip()}"


def check_npm_binaries_carry_no_debug_sections(session: Session) -> str:
    """strip-debug-info ran on the global npm tree: no ELF file there keeps DWARF sections
    (every file over 100 kB that readelf can read is judged, not only those the helper picked)."""
    code, out = session.shell(
        "find \"$(npm root -g)\" -type f -size +100k | while read -r f; do "
        "readelf -h \"$f\" >/dev/null 2>&1 || continue; echo ELF; "
        "readelf -S \"$f\" 2>/dev/null | grep -q ' \\.debug_info' && echo \"DEBUG $f\"; done; true",
        user="0", timeout=300,
    )
    assert code == 0, f"the scan failed: {out.strip()[-500:]}"
    debug = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("DEBUG ")]
    native = out.splitlines().count("ELF")
    assert native > 0, "no native binary found in the global npm tree (the agents ship some)"
    assert not debug, f"native binaries with debug sections: {', '.join(debug)}"
    return f"{native} native binaries, none with debug sections"
