#!/bin/sh
# Writes what the official image derives from its environment, then runs the server (Debian's
# wrapper drops to the rabbitmq user). The default user is created on the first boot only.
set -e
cat >/etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 5672
management.tcp.port = 15672
loopback_users = none
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
log.console = true
log.file = false
CONF
chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq.conf
exec "$@"
