import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScheduleStore } from '@polyqueue/brokers';
import { afterAll, describe, expect, it } from 'vitest';
import { schedulesCommand } from '../src/jobs/schedules';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-schedules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { STATE_URL: `sqlite:${join(dir, 'state.db')}` };
const job = { type: 'send_email', payload: { to: 'ops@example.com', subject: 'r', body: 'b' } };

describe('polyqueue schedules', () => {
  it('lists the stored schedules with their next fire times', async () => {
    const out: string[] = [];
    const print = (line: string) => void out.push(line);
    const now = new Date('2026-05-01T12:00:00Z');
    expect(await schedulesCommand([], env, print, now)).toBe(0);
    expect(out.pop()).toBe('no schedules');

    const store = await createScheduleStore(env.STATE_URL);
    try {
      await store.put({ name: 'daily', cron: '0 9 * * *', timezone: 'Asia/Tokyo', job });
      await store.put({ name: 'tick', everyMs: 60_000, catchUp: false, job });
    } finally {
      await store.close?.();
    }
    await schedulesCommand([], env, print, now);
    expect(out).toEqual([
      'NAME   TIMING                     JOB         CATCH-UP  NEXT FIRE',
      'daily  cron 0 9 * * * Asia/Tokyo  send_email  yes       2026-05-02T00:00:00.000Z',
      'tick   every 60000 ms             send_email  no        2026-05-01T12:01:00.000Z',
    ]);
    out.length = 0;
    await schedulesCommand(['--json'], env, print, now);
    expect(
      JSON.parse(out[0]!).map((s: { name: string; nextFireAt: string }) => [s.name, s.nextFireAt]),
    ).toEqual([
      ['daily', '2026-05-02T00:00:00.000Z'],
      ['tick', '2026-05-01T12:01:00.000Z'],
    ]);
  });
});
