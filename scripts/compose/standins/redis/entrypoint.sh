#!/bin/sh
# As the official image: a redis-server started with no config file listens on every interface
# without protected mode (Debian's binary would refuse other containers' connections otherwise).
set -e
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
