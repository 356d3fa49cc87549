#!/bin/bash
# What the official apache/kafka image does with its environment: every KAFKA_X_Y variable
# becomes the property x.y (___ -> '-', __ -> '_'), except the JVM options. CLUSTER_ID formats
# the log directory once. Then exec the broker, so SIGTERM reaches it.
set -euo pipefail
props=/opt/kafka/config/run/server.properties
: >"$props"
while IFS='=' read -r name value; do
  case $name in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_VERSION) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key=${name#KAFKA_}
  key=${key,,}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  key=${key//@/_}
  printf '%s=%s\n' "$key" "$value" >>"$props"
done < <(env)
grep -q '^log.dirs=' "$props" || echo 'log.dirs=/var/lib/kafka/data' >>"$props"
if [[ -n ${CLUSTER_ID:-} ]]; then
  /opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$CLUSTER_ID" -c "$props" >/dev/null
fi
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -Djava.awt.headless=true ${KAFKA_OPTS:-} \
  -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
  -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
