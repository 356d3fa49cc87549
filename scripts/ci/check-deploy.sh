#!/usr/bin/env bash
# Static checks of the docker compose demo, for a machine without a Docker engine:
#   1. docker-compose.yml is valid, alone and under every profile (`docker-compose config -q`);
#   2. the Prometheus config and alert rules are valid (`promtool check config|rules`), and the
#      alert rules' unit tests pass (`promtool test rules`).
# The assertions about what the file contains (every broker has a service and a profile, every
# app service sets BROKER and has a healthcheck, every variable is one the apps parse) are the
# vitest suite of packages/deploy-checks, which `npm test` runs; it needs the tools installed here.
#
# Installs Debian's docker-compose (v1.29, compose spec with profiles) and prometheus (promtool)
# when missing, without their recommends (docker-compose recommends the docker.io engine) and
# without starting the prometheus service the package ships.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[check-deploy] %s\n' "$*"; }

install_tools() {
  local missing=()
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || { log "missing ${missing[*]}: run as root, or apt-get install ${missing[*]}"; exit 1; }
  log "installing ${missing[*]} from Debian"

  # A package's postinst starts its service through invoke-rc.d unless policy-rc.d says no (101).
  # Docker-style images ship one; otherwise put one in place for the install only.
  local own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local before
  before=$(pgrep -x prometheus || true)

  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d

  # Belt and braces: a prometheus that appeared during the install is the package's service.
  local pid
  for pid in $(pgrep -x prometheus || true); do
    grep -qx "$pid" <<<"$before" && continue
    log "stopping the prometheus service the package started (pid $pid)"
    kill "$pid" 2>/dev/null || true
  done
}

install_tools
log "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1); $(promtool --version 2>&1 | head -1)"

# Compose interpolates ${VAR:-default} from the environment and .env: check the file as a fresh
# clone sees it, not as this shell's BROKER or COMPOSE_PROFILES would bend it.
compose() { env -u BROKER -u COMPOSE_PROFILES -u COMPOSE_FILE docker-compose -f docker-compose.yml "$@"; }

log "docker-compose.yml: default (no profile)"
compose config -q
profiles=$(compose config --profiles)
for profile in $profiles; do
  log "docker-compose.yml: --profile $profile"
  compose --profile "$profile" config -q
done
[[ -n $profiles ]] || { log "docker-compose.yml defines no profiles"; exit 1; }

log "prometheus.yml and its rule files"
promtool check config ops/prometheus/prometheus.yml
promtool check rules ops/prometheus/alerts.yml
log "alert rule unit tests"
promtool test rules ops/prometheus/alerts.test.yml

log "ok"
