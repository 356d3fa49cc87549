#!/usr/bin/env bash
# Start Kafka and ElasticMQ (no-op for any already running) and wait until both answer.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Both start in the background first, so their JVM start-up overlaps; then wait for each.
"$HERE/kafka/kafka.sh" start
"$HERE/elasticmq/elasticmq.sh" start
"$HERE/kafka/kafka.sh" wait
"$HERE/elasticmq/elasticmq.sh" wait
echo "services ready: KAFKA_BROKERS=127.0.0.1:9092 SQS_ENDPOINT=http://127.0.0.1:9324"
