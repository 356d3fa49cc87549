#!/usr/bin/env bash
# Start Kafka, ElasticMQ and the local Redis Cluster (no-op for any already running) and wait
# until each answers.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Both start in the background first, so their JVM start-up overlaps; then wait for each.
"$HERE/kafka/kafka.sh" start
"$HERE/elasticmq/elasticmq.sh" start
# Redis Cluster (3 masters + 3 replicas on 7000-7005) starts and waits meanwhile.
"$HERE/redis-cluster/redis-cluster.sh" start
"$HERE/kafka/kafka.sh" wait
"$HERE/elasticmq/elasticmq.sh" wait
echo "services ready: KAFKA_BROKERS=127.0.0.1:9092 SQS_ENDPOINT=http://127.0.0.1:9324" \
  "REDIS_CLUSTER_NODES=$("$HERE/redis-cluster/redis-cluster.sh" nodes)"
