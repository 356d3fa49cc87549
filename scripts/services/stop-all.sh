#!/usr/bin/env bash
# Stop Kafka and ElasticMQ if they were started by these scripts.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
"$HERE/kafka/kafka.sh" stop || rc=1
"$HERE/elasticmq/elasticmq.sh" stop || rc=1
exit "$rc"
