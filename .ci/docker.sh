#!/usr/bin/env bash
# Private Docker engine for the container test (tests/test_container.py) and bench/bench_image_size.py.
#
#   .ci/docker.sh run CMD [ARGS...]   start dockerd, run CMD with DOCKER_HOST set, stop dockerd (also on failure)
#   .ci/docker.sh start               start dockerd in the background; prints the variables to export
#   .ci/docker.sh stop                stop the dockerd that `start` left running (by its pid)
#
# It installs Debian's docker.io and debootstrap when they are missing, runs dockerd on its own
# socket and data root (no bridge, no iptables: this machine has neither), waits until `docker info`
# answers, and makes the local base image (Debian bookworm minbase with python3 and venv) with
# debootstrap once: no registry is reachable here, so nothing can be pulled.
set -euo pipefail

CI_DOCKER_DIR="${CI_DOCKER_DIR:-/tmp/ci-docker}"
BASE_IMAGE="${BASE_IMAGE:-local/bookworm-python:latest}"
SOCKET="$CI_DOCKER_DIR/docker.sock"
PIDFILE="$CI_DOCKER_DIR/dockerd.pid"
LOGFILE="$CI_DOCKER_DIR/dockerd.log"
# Debian's client matches Debian's daemon (20.10) and has BuildKit built in; fall back to PATH.
DOCKER_BIN="${DOCKER_BIN:-$(command -v /usr/bin/docker || command -v docker || true)}"

log() { printf '[docker.sh] %s\n' "$*" >&2; }

install_missing() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        local t0=$SECONDS
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        log "installed in $((SECONDS - t0)) s"
        DOCKER_BIN="$(command -v /usr/bin/docker || command -v docker)"
    fi
}

docker_cli() { DOCKER_HOST="unix://$SOCKET" "$DOCKER_BIN" "$@"; }

start_dockerd() {
    mkdir -p "$CI_DOCKER_DIR/data" "$CI_DOCKER_DIR/exec"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        log "dockerd already running (pid $(cat "$PIDFILE"))"
        return
    fi
    local t0=$SECONDS
    dockerd --host "unix://$SOCKET" --data-root "$CI_DOCKER_DIR/data" --exec-root "$CI_DOCKER_DIR/exec" \
        --pidfile "$CI_DOCKER_DIR/dockerd.internal.pid" --bridge=none --iptables=false --ip6tables=false \
        >"$LOGFILE" 2>&1 &
    echo $! >"$PIDFILE"
    # Poll until the engine answers (no blind sleep); give up after 60 s with its log.
    local deadline=$((SECONDS + 60))
    until docker_cli info >/dev/null 2>&1; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "dockerd did not start; last lines of $LOGFILE:"
            tail -n 20 "$LOGFILE" >&2
            stop_dockerd
            return 1
        fi
        sleep 0.2
    done
    log "dockerd ready in $((SECONDS - t0)) s (pid $(cat "$PIDFILE"), socket $SOCKET)"
}

stop_dockerd() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            # dockerd stops its containers and its containerd first: wait up to 30 s, then force.
            local deadline=$((SECONDS + 30))
            while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
            if kill -0 "$pid" 2>/dev/null; then
                log "dockerd (pid $pid) ignored SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "dockerd stopped (pid $pid)"
        fi
        rm -f "$PIDFILE"
    fi
    # dockerd leaves its default network namespace bind-mounted (exec/netns/default); unmount
    # what is still mounted under our directory so nothing outlives the run.
    local mounts mount
    mounts="$(awk -v dir="$CI_DOCKER_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r)"
    for mount in $mounts; do
        umount "$mount" 2>/dev/null || umount -l "$mount" || log "could not unmount $mount"
    done
}

make_base_image() {
    if docker_cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE exists"
        return
    fi
    local t0=$SECONDS rootfs="$CI_DOCKER_DIR/rootfs"
    rm -rf "$rootfs"
    log "debootstrap bookworm into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
        >"$CI_DOCKER_DIR/debootstrap.log" 2>&1 || {
        tail -n 20 "$CI_DOCKER_DIR/debootstrap.log" >&2
        return 1
    }
    # apt caches are of no use in an image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker_cli import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "base image $BASE_IMAGE made in $((SECONDS - t0)) s"
}

start() {
    install_missing
    start_dockerd
    make_base_image || { stop_dockerd; return 1; }
}

case "${1:-}" in
start)
    start
    printf "export DOCKER_HOST=unix://%s DOCKER_BIN=%s BASE_IMAGE=%s DOCKER_BUILDKIT=1\n" "$SOCKET" "$DOCKER_BIN" "$BASE_IMAGE"
    ;;
stop)
    stop_dockerd
    ;;
run)
    shift
    [ "$#" -gt 0 ] || { log "usage: $0 run CMD [ARGS...]"; exit 2; }
    trap stop_dockerd EXIT
    trap 'exit 130' INT TERM
    start
    # CI_DOCKER=1: the container tests fail, not skip, if the engine is unusable.
    export DOCKER_HOST="unix://$SOCKET" DOCKER_BIN BASE_IMAGE DOCKER_BUILDKIT=1 CI_DOCKER=1
    "$@"
    ;;
*)
    log "usage: $0 start | stop | run CMD [ARGS...]"
    exit 2
    ;;
esac
