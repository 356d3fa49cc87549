#!/usr/bin/env bash
# `npm run compose:e2e -- [--profile <broker>] [--keep] [--no-build]`: the docker compose demo,
# built and run end to end on this machine. (--no-build: use the app images already built.)
#
#   1. Docker (scripts/compose/ensure-docker.sh) and, where no registry answers, the stand-in
#      images (scripts/compose/build-standins.sh; E2E_STANDINS=0 skips them, E2E_STANDINS=1
#      forces them).
#   2. `docker compose build`, then `up -d` and wait until api, both workers and the mail sink
#      are healthy (`--wait` on Compose v2; polled on v1, which lacks it).
#   3. POST an email to the API on 127.0.0.1 and find it in the mail UI's API (Mailpit's
#      GET /api/v1/messages); POST an image, wait for its job to succeed, fetch every variant
#      through its URL and find its file on the data volume.
#   4. Post emails before, during and after `docker compose restart email-worker`: every one
#      reaches the mail sink (none lost; duplicates are reported).
#   5. `docker compose stop` each app service in turn: each exits 0 within the drain timeout.
#   6. `docker compose down -v`, also on failure (--keep leaves the stack up for a look).
#
# The stack runs as compose project `polyqueue-e2e`, publishing only on 127.0.0.1 (ports
# E2E_API_PORT 3000, E2E_MAILPIT_PORT 8025, E2E_PROMETHEUS_PORT 9090, E2E_RABBITMQ_UI_PORT 15673).
# The test talks to those ports and to its own containers only.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=sqlite
keep=
build=1
while (($#)); do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --no-build) build=; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

started=$SECONDS
log() { printf '[compose-e2e %s %3ss] %s\n' "$profile" "$((SECONDS - started))" "$*"; }
fail() { log "FAIL: $*" >&2; exit 1; }

bash scripts/compose/ensure-docker.sh

export BROKER=$profile
export PUBLISH_ADDRESS=127.0.0.1
export API_PORT=${E2E_API_PORT:-3000} MAILPIT_PORT=${E2E_MAILPIT_PORT:-8025}
export PROMETHEUS_PORT=${E2E_PROMETHEUS_PORT:-9090} RABBITMQ_UI_PORT=${E2E_RABBITMQ_UI_PORT:-15673}
unset COMPOSE_PROFILES COMPOSE_FILE STATE_URL API_TOKEN
API=http://127.0.0.1:$API_PORT
MAIL=http://127.0.0.1:$MAILPIT_PORT
PROJECT=polyqueue-e2e
profile_args=()
[[ $profile == sqlite ]] || profile_args=(--profile "$profile")
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
else
  compose_cmd=(docker-compose)
fi
compose() { "${compose_cmd[@]}" -p "$PROJECT" -f docker-compose.yml "${profile_args[@]}" "$@"; }

# The profile must exist (sqlite has none: no server).
known_profiles=$(compose config --profiles)
if [[ $profile != sqlite ]] && ! grep -qx -- "$profile" <<<"$known_profiles"; then
  fail "docker-compose.yml has no profile $profile (it has: $(tr '\n' ' ' <<<"$known_profiles"))"
fi

# ---------------------------------------------------------------------------------- images
standins=${E2E_STANDINS:-auto}
if [[ $standins == auto ]]; then
  # No registry: pulling the smallest image compose names fails fast.
  if timeout 30 docker pull -q "$(awk '$1 == "image:" && /redis/ { print $2; exit }' docker-compose.yml)" >/dev/null 2>&1; then
    standins=0
  else
    standins=1
  fi
fi
if [[ $standins == 1 ]]; then
  log "no image registry: building the stand-in images"
  if [[ $profile == sqlite ]]; then
    bash scripts/compose/build-standins.sh
  else
    bash scripts/compose/build-standins.sh --profile "$profile"
  fi
fi

# Leftovers of an interrupted run would skew the counts.
compose down -v --remove-orphans >/dev/null 2>&1 || true

port_busy() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }
for p in "$API_PORT" "$MAILPIT_PORT" "$PROMETHEUS_PORT"; do
  port_busy "$p" && fail "127.0.0.1:$p is in use; choose free ports with E2E_API_PORT, E2E_MAILPIT_PORT, E2E_PROMETHEUS_PORT"
done

finish() {
  local rc=$?
  if ((rc != 0)); then
    log "failed; the services' state and last log lines:"
    compose ps || true
    compose logs --no-color --tail 60 2>&1 | tail -n 400 || true
  fi
  if [[ -n $keep ]]; then
    log "--keep: the stack is still up; stop it with: ${compose_cmd[*]} -p $PROJECT ${profile_args[*]} down -v"
  else
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    log "stack removed (down -v)"
  fi
  ((rc == 0)) && log "PASS in $((SECONDS - started))s"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

t=$SECONDS
log "building the app images"
if [[ -n $build ]]; then
  compose build -q >/tmp/polyqueue-e2e-build.$$.log 2>&1 ||
    { tail -n 80 /tmp/polyqueue-e2e-build.$$.log >&2; rm -f /tmp/polyqueue-e2e-build.$$.log; fail "docker compose build failed"; }
  rm -f /tmp/polyqueue-e2e-build.$$.log
  log "images built ($((SECONDS - t))s)"
fi

# ---------------------------------------------------------------------------------- up
health() { # SERVICE: the health (or state) of its container
  local id
  id=$(compose ps -q "$1" 2>/dev/null | head -n 1)
  [[ -n $id ]] || { echo missing; return; }
  docker inspect -f '{{ if .State.Health }}{{ .State.Health.Status }}{{ else }}{{ .State.Status }}{{ end }}' "$id"
}
wait_healthy() { # TIMEOUT SERVICE...
  local deadline=$((SECONDS + $1)) svc h pending
  shift
  while :; do
    pending=
    for svc in "$@"; do
      h=$(health "$svc")
      [[ $h == healthy ]] || pending+=" $svc($h)"
    done
    [[ -z $pending ]] && return 0
    ((SECONDS < deadline)) || fail "not healthy within the time allowed:$pending"
    # broker-ready exits non-zero when the broker never answered: no point waiting longer.
    local gate
    gate=$(compose ps -q broker-ready | head -n 1)
    if [[ -n $gate ]] && [[ $(docker inspect -f '{{ .State.Status }} {{ .State.ExitCode }}' "$gate") == exited\ [1-9]* ]]; then
      fail "broker-ready failed (it could not reach the $profile broker)"
    fi
    sleep 2
  done
}

apps=(api email-worker image-worker)
t=$SECONDS
log "docker compose up -d"
if [[ ${compose_cmd[*]} == "docker compose" ]]; then
  compose up -d --wait --wait-timeout 300 >/dev/null
else
  compose up -d >/dev/null 2>&1 || compose up -d
  wait_healthy 300 mailpit "${apps[@]}"
fi
log "api, email-worker, image-worker and mailpit healthy ($((SECONDS - t))s)"

# ---------------------------------------------------------------------------------- helpers
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const v=(0,eval)(`(j)=>${process.argv[1]}`)(j);console.log(typeof v==="string"?v:JSON.stringify(v))})' "$1"; }
run=$(date +%s)-$$
post_email() { # N: posts an email with a subject unique to this run; prints the job id
  local out
  out=$(curl -sS --fail-with-body --max-time 10 -X POST "$API/v1/emails" -H 'Content-Type: application/json' \
    -d "{\"to\":\"e2e@example.com\",\"subject\":\"polyqueue e2e $run #$1\",\"body\":\"email $1 of the compose e2e run $run\"}") ||
    fail "POST /v1/emails #$1: $out"
  json j.id <<<"$out"
}
mail_subjects() { # the subjects of every mail of this run in the mail sink, one a line
  curl -sS --fail --max-time 10 "$MAIL/api/v1/messages?limit=1000" |
    json "j.messages.map(m=>m.Subject).filter(s=>s.includes('$run')).join('\n')"
}
wait_mails() { # TIMEOUT N...: until every email #N of this run is in the mail sink
  local deadline=$((SECONDS + $1)) missing n subjects
  shift
  while :; do
    subjects=$(mail_subjects || true)
    missing=
    for n in "$@"; do grep -qx "polyqueue e2e $run #$n" <<<"$subjects" || missing+=" #$n"; done
    [[ -z $missing ]] && break
    ((SECONDS < deadline)) || fail "emails never reached the mail sink:$missing"
    sleep 1
  done
  local dup
  dup=$(sort <<<"$subjects" | uniq -d | wc -l)
  ((dup == 0)) || log "note: $dup email(s) arrived more than once"
}
job_status() { curl -sS --fail --max-time 10 "$API/v1/jobs/$1"; }
wait_job() { # TIMEOUT ID: until the job succeeded; prints its view
  local deadline=$((SECONDS + $1)) view status
  while :; do
    view=$(job_status "$2") || fail "GET /v1/jobs/$2 failed"
    status=$(json j.status <<<"$view")
    [[ $status == succeeded ]] && { printf '%s\n' "$view"; return 0; }
    [[ $status == failed || $status == dead ]] && fail "job $2 ended $status: $view"
    ((SECONDS < deadline)) || fail "job $2 still $status after $1 s: $view"
    sleep 1
  done
}

