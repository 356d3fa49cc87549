/**
 * `--redis-cluster`: the local Redis Cluster that scripts/services/redis-cluster/start.sh starts
 * (3 masters + 3 replicas on 127.0.0.1:7000-7005, AOF everysec), as the chaos run reads it:
 * its nodes, health, epoch, which master serves a key, and the run's keys to delete at the end.
 * The run's "broker restart" on it, a master failover, is in redis-failover.ts.
 *
 * The cluster is shared (the conformance suite fails its masters over too): nothing here stops
 * it. Each run's keys carry its own prefix and are deleted at the end, with its state-store records.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sleep } from '../processes';

const run = promisify(execFile);

/** The project's cluster script, from this checkout (the harness's, not a --rev copy's). */
export const CLUSTER_SCRIPT = fileURLToPath(
  new URL('../../../../scripts/services/redis-cluster/redis-cluster.sh', import.meta.url),
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

export async function answers(address: string): Promise<boolean> {
  try {
    return (await cli(address, 'ping')) === 'PONG';
  } catch {
    return false;
  }
}

export function field(text: string, name: string): string | undefined {
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

export const failed = (n: ClusterNode) => n.flags.includes('fail') || n.flags.includes('fail?');
export const serves = (n: ClusterNode, slot: number) =>
  n.slots.some(([from, to]) => slot >= from && slot <= to);

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
