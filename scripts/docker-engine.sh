#!/usr/bin/env bash
# A private Docker engine for the tests, built without any image registry.
#
#   scripts/docker-engine.sh start [--name N] [--swarm]
#                                               start it (idempotent); last line: DOCKER_HOST=unix://...
#   scripts/docker-engine.sh stop  [--name N]   stop it and remove all its state
#   scripts/docker-engine.sh run   [--name N] [--swarm] -- CMD...
#                                               start, run CMD with DOCKER_HOST set, stop whatever
#                                               CMD's outcome; where no engine can run here, CMD
#                                               runs without one and HARNESS_DOCKER_UNAVAILABLE says why
#
# --swarm also builds the device image (swtpm-images/device.Dockerfile: the harness and swtpm, for
# `harness run --swarm`) and makes the engine a single-node swarm manager listening on loopback
# only; where that fails, the engine still runs and HARNESS_SWARM_UNAVAILABLE says why.
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
DEVICE_IMAGE="${HARNESS_DEVICE_IMAGE:-enrollment-harness/device:latest}"

die() { echo "docker-engine: $*" >&2; exit 1; }
say() { echo "docker-engine: $*" >&2; }

command="${1:-}"; shift || true
name="a"
swarm=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --swarm) swarm=1; shift ;;
    --) shift; break ;;
    *) die "unknown option $1 (use: start|stop|run [--name N] [--swarm] [-- CMD...])" ;;
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
# The swarm's manager port, on loopback, one per engine (the gossip port, 7946, is fixed).
SWARM_PORT=$(( 12300 + NET_INDEX ))
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

harness_pip() {
  if [ -x "$ROOT/.venv/bin/pip" ]; then "$ROOT/.venv/bin/pip" "$@"; else python3 -m pip "$@"; fi
}

build_device_image() {
  # The harness and its dependencies as wheels (pip reaches the index here; the build needs none),
  # then swtpm-images/device.Dockerfile on the same debootstrap base. Cached by the sources' digest.
  local key image_cache ctx
  key=$({ cat "$ROOT/swtpm-images/device.Dockerfile" "$ROOT/pyproject.toml";
          find "$ROOT/harness" -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 cat; } | cksum | cut -d' ' -f1)
  image_cache="$CACHE/device-image-$key.tar"
  if "${DOCKER[@]}" image inspect "$DEVICE_IMAGE" --format '{{index .Config.Labels "org.enrollment-harness.source"}}' \
      2>/dev/null | grep -qx "$key"; then
    return 0
  fi
  if [ -s "$image_cache" ] && "${DOCKER[@]}" load -i "$image_cache" >/dev/null 2>&1; then
    return 0
  fi
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/eah-device.XXXXXX")"
  say "building $DEVICE_IMAGE (the harness as wheels, then swtpm-images/device.Dockerfile)"
  if ! harness_pip wheel --quiet --wheel-dir "$ctx/wheels" "$ROOT" >"$STATE/wheels.log" 2>&1; then
    tail -n 20 "$STATE/wheels.log" >&2; rm -rf "$ctx"; return 1
  fi
  cp "$ROOT/swtpm-images/device.Dockerfile" "$ctx/Dockerfile"
  if ! DOCKER_BUILDKIT=0 "${DOCKER[@]}" build --network host --build-arg "BASE=$BASE_IMAGE" \
      --label "org.enrollment-harness.source=$key" -t "$DEVICE_IMAGE" "$ctx" >"$STATE/device-build.log" 2>&1; then
    tail -n 20 "$STATE/device-build.log" >&2; rm -rf "$ctx"; return 1
  fi
  rm -rf "$ctx"
  rm -f "$CACHE"/device-image-*.tar
  "${DOCKER[@]}" save -o "$image_cache.partial" "$DEVICE_IMAGE" && mv "$image_cache.partial" "$image_cache"
}

init_swarm() {
  local state
  state="$("${DOCKER[@]}" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)"
  [ "$state" = "active" ] && return 0
  # Loopback only: the swarm's ports are for this machine's tasks, never its network.
  "${DOCKER[@]}" swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$SWARM_PORT" \
    >"$STATE/swarm.log" 2>&1 || { tail -n 5 "$STATE/swarm.log" >&2; return 1; }
}

start_swarm() {
  # The base image is on the engine once build_images has run (it imports it when it builds).
  if ! "${DOCKER[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    "${DOCKER[@]}" import "$(base_tarball)" "$BASE_IMAGE" >/dev/null
  fi
  build_device_image || { echo "the device image could not be built (see above)"; return; }
  init_swarm || { echo "the engine could not become a swarm manager (see above)"; return; }
}

stop_engine() {
  local pid=""
  [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -S "$SOCK" ] && running; then
    # A swarm's tasks first (they come back otherwise), then every container: dockerd's shutdown
    # leaves their shims otherwise.
    "${DOCKER[@]}" swarm leave --force >/dev/null 2>&1 || true
    "${DOCKER[@]}" ps -aq | xargs -r "${DOCKER[@]}" rm -f >/dev/null 2>&1 || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # The engine's own containerd and shims live under its exec root: end whatever is left there.
  for proc in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -q -- "$STATE/"; then
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
  if [ -n "$swarm" ]; then
    swarm_reason="$(start_swarm)"
    if [ -n "$swarm_reason" ]; then
      say "$swarm_reason; the engine runs without a swarm"
      echo "HARNESS_SWARM_UNAVAILABLE=$swarm_reason"
    fi
  fi
  echo "DOCKER_HOST=unix://$SOCK"
}

case "$command" in
  start) start_engine ;;
  stop) stop_engine ;;
  run)
    [ $# -gt 0 ] || die "run needs a command after --"
    reason="$(why_not)"
    if [ -z "$reason" ] && started="$(start_engine)"; then
      trap stop_engine EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      while IFS= read -r line; do
        case "$line" in DOCKER_HOST=*|HARNESS_SWARM_UNAVAILABLE=*) export "${line?}" ;; esac
      done <<<"$started"
      status=0
      "$@" || status=$?
      exit "$status"
    fi
    [ -n "$reason" ] || reason="the private Docker engine did not start (see above)"
    say "$reason; the docker tests will skip"
    HARNESS_DOCKER_UNAVAILABLE="$reason" exec "$@"
    ;;
  *) die "usage: $0 start|stop|run [--name N] [--swarm] [-- CMD...]" ;;
esac
