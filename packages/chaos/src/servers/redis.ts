/**
 * redis-list, redis-reliable, redis-streams: a redis-server of the run's own, on a spare port in
 * the run's temp dir, with `--appendonly yes --appendfsync always` (the pre-started Redis on 6379
 * has no persistence: restarting it would lose everything, which says nothing about the
 * drivers). Restart: SIGTERM, start again on the same AOF.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@polyqueue/testkit/net';
import { spawnTracked } from '../processes';
import type { BrokerContext, BrokerName, BrokerServer } from './types';
import { until } from './wait';

const run = promisify(execFile);

export async function redis(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
  const port = await freePort();
  const dataDir = join(ctx.dir, 'redis');
  mkdirSync(dataDir, { recursive: true });
  let child: ReturnType<typeof spawnTracked> | undefined;
  const start = async () => {
    child = spawnTracked(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dataDir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--logfile',
        join(dataDir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    await untilRedisAnswers(port);
  };
  const stop = async () => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGTERM');
    const timer = setTimeout(() => current.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    name,
    atLeastOnce: name !== 'redis-list',
    leaseMs: ctx.leaseMs,
    leaseIs: 'REDIS_LEASE_MS',
    env: {
      BROKER: name,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      POLYQUEUE_PREFIX: ctx.prefix,
      REDIS_LEASE_MS: String(ctx.leaseMs),
    },
    restart: async () => {
      await stop();
      await start();
    },
    notes: [
      `own redis-server :${port}, AOF appendfsync always`,
      ...(name === 'redis-list' ? ['at-most-once by design (BLPOP)'] : []),
    ],
    teardown: stop,
    emergencyStop: () => child?.kill('SIGKILL'),
  };
}

/** Resolves when the redis-server on `port` serves commands (bounded). */
function untilRedisAnswers(port: number, timeoutMs = 30_000): Promise<void> {
  return until(
    async () => {
      const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], {
        timeout: 2_000,
      });
      // LOADING while the AOF is replayed; PONG when it serves commands.
      return stdout.trim() === 'PONG';
    },
    `redis-server :${port} to answer`,
    timeoutMs,
    100,
  );
}
