#!/usr/bin/env bash
# Installs the Debian packages the harness needs, only those that are missing.
# Runs apt-get as root, or through sudo; says what to do when neither works.
set -euo pipefail

want_browser=0
want_docker=0
for flag in "$@"; do
  case "$flag" in
    --browser) want_browser=1 ;;
    --docker) want_docker=1 ;;  # a private engine for the docker tests (scripts/docker-engine.sh)
    *) echo "setup: unknown option $flag" >&2; exit 2 ;;
  esac
done

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkgconfig() { pkg-config --exists "$1" 2>/dev/null || missing+=("$2"); }

need_cmd swtpm swtpm
need_cmd swtpm_setup swtpm-tools
need_cmd pkg-config pkg-config
need_cmd gcc gcc
need_pkgconfig tss2-esys libtss2-dev
# tpm2-pytss loads the swtpm TCTI at run time
ls /usr/lib/*/libtss2-tcti-swtpm.so* >/dev/null 2>&1 || missing+=("libtss2-tcti-swtpm0")
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3-venv")
python3 -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || missing+=("python3-dev")
if [ "$want_browser" = 1 ]; then
  need_cmd chromium chromium
  need_cmd chromedriver chromium-driver
fi
# Only root runs a private engine; elsewhere the docker tests skip and say why.
if [ "$want_docker" = 1 ] && [ "$(id -u)" -eq 0 ]; then
  need_cmd dockerd docker.io
  need_cmd debootstrap debootstrap
fi

[ ${#missing[@]} -eq 0 ] && exit 0

# Deduplicate while keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "setup: installing Debian packages: ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo)
  echo "setup: not root, using sudo"
else
  echo "setup: these Debian packages are missing: ${missing[*]}" >&2
  echo "setup: run as root, or give this user sudo, or install them yourself:" >&2
  echo "       apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# An install can fail on a stale package list: update once, then retry.
if ! "${run[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  "${run[@]}" apt-get update
  "${run[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
