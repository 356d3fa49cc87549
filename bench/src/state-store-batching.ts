/**
 * State-store batching: claim + complete pairs (what the runtime does for every job) against a
 * real state store, each pair straight to the store ("direct") or through the runtime's
 * coalescing wrapper ("coalesced"), which sends the calls made while one batch is in flight
 * as the next batch. Prints jobs/s (pairs/s), the median of the runs, and the mean batch (entries per store
 * call through the wrapper, lone calls included).
 *
 *   npx tsx src/state-store-batching.ts [--pairs 20000] [--concurrency 32] [--runs 3] [--stores redis,sqlite,mysql]
 *
 * Needs Redis at REDIS_URL (redis://127.0.0.1:6379) and, for mysql, MariaDB/MySQL at MYSQL_URL
 * (mysql://root@127.0.0.1:3306/test). SQLite writes a scratch file under the OS temp directory,
 * synchronous=FULL as the store opens it (a sync per commit).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRedisStateStore } from '@polyqueue/broker-redis';
import { createSqliteStateStore } from '@polyqueue/broker-sqlite';
import {
  type BatchingIdempotencyStore,
  CoalescingIdempotencyStore,
  hasBatches,
  type IdempotencyStore,
  type StateStore,
} from '@polyqueue/core';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
    runs: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'redis,sqlite,mysql' },
  },
});
const PAIRS = Number(values.pairs);
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);

async function open(name: string, dir: string): Promise<StateStore> {
  if (name === 'redis')
    return createRedisStateStore(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { prefix: 'pqbench' });
  if (name === 'sqlite') return createSqliteStateStore(join(dir, 'state.db'));
  if (name === 'mysql') {
    const { createMysqlStateStore } = await import('@polyqueue/broker-mysql');
    const url = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
    return createMysqlStateStore(`${url}?prefix=pqbench`);
  }
  throw new Error(`unknown store ${name}`);
}

/** The store, counting its calls and the entries they carry, for the mean batch size. */
function counting(store: StateStore) {
  if (!hasBatches(store)) throw new Error('store has no batch methods');
  const counts = { calls: 0, entries: 0 };
  const one = <T>(answer: T): T => {
    counts.calls += 1;
    counts.entries += 1;
    return answer;
  };
  const counted: BatchingIdempotencyStore = {
    claim: (key, owner, leaseMs) => one(store.claim(key, owner, leaseMs)),
    complete: (key, owner, result, ttlMs) => one(store.complete(key, owner, result, ttlMs)),
    renew: (key, owner, leaseMs) => store.renew(key, owner, leaseMs),
    release: (key, owner) => store.release(key, owner),
    claimMany: (entries) => {
      counts.calls += 1;
      counts.entries += entries.length;
      return store.claimMany(entries);
    },
    completeMany: (entries) => {
      counts.calls += 1;
      counts.entries += entries.length;
      return store.completeMany(entries);
    },
  };
  return { counted, counts };
}

/** `pairs` claim + complete pairs from CONCURRENCY loops; pairs per second. */
async function run(store: IdempotencyStore, pairs = PAIRS): Promise<number> {
  const run = randomUUID();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < pairs) {
        const i = next++;
        const key = `bench-${run}-${i}`;
        const owner = `${run}:${i}`;
        const claim = await store.claim(key, owner, 30_000);
        if (claim.state !== 'claimed') throw new Error(`key ${key}: ${claim.state}`);
        if (!(await store.complete(key, owner, null, 60_000))) throw new Error(`key ${key}: not completed`);
      }
    }),
  );
  return pairs / ((performance.now() - started) / 1000);
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'pq-batching-'));
console.log(`${PAIRS} claim+complete pairs, concurrency ${CONCURRENCY}, median of ${RUNS}\n`);
console.log('| state store | direct (jobs/s) | coalesced (jobs/s) | ratio | mean batch |');
console.log('|---|---:|---:|---:|---:|');
try {
  for (const name of values.stores.split(',')) {
    const store = await open(name, dir);
    try {
      const { counted, counts } = counting(store);
      const coalesced = new CoalescingIdempotencyStore(counted);
      // Warm-up: connections, statement caches, JIT.
      await run(store, Math.ceil(PAIRS / 10));
      await run(coalesced, Math.ceil(PAIRS / 10));
      counts.calls = 0;
      counts.entries = 0;
      const direct: number[] = [];
      const batched: number[] = [];
      // Interleaved, so drift (a growing table, a busy machine) touches both alike.
      for (let r = 0; r < RUNS; r++) {
        direct.push(await run(store));
        batched.push(await run(coalesced));
      }
      const d = median(direct);
      const c = median(batched);
      const meanBatch = counts.calls ? counts.entries / counts.calls : 0;
      console.log(
        `| ${name} | ${Math.round(d)} | ${Math.round(c)} | ${(c / d).toFixed(2)}x | ${meanBatch.toFixed(1)} |`,
      );
    } finally {
      await store.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
