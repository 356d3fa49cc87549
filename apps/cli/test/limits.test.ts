import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueueLimits } from '@polyqueue/brokers';
import { jobQueues } from '@polyqueue/jobs';
import { describe, expect, it } from 'vitest';
import { limitsCommand } from '../src/queues/limits';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-limits-'));
const env = { STATE_URL: `sqlite:${join(dir, 'state.db')}` };

describe('polyqueue limits', () => {
  it('sets, changes one limit at a time, lifts and lists the limits the workers read', async () => {
    const out: string[] = [];
    const print = (line: string) => void out.push(line);
    expect(await limitsCommand(['email', '--rate', '2.5', '--concurrency', '4'], env, print)).toBe(0);
    expect(out.pop()).toMatch(
      /^email\s+rate 2\.5\/s {2}concurrency 4 {2}\(every worker obeys within a second\)$/,
    );
    const store = await createQueueLimits(env.STATE_URL, env);
    try {
      expect((await store.limits()).get('email')).toEqual({ ratePerSec: 2.5, concurrency: 4 });
      // A flag changes its own limit only; "off" lifts one.
      await limitsCommand(['email', '--per-key', '1', '--rate', 'off'], env, print);
      expect((await store.limits()).get('email')).toEqual({ concurrency: 4, perKeyConcurrency: 1 });

      await limitsCommand([], env, print);
      expect(out.slice(-jobQueues.length)).toEqual(
        jobQueues.map((q) =>
          expect.stringMatching(q === 'email' ? /^email\s+concurrency 4 {2}per key 1$/ : /no limits$/),
        ),
      );
      await limitsCommand(['email', '--json'], env, print);
      expect(JSON.parse(out.pop()!)).toEqual({
        queue: 'email',
        limits: { concurrency: 4, perKeyConcurrency: 1 },
      });

      await limitsCommand(['email', '--clear'], env, print);
      expect((await store.limits()).has('email')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('refuses a negative or non-numeric limit, naming the flag, and a queue not in the catalogue', async () => {
    await expect(limitsCommand(['email', '--rate=-1'], env)).rejects.toThrow(
      /--rate must be a number above 0/,
    );
    await expect(limitsCommand(['email', '--concurrency', 'many'], env)).rejects.toThrow(
      /--concurrency must be a whole number/,
    );
    await expect(limitsCommand(['emial', '--rate', '1'], env)).rejects.toThrow(/no queue "emial".*--force/);
    await expect(limitsCommand(['--rate', '1'], env)).rejects.toThrow(/name the queue/);
  });
});
