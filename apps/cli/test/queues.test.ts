import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { createEnvelope } from '@polyqueue/core';
import { describe, expect, it } from 'vitest';
import { deadCommand, statsCommand } from '../src/queues/commands';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-'));
const env = {
  BROKER: 'sqlite',
  SQLITE_PATH: join(dir, 'q.db'),
  STATE_URL: `sqlite:${join(dir, 'state.db')}`,
};

async function deadLetterOne(): Promise<string> {
  const broker = await createBrokerFromEnv(env);
  const envelope = createEnvelope('send_email', { to: 'a@example.com' });
  await broker.publish('email', [{ envelope }]);
  const controller = new AbortController();
  await broker.consume(
    'email',
    async (d) => {
      await d.deadLetter('550 no such user');
      controller.abort();
    },
    { concurrency: 1, signal: controller.signal },
  );
  await broker.close();
  return envelope.id;
}

describe('polyqueue stats and dead', () => {
  it('shows stats, lists, redrives and purges dead letters', async () => {
    const id = await deadLetterOne();
    const out: string[] = [];
    await statsCommand(['email', '--json'], env, (l) => out.push(l));
    expect(JSON.parse(out.pop()!)).toEqual([
      { queue: 'email', ready: 0, inFlight: 0, delayed: 0, dead: 1, paused: false },
    ]);

    await deadCommand(['list', 'email'], env, (l) => out.push(l));
    expect(out.pop()).toMatch(new RegExp(`  ${id}  550 no such user$`));

    await deadCommand(['redrive', 'email', id], env, (l) => out.push(l));
    expect(out.pop()).toBe('redrove 1 dead letter back to email');
    await statsCommand(['email', '--json'], env, (l) => out.push(l));
    expect(JSON.parse(out.pop()!)[0]).toMatchObject({ ready: 1, dead: 0 });

    await deadLetterOne();
    await expect(deadCommand(['purge', 'email'], env, () => {})).rejects.toThrow(/add --yes to confirm/);
    await deadCommand(['purge', 'email', '--yes'], env, (l) => out.push(l));
    expect(out.pop()).toBe('purged 1 dead letter from email');
  });

  it('explains a bad call', async () => {
    await expect(deadCommand(['redrive', 'email'], env)).rejects.toThrow(/name the ids to redrive, or --all/);
    await expect(deadCommand(['frobnicate'], env)).rejects.toThrow(/expected list, redrive or purge/);
  });
});
