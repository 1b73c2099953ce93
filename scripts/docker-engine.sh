#!/usr/bin/env bash
# A private Docker engine for the tests, built without any image registry.
#
#   scripts/docker-engine.sh start [--name N]   start it (idempotent); last line: DOCKER_HOST=unix://...
#   scripts/docker-engine.sh stop  [--name N]   stop it and remove all its state
#   scripts/docker-engine.sh run   [--name N] -- CMD...
#                                               start, run CMD with DOCKER_HOST set, stop whatever
#                                               CMD's outcome; where no engine can run here, CMD
#                                               runs without one and HARNESS_DOCKER_UNAVAILABLE says why
#
# The engine has its own data root, exec root, pidfile, socket and bridge under a short temp
# dir, so it never meets a system engine nor another private one (--name b starts a second).
# It writes no iptables rule, turns on no forwarding and publishes ports on 127.0.0.1 only.
# The base image is `debootstrap --variant=minbase bookworm` from the mirror apt already uses,
# cached as a tarball under ~/.cache; swtpm-images/ is built on it with Debian's swtpm.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-harness"
BASE_IMAGE="enrollment-harness/debian:bookworm-minbase"
SWTPM_IMAGE="${HARNESS_SWTPM_IMAGE:-enrollment-harness/swtpm:latest}"

die() { echo "docker-engine: $*" >&2; exit 1; }
say() { echo "docker-engine: $*" >&2; }

command="${1:-}"; shift || true
name="a"
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1 (use: start|stop|run [--name N] [-- CMD...])" ;;
  esac
done
[[ "$name" =~ ^[a-z0-9]{1,8}$ ]] || die "--name must be 1-8 lowercase letters or digits"

# Short on purpose: a unix socket path must stay under 108 bytes.
STATE="${TMPDIR:-/tmp}/eah-engine-$name"
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
BRIDGE="eah-$name"
# Each engine gets its own /24 so two private engines never share addresses.
NET_INDEX=$(( $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 200 + 20 ))
SUBNET_GW="172.29.$NET_INDEX.1/24"
DOCKER=(docker -H "unix://$SOCK")

why_not() {
  # Why no private engine can run here, or nothing when one can.
  [ "$(id -u)" -eq 0 ] || { echo "a private Docker engine needs root (running as $(id -un))"; return; }
  command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install docker.io)"; return; }
  command -v docker >/dev/null || { echo "the docker client is not installed (apt-get install docker.io)"; return; }
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)"; return; }
  command -v ip >/dev/null || { echo "the ip command is missing (apt-get install iproute2)"; return; }
}

running() { [ -S "$SOCK" ] && "${DOCKER[@]}" version >/dev/null 2>&1; }

debian_mirror() {
  # The first Debian mirror apt uses, one-line or deb822 format.
  local files=() url
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  url=$(awk '
    /^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }
    /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }
  ' "${files[@]}" | grep -v -- '-security' | head -n1)
  echo "$url"
}

base_tarball() {
  local tarball="$CACHE/debian-bookworm-minbase.tar" mirror tmp
  if [ -s "$tarball" ]; then echo "$tarball"; return; fi
  mirror="$(debian_mirror)"
  [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/eah-rootfs.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  say "building the base image with debootstrap from $mirror (cached afterwards)"
  debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/log" 2>&1 \
    || { tail -n 20 "$tmp/log" >&2; die "debootstrap failed"; }
  rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"*
  tar --numeric-owner -C "$tmp/rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  echo "$tarball"
}

start_daemon() {
  mkdir -p "$STATE/data" "$STATE/exec"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
    ip addr add "$SUBNET_GW" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  say "starting dockerd (state in $STATE)"
  # setsid: the engine outlives this script (start returns) but not `stop` or `run`.
  setsid dockerd \
    --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$PIDFILE" \
    --host "unix://$SOCK" --bridge "$BRIDGE" \
    --iptables=false --ip-forward=false --ip-masq=false --ip 127.0.0.1 \
    --cgroup-parent "/eah-$name" \
    --log-level warn \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 150); do
    running && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$STATE/dockerd.log" >&2
  stop_engine
  die "dockerd did not start"
}

