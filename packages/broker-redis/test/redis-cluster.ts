import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';

const run = promisify(execFile);

/** The project's cluster script: 3 masters + 1 replica each on 127.0.0.1:7000-7005. */
const SCRIPT = fileURLToPath(
  new URL('../../../scripts/services/redis-cluster/redis-cluster.sh', import.meta.url),
);

export const CLUSTER_HINT =
  'a Redis Cluster: scripts/services/redis-cluster/start.sh (3 masters + 3 replicas on 127.0.0.1:7000-7005), ' +
  'or set REDIS_CLUSTER_NODES to one of your own';

/**
 * REDIS_CLUSTER_NODES of the cluster the tests use. Without the variable, the project's script
 * starts the local cluster (a no-op when it runs) and waits until it is ok; the failover
 * scenario needs that local cluster, whose processes it kills and starts.
 */
export async function clusterNodes(): Promise<{ nodes: string; local: boolean }> {
  const given = process.env.REDIS_CLUSTER_NODES;
  if (given) return { nodes: given, local: false };
  try {
    await run('bash', [SCRIPT, 'start'], { timeout: 90_000 });
    const { stdout } = await run('bash', [SCRIPT, 'nodes'], { timeout: 10_000 });
    return { nodes: stdout.trim(), local: true };
  } catch (error) {
    throw new Error(`cannot start ${CLUSTER_HINT}: ${(error as Error).message}`);
  }
}

export function clusterClient(nodes: string): Cluster {
  return new Cluster(
    nodes.split(',').map((node) => {
      const [host, port] = node.split(':');
      return { host: host!, port: Number(port) };
    }),
    { retryDelayOnFailover: 200, retryDelayOnClusterDown: 300, slotsRefreshInterval: 2_000 },
  );
}

interface NodeInfo {
  address: string;
  port: number;
  role: 'master' | 'slave';
  pid: number;
}

async function nodeInfo(address: string): Promise<NodeInfo | undefined> {
  const [host, port] = address.split(':');
  const redis = new Redis({
    host,
    port: Number(port),
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info();
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    return {
      address,
      port: Number(port),
      role: field('role') === 'master' ? 'master' : 'slave',
      pid: Number(field('process_id')),
    };
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function clusterOk(): Promise<boolean> {
  try {
    await run('bash', [SCRIPT, 'status'], { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A rolling master failover, for the conformance suite's restart scenario: each master in turn
 * is SIGKILLed (no shutdown, no last AOF write), the cluster promotes its replica, and the
 * killed node is started again and rejoins as the new master's replica. Every slot, so
 * whichever holds the scenario's queue, moves to another process once. Resolves when the
 * cluster is ok with every replica in sync again.
 */
export function rollingFailover(nodes: string): () => Promise<void> {
  return async () => {
    const initial = (await Promise.all(nodes.split(',').map(nodeInfo))).filter((n) => n !== undefined);
    const masters = initial.filter((n) => n.role === 'master');
    if (masters.length === 0) throw new Error('no master answered');
    for (const master of masters) {
      process.kill(master.pid, 'SIGKILL');
      await until(
        async () => (await nodeInfo(master.address)) === undefined,
        `${master.address} to die`,
        10_000,
      );
      // Its replica takes over once the others mark the master failed (cluster-node-timeout):
      // as many masters answer as before, the killed one not among them, and the cluster is ok.
      const others = initial.filter((n) => n !== master);
      await until(
        async () => {
          const alive = (await Promise.all(others.map((n) => nodeInfo(n.address)))).filter(
            (n) => n !== undefined,
          );
          if (alive.filter((n) => n.role === 'master').length !== masters.length) return false;
          const { stdout } = await run('redis-cli', ['-p', String(alive[0]!.port), 'cluster', 'info']);
          return /cluster_state:ok/.test(stdout);
        },
        `a replica of ${master.address} to take over`,
        30_000,
      );
      await run('bash', [SCRIPT, 'start'], { timeout: 90_000 });
      await until(clusterOk, 'the cluster to be ok with the old master back as a replica', 60_000);
    }
  };
}
