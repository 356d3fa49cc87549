#!/usr/bin/env bash
# Checks the servers this kind of machine starts before a session (Redis, RabbitMQ, MariaDB)
# and starts any that is down, with the same commands the machine uses. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICE=services # used by lib.sh
# shellcheck source=lib.sh
source "$HERE/lib.sh"

wait_port() { # name port seconds
  if wait_until "$3" 0.25 port_open 127.0.0.1 "$2"; then
    echo "$1 is up on 127.0.0.1:$2"
  else
    echo "$1 did not come up on 127.0.0.1:$2 within $3 s" >&2
    return 1
  fi
}

if ! port_open 127.0.0.1 6379; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_port Redis 6379 30

if ! port_open 127.0.0.1 5672; then
  if rabbitmqctl -q status >/dev/null 2>&1; then
    echo "RabbitMQ node is up with its app stopped; starting the app"
    rabbitmqctl start_app
  else
    echo "starting RabbitMQ"
    rabbitmq-server -detached
  fi
fi
wait_port RabbitMQ 5672 90
# The port opens before the app is booted; wait for the node to finish booting.
timeout 90 rabbitmqctl await_startup >/dev/null

if ! port_open 127.0.0.1 3306; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_port MariaDB 3306 60
