#!/bin/bash
# kafka-run-class.sh CLASS ARGS...: a short-lived tool on the jars (as the distribution's script).
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  -Dlog4j.configuration=file:/opt/kafka/config/tools-log4j.properties -cp '/opt/kafka/libs/*' "$@"
