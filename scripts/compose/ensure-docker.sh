#!/usr/bin/env bash
# Makes a Docker engine and Compose usable for scripts/compose/e2e.sh on a Debian machine:
# installs Debian's docker.io, docker-compose (v1.29; Debian has no Compose v2 plugin) and
# debootstrap when missing, and starts dockerd when it is not answering. Needs root for either;
# with Docker already installed and running it only checks.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*"; }
die() { printf '[ensure-docker] ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io) # the engine; docker.io brings the client too
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: run as root, or apt-get install ${missing[*]}"
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # A package's postinst starts its service through invoke-rc.d unless policy-rc.d says no;
  # dockerd is started below, as a plain process (there may be no init system).
  own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
  [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
fi

if ! docker info >/dev/null 2>&1; then
  [[ $(id -u) == 0 ]] || die "the Docker engine is not answering, and only root can start it here"
  command -v dockerd >/dev/null 2>&1 || die "docker is installed but dockerd is not"
  log "starting dockerd (log: /var/log/polyqueue-dockerd.log)"
  nohup setsid dockerd </dev/null >>/var/log/polyqueue-dockerd.log 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 30 /var/log/polyqueue-dockerd.log >&2; die "dockerd did not come up within 60 s"; }
fi
log "engine $(docker version -f '{{.Server.Version}}'); compose $(docker compose version --short 2>/dev/null || docker-compose version --short)"
