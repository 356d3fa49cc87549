#!/usr/bin/env bash
# Stop Kafka, ElasticMQ and the local Redis Cluster if they were started by these scripts.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
"$HERE/kafka/kafka.sh" stop || rc=1
"$HERE/elasticmq/elasticmq.sh" stop || rc=1
"$HERE/redis-cluster/redis-cluster.sh" stop || rc=1
exit "$rc"
