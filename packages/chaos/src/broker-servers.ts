/**
 * The broker behind one chaos run, and how to restart it under load.
 *
 * - redis-list, redis-reliable, redis-streams: a redis-server of the run's own, on a spare port
 *   in the run's temp dir, with `--appendonly yes --appendfsync always` (the pre-started Redis
 *   on 6379 has no persistence: restarting it would lose everything, which says nothing about
 *   the drivers). Restart: SIGTERM, start again on the same AOF.
 * - kafka: a single-node Kafka of the run's own (scripts/services/kafka/kafka.sh with a private
 *   POLYQUEUE_CACHE, ports and data dir; the jars are the cached ones). Restart: stop + start.
 * - sqs: an ElasticMQ of the run's own with ELASTICMQ_PERSIST=1 (H2 file), so a restart keeps the
 *   queues and messages as SQS would. Restart: stop + start.
 * - rabbitmq: the shared local broker; restart = `rabbitmqctl stop_app && start_app` (as the
 *   conformance suite does). Queues have the run's prefix and are deleted at the end.
 * - mysql: the shared local MariaDB (database `test`); restart = `mariadb-admin shutdown`, then
 *   start-stop-daemon (as the conformance suite does). Tables are dropped at the end.
 * - sqlite: embedded, a file in the run's temp dir; there is no server to restart.
 * - redis-reliable, redis-streams with `--redis-cluster`: the shared local Redis Cluster
 *   (scripts/services/redis-cluster/, 3 masters + 3 replicas), the state store on it too; the
 *   restart is a master failover: the master serving the queue's slot is SIGKILLed, its replica
 *   takes over, the killed node rejoins as a replica (servers/redis-failover.ts).
 *
 * One module per server family under servers/. Every wait is bounded; a shared server this run stopped is always started again.
 */
import { join } from 'node:path';
import { mysql } from './servers/mysql';
import { rabbitmq } from './servers/rabbitmq';
import { redis } from './servers/redis';
import { redisCluster } from './servers/redis-cluster-server';
import { kafka, sqs } from './servers/scripted';
import type { BrokerContext, BrokerName, BrokerServer } from './servers/types';

export {
  BROKERS,
  type BrokerContext,
  type BrokerName,
  type BrokerServer,
  isRestartResult,
  type RestartResult,
  type RunTraces,
} from './servers/types';

export async function openBroker(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
  switch (name) {
    case 'sqlite':
      return sqlite(ctx);
    case 'redis-list':
    case 'redis-reliable':
    case 'redis-streams':
      if (ctx.cluster) {
        if (name === 'redis-list') throw new Error('--redis-cluster: redis-reliable or redis-streams');
        return redisCluster(name, ctx);
      }
      return redis(name, ctx);
    case 'rabbitmq':
      return rabbitmq(ctx);
    case 'kafka':
      return kafka(ctx);
    case 'sqs':
      return sqs(ctx);
    case 'mysql':
      return mysql(ctx);
  }
}

function sqlite(ctx: BrokerContext): BrokerServer {
  return {
    name: 'sqlite',
    atLeastOnce: true,
    leaseMs: ctx.leaseMs,
    leaseIs: 'SQLITE_LEASE_MS',
    env: { BROKER: 'sqlite', SQLITE_PATH: join(ctx.dir, 'queue.db'), SQLITE_LEASE_MS: String(ctx.leaseMs) },
    notes: ['embedded file: no broker restart'],
    teardown: async () => {},
    emergencyStop: () => {},
  };
}