# ---------------------------------------------------------------------------------- an email
t=$SECONDS
id=$(post_email 0)
wait_mails 60 0
msgid=$(curl -sS --fail "$MAIL/api/v1/messages?limit=1000" | json "j.messages.find(m=>m.Subject==='polyqueue e2e $run #0').MessageID")
[[ $msgid == *"$id"* ]] || log "note: the Message-ID ($msgid) does not carry the job id $id"
wait_job 30 "$id" >/dev/null
log "email: POST /v1/emails -> job $id succeeded, the mail is in the mail UI's API ($((SECONDS - t))s)"

# ---------------------------------------------------------------------------------- an image
t=$SECONDS
img=$(mktemp --suffix=.png)
node -e '
const zlib = require("node:zlib");
const [w, h] = [1280, 960];
const raw = Buffer.alloc((w * 3 + 1) * h);
for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
  const o = y * (w * 3 + 1) + 1 + x * 3;
  raw[o] = (x * 255) / w; raw[o + 1] = (y * 255) / h; raw[o + 2] = 160;
}
const chunk = (type, data) => {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([len, body, crc]);
};
const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
process.stdout.write(Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
  chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]));
' >"$img"
out=$(curl -sS --fail-with-body --max-time 30 -X POST "$API/v1/images" -H 'Content-Type: image/png' --data-binary "@$img") ||
  fail "POST /v1/images: $out"