build_images() {
  local key image_cache base
  "${DOCKER[@]}" image inspect "$SWTPM_IMAGE" >/dev/null 2>&1 && return 0
  base="$(base_tarball)"
  # The built image is cached too, keyed by its Dockerfile and base, so a warm start only loads it.
  key=$({ cat "$ROOT/swtpm-images/Dockerfile"; stat -c '%s %Y' "$base"; } | cksum | cut -d' ' -f1)
  image_cache="$CACHE/swtpm-image-$key.tar"
  if [ -s "$image_cache" ] && "${DOCKER[@]}" load -i "$image_cache" >/dev/null 2>&1 \
      && "${DOCKER[@]}" image inspect "$SWTPM_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  if ! "${DOCKER[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    "${DOCKER[@]}" import "$base" "$BASE_IMAGE" >/dev/null
  fi
  say "building $SWTPM_IMAGE from swtpm-images/"
  # Host network for apt only: the engine's bridge has no route out, by design.
  DOCKER_BUILDKIT=0 "${DOCKER[@]}" build --network host --build-arg "BASE=$BASE_IMAGE" \
    -t "$SWTPM_IMAGE" "$ROOT/swtpm-images" >"$STATE/build.log" 2>&1 \
    || { tail -n 20 "$STATE/build.log" >&2; return 1; }
  rm -f "$CACHE"/swtpm-image-*.tar
  "${DOCKER[@]}" save -o "$image_cache.partial" "$SWTPM_IMAGE" && mv "$image_cache.partial" "$image_cache"
}

stop_engine() {
  local pid=""
  [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -S "$SOCK" ] && running; then
    # Containers first: dockerd's shutdown leaves their shims otherwise.
    "${DOCKER[@]}" ps -aq | xargs -r "${DOCKER[@]}" rm -f >/dev/null 2>&1 || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # The engine's own containerd and shims live under its exec root: end whatever is left there.
  for proc in /proc/[0-9]*; do
    if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -q -- "$STATE/"; then
      kill -KILL "${proc#/proc/}" 2>/dev/null || true
    fi
  done
  if [ -d "$STATE" ]; then
    # Mounts under the data root (overlay, shm) must go before the directory can.
    { grep -- " $STATE/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r mnt; do
      umount -l "$mnt" 2>/dev/null || true
    done
    rm -rf "$STATE"
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE" 2>/dev/null || true
  # The containers' cgroup parent (one per engine, so its CPU can be read on its own).
  for controller in /sys/fs/cgroup/*/; do
    [ -d "$controller/eah-$name" ] && rmdir "$controller/eah-$name" 2>/dev/null || true
  done
}

start_engine() {
  local reason
  reason="$(why_not)"
  [ -z "$reason" ] || die "$reason"
  running || { stop_engine; start_daemon; }
  build_images || { stop_engine; die "the images could not be built"; }
  echo "DOCKER_HOST=unix://$SOCK"
}

case "$command" in
  start) start_engine ;;
  stop) stop_engine ;;
  run)
    [ $# -gt 0 ] || die "run needs a command after --"
    reason="$(why_not)"
    if [ -z "$reason" ] && host="$(start_engine | tail -n1)"; then
      trap stop_engine EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      export "${host?}"
      status=0
      "$@" || status=$?
      exit "$status"
    fi
    [ -n "$reason" ] || reason="the private Docker engine did not start (see above)"
    say "$reason; the docker tests will skip"
    HARNESS_DOCKER_UNAVAILABLE="$reason" exec "$@"
    ;;
  *) die "usage: $0 start|stop|run [--name N] [-- CMD...]" ;;
esac
