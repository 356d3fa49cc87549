/**
 * `--redis-cluster`: the chaos run on the local Redis Cluster that
 * scripts/services/redis-cluster/start.sh starts (3 masters + 3 replicas on 127.0.0.1:7000-7005,
 * AOF everysec), and its "broker restart" as a master failover:
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
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sleep } from './processes';

const run = promisify(execFile);

/** The project's cluster script, from this checkout (the harness's, not a --rev copy's). */
export const CLUSTER_SCRIPT = fileURLToPath(
  new URL('../../../scripts/services/redis-cluster/redis-cluster.sh', import.meta.url),
);

export const CLUSTER_HINT =
  'the local Redis Cluster (3 masters + 3 replicas on 127.0.0.1:7000-7005, started by ' +
  'scripts/services/redis-cluster/start.sh); start it with `bash scripts/services/redis-cluster/start.sh` ' +
  '(it also starts a node left down), check it with `bash scripts/services/redis-cluster/status.sh`';

export interface ClusterNode {
  id: string;
  /** host:port */
  address: string;
  port: number;
  flags: string[];
  /** A replica's master id. */
  masterId: string | undefined;
  /** Slot ranges it serves (masters), inclusive. */
  slots: [number, number][];
}

function portOf(address: string): number {
  return Number(address.split(':').at(-1));
}

/** redis-cli against one node; stdout without \r. Rejects when the node does not answer. */
export async function cli(address: string, ...args: string[]): Promise<string> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    address.slice(address.lastIndexOf(':') + 1),
  ];
  const { stdout } = await run('redis-cli', ['-h', host, '-p', port, ...args], { timeout: 5_000 });
  return stdout.replace(/\r/g, '').trim();
}

async function answers(address: string): Promise<boolean> {
  try {
    return (await cli(address, 'ping')) === 'PONG';
  } catch {
    return false;
  }
}

function field(text: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim();
}

/** One node's `cluster nodes`, parsed. */
export async function clusterView(address: string): Promise<ClusterNode[]> {
  const text = await cli(address, 'cluster', 'nodes');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.trim().split(/\s+/);
      const hostPort = addr!.split('@')[0]!;
      return {
        id: id!,
        address: hostPort,
        port: portOf(hostPort),
        flags: flags!.split(','),
        masterId: master === '-' ? undefined : master,
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to] = s.split('-');
            return [Number(from), Number(to ?? from)] as [number, number];
          }),
      };
    });
}

const failed = (n: ClusterNode) => n.flags.includes('fail') || n.flags.includes('fail?');
const serves = (n: ClusterNode, slot: number) => n.slots.some(([from, to]) => slot >= from && slot <= to);

/** The node list of the project's cluster (what REDIS_CLUSTER_NODES gets). */
export async function localClusterNodes(): Promise<string[]> {
  const { stdout } = await run('bash', [CLUSTER_SCRIPT, 'nodes'], { timeout: 10_000 });
  return stdout.trim().split(',');
}

/**
 * Throws, naming the cluster and how to start it, unless every node answers, each sees
 * cluster_state:ok with all 16384 slots served, every replica is in sync, and every master
 * has a replica to fail over to. No node answering fails at once; a node down or a cluster
 * not ok (another suite failing a master over, say) is waited for, up to `timeoutS`.
 */
export async function checkCluster(nodes: string[], timeoutS = 90): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  let down: string[] = [];
  for (;;) {
    down = [];
    for (const node of nodes) if (!(await answers(node))) down.push(node);
    if (down.length === nodes.length)
      throw new Error(
        `Redis Cluster unreachable (no answer from ${nodes.join(', ')}). Needs ${CLUSTER_HINT}`,
      );
    if (down.length === 0 || Date.now() > deadline) break;
    await sleep(500);
  }
  if (down.length > 0)
    throw new Error(
      `Redis Cluster: node(s) ${down.join(', ')} down for ${timeoutS} s. Needs ${CLUSTER_HINT}`,
    );
  const left = Math.max(5, Math.round((deadline - Date.now()) / 1000));
  try {
    await run('bash', [CLUSTER_SCRIPT, 'wait'], {
      timeout: (left + 15) * 1000,
      env: { ...process.env, REDIS_CLUSTER_WAIT_TIMEOUT: String(left) },
    });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(
      `Redis Cluster not healthy within ${timeoutS} s (${(e.stderr || e.message).trim().split('\n').at(-1)}). Needs ${CLUSTER_HINT}`,
    );
  }
  const view = await clusterView(nodes[0]!);
  for (const master of view.filter((n) => n.flags.includes('master') && n.slots.length > 0)) {
    if (!view.some((n) => n.masterId === master.id && !failed(n)))
      throw new Error(
        `Redis Cluster: master ${master.address} has no replica to fail over to. Needs ${CLUSTER_HINT}`,
      );
  }
}

/**
 * The cluster's configuration epoch (CLUSTER INFO cluster_current_epoch): every failover raises
 * it by one, so a run that saw it rise by more than its own failovers shared the cluster with
 * another one (the conformance suite's rolling failover, say).
 */
export async function clusterEpoch(nodes: string[]): Promise<number | undefined> {
  let best: number | undefined;
  for (const node of nodes) {
    try {
      const epoch = Number(field(await cli(node, 'cluster', 'info'), 'cluster_current_epoch'));
      if (Number.isInteger(epoch)) best = Math.max(best ?? 0, epoch);
    } catch {
      // down
    }
  }
  return best;
}

export interface SlotOwner {
  slot: number;
  master: ClusterNode;
  replicas: ClusterNode[];
}

/** The master serving `key`'s slot and its live replicas, as a live node sees it. */
export async function ownerOf(nodes: string[], key: string): Promise<SlotOwner> {
  let live: string | undefined;
  for (const node of nodes) {
    if (await answers(node)) {
      live = node;
      break;
    }
  }
  if (!live) throw new Error(`Redis Cluster unreachable. Needs ${CLUSTER_HINT}`);
  const slot = Number(await cli(live, 'cluster', 'keyslot', key));
  const view = await clusterView(live);
  const master = view.find((n) => n.flags.includes('master') && !failed(n) && serves(n, slot));
  if (!master) throw new Error(`no live master serves slot ${slot} (${key})`);
  return { slot, master, replicas: view.filter((n) => n.masterId === master.id && !failed(n)) };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

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

/** Deletes keys on the cluster: every key matching one of `patterns` on each master, and `keys`. */
export async function deleteKeys(nodes: string[], patterns: string[], keys: string[]): Promise<number> {
  let live: string | undefined;
  for (const node of nodes) {
    if (await answers(node)) {
      live = node;
      break;
    }
  }
  if (!live) return 0;
  const masters = (await clusterView(live)).filter((n) => n.flags.includes('master') && !failed(n));
  const found = new Set(keys);
  for (const master of masters) {
    for (const pattern of patterns) {
      const out = await cli(master.address, '--scan', '--pattern', pattern);
      for (const key of out.split('\n')) if (key.trim()) found.add(key.trim());
    }
  }
  if (found.size === 0) return 0;
  // One DEL per key through a cluster-mode redis-cli that follows the redirects.
  const [host, port] = live.split(':');
  const quote = (k: string) => `"${k.replace(/["\\]/g, '\\$&')}"`;
  await new Promise<void>((resolve, reject) => {
    const child = execFile('redis-cli', ['-c', '-h', host!, '-p', port!], { timeout: 60_000 }, (error) =>
      error ? reject(error) : resolve(),
    );
    child.stdin!.end(`${[...found].map((k) => `DEL ${quote(k)}`).join('\n')}\n`);
  });
  return found.size;
}