rm -f "$img"
image_id=$(json j.id <<<"$out")
view=$(wait_job 90 "$image_id")
variants=$(json "j.result.variants.map(v=>[v.name,v.url,v.path].join(' ')).join('\n')" <<<"$view")
(($(wc -l <<<"$variants") >= 2)) || fail "job $image_id succeeded without the two default variants: $view"
while read -r name url path; do
  size=$(curl -sS --fail --max-time 10 -o /dev/null -w '%{size_download}' "$API$url") || fail "GET $url failed"
  ((size > 0)) || fail "GET $url answered an empty body"
  compose exec -T image-worker test -s "/data/storage/$path" </dev/null || fail "variant $name: /data/storage/$path is not on the data volume"
  log "image: variant $name, $size bytes at $url, /data/storage/$path on the volume"
done <<<"$variants"
log "image: POST /v1/images -> job $image_id succeeded ($((SECONDS - t))s)"

# ---------------------------------------------------------------------------------- restart
t=$SECONDS
for n in 1 2 3 4 5; do post_email "$n" >/dev/null; done
compose restart email-worker >/dev/null 2>&1 &
restarting=$!
for n in 6 7 8 9 10; do post_email "$n" >/dev/null; sleep 0.3; done
wait "$restarting" || fail "docker compose restart email-worker failed"
for n in 11 12 13 14 15; do post_email "$n" >/dev/null; done
wait_healthy 120 email-worker
wait_mails 120 $(seq 1 15)
log "restart: 15 emails posted before, during and after 'restart email-worker', all 15 delivered ($((SECONDS - t))s)"

# ---------------------------------------------------------------------------------- stop
for svc in email-worker image-worker api; do
  t=$SECONDS
  cid=$(compose ps -q "$svc" | head -n 1)
  compose stop "$svc" >/dev/null 2>&1
  took=$((SECONDS - t))
  code=$(docker inspect -f '{{ .State.ExitCode }}' "$cid")
  [[ $code == 0 ]] || fail "docker compose stop $svc: exit code $code after ${took}s (expected 0: a drained exit)"
  ((took <= 35)) || fail "docker compose stop $svc took ${took}s, more than the 30 s drain timeout"
  log "stop: $svc exited 0 in ${took}s after SIGTERM"
done
