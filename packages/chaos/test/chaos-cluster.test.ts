/**
 * The chaos run on the local Redis Cluster (scripts/services/redis-cluster/start.sh, 3 masters +
 * 3 replicas on 127.0.0.1:7000-7005; CI's .ci/run starts it before `npm test`): redis-streams,
 * 60 jobs, both workers and the API SIGKILLed, and one master failover (the master serving the
 * queue's slot SIGKILLed, its replica promoted, the old master back as a replica), the state
 * store on the cluster too. Nothing accepted may be lost. A cluster that does not answer fails
 * the test with how to start it: it is never skipped. About a minute on a 2-CPU host.
 * `npm run chaos -- --broker redis-streams --redis-cluster` is the full run (docs/reliability.md).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChaosHandle, runChaos } from '../src/chaos-run';
import { killAllChildren } from '../src/processes';
import { summarize } from '../src/report';
import { checkCluster, cli, clusterView, localClusterNodes } from '../src/servers/redis-cluster';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

let handle: ChaosHandle | undefined;
const lines: string[] = [];

afterAll(async () => {
  await handle?.abort().catch(() => {});
  killAllChildren();
});

describe('chaos run on a Redis Cluster', () => {
  it('redis-streams: 60 jobs, worker and API kills and a master failover, 0 lost', async () => {
    const started = Date.now();
    const facts = await runChaos(
      {
        broker: 'redis-streams',
        redisCluster: true,
        n: 60,
        concurrency: 8,
        ratePerS: 10,
        smtpDelayMs: 100,
        leaseMs: 2_000,
        workerConcurrency: 2,
        settleS: 10,
        requestTimeoutMs: 5_000,
        drainTimeoutMs: 5_000,
        repoRoot,
        keep: false,
        noFaults: false,
        schedule: true,
      },
      (line) => lines.push(line),
      (h) => {
        handle = h;
      },
    );
    const summary = summarize(facts);
    const log = lines.join('\n');
    expect(
      facts.faults.map((f) => `${f.kind} ${f.target}`),
      log,
    ).toEqual([
      'kill-worker email-worker-1',
      'kill-api api',
      'restart-broker redis-streams master failover',
      'kill-worker email-worker-2',
    ]);
    expect(
      facts.faults.map((f) => f.error),
      log,
    ).toEqual([undefined, undefined, undefined, undefined]);
    const failover = facts.faults[2]!;
    expect(failover.detail, log).toMatch(
      /SIGKILLed; replica .* promoted and serving the slot after .* back as its replica, in sync/,
    );
    expect(facts.notes.join('\n')).toMatch(/STATE_URL redis:\/\/ on the cluster/);
    expect(summary, log).toMatchObject({
      accepted: 60,
      lost: 0,
      unanswered: 0,
      rejected: 0,
      wrongMessageId: 0,
      orphanEmails: 0,
      verdict: 'pass',
    });

    // The cluster is left as found: every node up, ok, replicas in sync; the run's keys gone.
    const nodes = await localClusterNodes();
    await checkCluster(nodes, 30);
    const runId = /^chaos-([0-9a-f]+)-/.exec(facts.jobs[0]!.key)![1]!;
    const masters = (await clusterView(nodes[0]!)).filter(
      (n) => n.flags.includes('master') && n.slots.length > 0,
    );
    for (const master of masters) {
      expect(await cli(master.address, '--scan', '--pattern', `*chaos_${runId}*`)).toBe('');
      expect(await cli(master.address, '--scan', '--pattern', `*chaos-${runId}-*`)).toBe('');
    }
    console.log(
      `chaos on the Redis Cluster: ${((Date.now() - started) / 1000).toFixed(1)} s; ${failover.detail}`,
    );
  }, 180_000);
});
