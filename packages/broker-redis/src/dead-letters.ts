import { type DeadLetter, type DeadLetterStore, withAttempt } from '@polyqueue/core';
import type { RedisClient } from './connection';
import type { QueueKeys } from './keys';
import { runScript } from './scripts';

/**
 * Dead letters of one queue, for all three Redis drivers: a stream `{polyqueue:Q}:dead` whose
 * entries carry id, body, reason and deadAt. A stream keeps arrival order, is readable with
 * XRANGE from redis-cli, and lets redrive delete exactly the entries it queues again.
 */
export class StreamDeadLetters implements DeadLetterStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: QueueKeys,
    /** Where a redriven job goes: the main list or the stream. */
    private readonly target: 'list' | 'stream',
  ) {}

  async list(limit: number): Promise<DeadLetter[]> {
    if (limit <= 0) return [];
    const entries = await this.redis.xrange(this.keys.dead, '-', '+', 'COUNT', limit);
    return entries.map(([, fields]) => toDeadLetter(fields));
  }

  async redrive(ids: readonly string[] | 'all'): Promise<number> {
    const wanted = ids === 'all' ? undefined : new Set(ids);
    let queued = 0;
    let start = '-';
    for (;;) {
      const page = await this.redis.xrange(this.keys.dead, start, '+', 'COUNT', 200);
      if (page.length === 0) break;
      const pairs: string[] = [];
      for (const [entryId, fields] of page) {
        const dead = toDeadLetter(fields);
        if (wanted && !wanted.has(dead.id)) continue;
        // A new first attempt; a foreign {type, payload} body gains the envelope shape and keeps its id.
        pairs.push(entryId, withAttempt(dead.body, 1, dead.id));
      }
      if (pairs.length > 0) {
        queued += Number(
          await runScript(this.redis, 'redrive', [this.keys.dead, this.keys.main], [this.target, ...pairs]),
        );
      }
      if (page.length < 200) break;
      start = `(${page[page.length - 1]![0]}`;
    }
    return queued;
  }

  async purge(): Promise<number> {
    const result = await this.redis.multi().xlen(this.keys.dead).del(this.keys.dead).exec();
    const [error, length] = result?.[0] ?? [new Error('purge: MULTI aborted'), 0];
    if (error) throw error;
    return Number(length);
  }
}

function toDeadLetter(fields: string[]): DeadLetter {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  return {
    id: record.id ?? '',
    body: record.body ?? '',
    reason: record.reason ?? '',
    deadAt: record.deadAt ?? '',
  };
}
