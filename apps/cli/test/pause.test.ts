import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueueControls } from '@polyqueue/brokers';
import { describe, expect, it } from 'vitest';
import { statsCommand } from '../src/queues/commands';
import { pauseCommand } from '../src/queues/pause';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-pause-'));
const env = {
  BROKER: 'sqlite',
  SQLITE_PATH: join(dir, 'q.db'),
  STATE_URL: `sqlite:${join(dir, 'state.db')}`,
};

describe('polyqueue pause and resume', () => {
  it('pauses and resumes a queue in the flags the workers read, and stats shows it', async () => {
    const out: string[] = [];
    const print = (line: string) => void out.push(line);
    expect(await pauseCommand('pause', ['email'], env, print)).toBe(0);
    expect(out.pop()).toBe(
      'paused email: every worker stops fetching from it within a second; jobs in flight finish',
    );
    const controls = await createQueueControls(env.STATE_URL, env);
    try {
      expect((await controls.paused()).has('email')).toBe(true);
    } finally {
      await controls.close();
    }
    await pauseCommand('pause', ['email'], env, print);
    expect(out.pop()).toBe('email was already paused');

    await statsCommand(['email', 'image'], env, print);
    expect(out.slice(-2).map((line) => line.split(/\s+/).at(-1))).toEqual(['yes', 'no']);
    await statsCommand(['email', '--json'], env, print);
    expect(JSON.parse(out.pop()!)[0]).toMatchObject({ queue: 'email', paused: true });

    await pauseCommand('resume', ['email'], env, print);
    expect(out.pop()).toBe('resumed email: every worker fetches from it again');
    await pauseCommand('resume', ['email'], env, print);
    expect(out.pop()).toBe('email was not paused');
  });

  it('refuses a queue outside the job catalogue unless forced, and a missing name', async () => {
    await expect(pauseCommand('pause', ['emial'], env)).rejects.toThrow(
      /no queue "emial" in the job catalogue \(.*email.*\); add --force/,
    );
    await expect(pauseCommand('pause', [], env)).rejects.toThrow(/pause: name one queue/);
    const out: string[] = [];
    await pauseCommand('pause', ['legacy', '--force'], env, (l) => out.push(l));
    expect(out).toEqual([
      'paused legacy: every worker stops fetching from it within a second; jobs in flight finish',
    ]);
    await pauseCommand('resume', ['legacy'], env, () => {});
  });
});
