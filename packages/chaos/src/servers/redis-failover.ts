/**
 * `--redis-cluster`: the chaos run's "broker restart" on the local Redis Cluster
 * (redis-cluster.ts) as a master failover:
 *
 *   1. find the slot of the queue's main key (`cluster keyslot <prefix>:email`; every key of the
 *      queue shares that hash tag) and the master that serves it (`cluster nodes`), and its replica;
 *   2. SIGKILL that master (its pid from INFO server): no shutdown, no last AOF write;
 *   3. wait until the replica is a master, sees cluster_state:ok, owns the slot and answers a
 *      read of the queue's key without a redirect: the slot is served again (the fault's "back");
 *   4. start the killed node again (redis-cluster.sh start, its nodes.conf and AOF kept): it
 *      rejoins as the new master's replica; wait until every replica is in sync again.
 *
 * The cluster is shared (the conformance suite fails its masters over too): nothing here stops
 * it, and a run leaves it with every node up (teardown starts any node that is down). Each run's
 * keys carry its own prefix and are deleted at the end, with its state-store records.
 */
import { execFile, execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import {
  answers,
  CLUSTER_SCRIPT,
  type ClusterNode,
  checkCluster,
  cli,
  clusterView,
  field,
  ownerOf,
  serves,
} from './redis-cluster';
import { until as untilFor } from './wait';

const run = promisify(execFile);

/** redis-cluster's polls: every 100 ms. */
const until = (check: () => Promise<boolean>, what: string, timeoutMs: number) =>
  untilFor(check, what, timeoutMs, 100);

export interface Failover {
  /** Date.now() at the SIGKILL. */
  killedAt: number;
  /** Date.now() when the promoted replica served the slot (cluster ok, no redirect). */
  servingAt: number;
  /** Date.now() when the killed node was back as a replica and every replica in sync. */
  rejoinedAt: number;
  slot: number;
  killed: string;
  promoted: string;
  /** The killed master came back (someone else started it) before a replica was promoted. */
  noFailover?: boolean;
  /** Bytes the master had written (read one round trip before the kill) that the promoted replica lacked. */
  replicationGapBytes?: number;
  detail: string;
}

/** Set while a failover has a node down: the exit hook starts it again. */
let pendingRestart: { dataDir: string } | undefined;

function startEnv(dataDir: string): NodeJS.ProcessEnv {
  return { ...process.env, REDIS_CLUSTER_DATA_DIR: dataDir };
}

/** Starts every node of the cluster that is down (the script keeps nodes.conf and the AOF). */
export async function startDownNodes(dataDir?: string): Promise<void> {
  await run('bash', [CLUSTER_SCRIPT, 'start'], {
    timeout: 150_000,
    ...(dataDir ? { env: startEnv(dataDir) } : {}),
  });
}

/** Starts the node a failover left down (an aborted run), if any. */
export async function restoreCluster(): Promise<void> {
  if (!pendingRestart) return;
  await startDownNodes(pendingRestart.dataDir);
  pendingRestart = undefined;
}

/** Synchronous last resort on exit: start the node a failover left down (no waiting for sync). */
export function emergencyRestart(): void {
  if (!pendingRestart) return;
  try {
    execFileSync('bash', [CLUSTER_SCRIPT, 'start'], {
      env: { ...startEnv(pendingRestart.dataDir), REDIS_CLUSTER_WAIT_TIMEOUT: '20' },
      timeout: 40_000,
      stdio: 'ignore',
    });
  } catch {
    // `start.sh` by hand brings it back
  }
}

/** SIGKILL the master serving `key`, wait for its replica to serve the slot, start it again as a replica. */
export async function failoverMasterOf(nodes: string[], key: string): Promise<Failover> {
  // A shared cluster may be mid-failover (another suite's): wait until every node is up, the
  // cluster ok and every replica in sync, so the slot's master has a replica to hand over to.
  await checkCluster(nodes, 60);
  const { slot, master, replicas } = await ownerOf(nodes, key);
  if (replicas.length === 0) throw new Error(`master ${master.address} (slot ${slot}) has no replica`);
  const info = await cli(master.address, 'info', 'server');
  const pid = Number(field(info, 'process_id'));
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process_id from ${master.address}`);
  // Its data dir ($DATA/<port>): the script starts it again from there, whatever POLYQUEUE_CACHE says here.
  const dir = (await cli(master.address, 'config', 'get', 'dir')).split('\n')[1]?.trim();
  if (!dir) throw new Error(`no data dir from ${master.address}`);
  const dataDir = dirname(dir);

  pendingRestart = { dataDir };
  // Replication is asynchronous (and the drivers issue no WAIT): what the master had written
  // just before the SIGKILL, against what its replicas had received once it was dead, says
  // whether acknowledged writes died with it. Writes between this read and the kill (one
  // round trip) are not counted.
  const masterOffset = Number(field(await cli(master.address, 'info', 'replication'), 'master_repl_offset'));
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await until(async () => !(await answers(master.address)), `${master.address} to die`, 10_000);
  const replicaOffsets = new Map<string, number>();
  for (const replica of replicas) {
    try {
      const replication = await cli(replica.address, 'info', 'replication');
      // Still a replica (not promoted yet): what it received from the dead master.
      if (field(replication, 'role') === 'slave')
        replicaOffsets.set(replica.address, Number(field(replication, 'slave_repl_offset')));
    } catch {
      // unknown
    }
  }

  // Promoted: one of its replicas is a master that owns the slot, sees the cluster ok, and
  // answers a read of the queue's key itself (a MOVED or CLUSTERDOWN would mean not yet).
  let promoted: ClusterNode | undefined;
  // The cluster is shared: anyone's `redis-cluster.sh start` (another suite's set-up) starts a
  // node that is down. If the killed master is back and serving the slot before a replica was
  // promoted, there was no failover, only a restart from its AOF: say so.
  let restartedElsewhere = false;
  await until(
    async () => {
      if (await answers(master.address)) {
        const me = (await clusterView(master.address)).find((n) => n.flags.includes('myself'));
        if (me?.flags.includes('master') && serves(me, slot)) {
          restartedElsewhere = true;
          return true;
        }
      }
      for (const replica of replicas) {
        if (field(await cli(replica.address, 'info', 'replication'), 'role') !== 'master') continue;
        if (field(await cli(replica.address, 'cluster', 'info'), 'cluster_state') !== 'ok') continue;
        const me = (await clusterView(replica.address)).find((n) => n.flags.includes('myself'));
        if (!me || !serves(me, slot)) continue;
        if (!/^\d+$/.test(await cli(replica.address, 'exists', key))) continue;
        promoted = replica;
        return true;
      }
      return false;
    },
    `a replica of ${master.address} to serve slot ${slot}`,
    60_000,
  );
  const servingAt = Date.now();
  const s = (ms: number) => (ms / 1000).toFixed(1);
  if (restartedElsewhere) {
    pendingRestart = undefined;
    return {
      killedAt,
      servingAt,
      rejoinedAt: servingAt,
      slot,
      killed: master.address,
      promoted: master.address,
      noFailover: true,
      detail:
        `master ${master.address} (slot ${slot}) SIGKILLed, but started again by another process (a redis-cluster.sh start) ` +
        `and serving the slot after ${s(servingAt - killedAt)} s, before any replica was promoted: NO failover, a restart ` +
        `from its AOF (appendfsync everysec) and a full resync of its replica`,
    };
  }

  // The killed node comes back from its nodes.conf and AOF and becomes the new master's replica.
  await startDownNodes(dataDir);
  await until(
    async () => {
      const replication = await cli(master.address, 'info', 'replication');
      return field(replication, 'role') === 'slave' && field(replication, 'master_link_status') === 'up';
    },
    `${master.address} to rejoin as a replica in sync`,
    60_000,
  );
  pendingRestart = undefined;
  const rejoinedAt = Date.now();
  const promotedOffset = replicaOffsets.get(promoted!.address);
  const gap =
    promotedOffset === undefined || !Number.isFinite(masterOffset)
      ? 'replication offsets not read'
      : promotedOffset >= masterOffset
        ? `the promoted replica had received every byte the master had written up to one round trip before the kill (offset ${promotedOffset} >= ${masterOffset})`
        : `the promoted replica was ${masterOffset - promotedOffset} bytes behind the master's last read offset (${promotedOffset} < ${masterOffset}): writes the master had acknowledged died with it`;
  return {
    killedAt,
    servingAt,
    rejoinedAt,
    slot,
    killed: master.address,
    promoted: promoted!.address,
    ...(promotedOffset !== undefined && Number.isFinite(masterOffset)
      ? { replicationGapBytes: Math.max(0, masterOffset - promotedOffset) }
      : {}),
    detail:
      `master ${master.address} (slot ${slot}) SIGKILLed; replica ${promoted!.address} promoted and serving the slot ` +
      `after ${s(servingAt - killedAt)} s; ${master.address} back as its replica, in sync, after ${s(rejoinedAt - killedAt)} s; ${gap}`,
  };
}
