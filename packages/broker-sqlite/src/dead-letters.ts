import type { DeadLetterStore } from '@polyqueue/core';
import type { WriteBatcher } from './database';
import type { QueueTable } from './queue-table';
import { PRIORITY_RANK } from './schema';

/**
 * The dead letters of one queue (table polyqueue_Q_dead). A redrive moves rows back in one
 * transaction as new first attempts; `redriven` then wakes this process's consumers.
 */
export function deadLetterStore(
  table: QueueTable,
  writes: WriteBatcher,
  redriven: () => void,
): DeadLetterStore {
  return {
    list: async (limit) =>
      table.deadList.all(limit).map((d) => ({ id: d.id, body: d.body, reason: d.reason, deadAt: d.dead_at })),
    redrive: async (ids) => {
      const chosen = ids === 'all' ? table.deadList.all(1_000_000).map((d) => d.id) : ids;
      const moved = await writes.write(() => {
        let n = 0;
        for (const id of new Set(chosen)) {
          for (const d of table.deadTake.all(id)) {
            table.insert.run(
              d.job_type,
              payloadOf(d.body),
              d.body,
              // A row written by plain SQL had no job id: it gets none again.
              d.id.startsWith(`${table.table}-`) ? null : d.id,
              PRIORITY_RANK.normal,
              0,
            );
            n += 1;
          }
        }
        return n;
      });
      redriven();
      return moved;
    },
    purge: async () => writes.write(() => table.deadPurge.run().changes),
  };
}

/** The payload column for a redriven body (kept for SQL readers of the table). */
function payloadOf(body: string): string {
  try {
    return JSON.stringify((JSON.parse(body) as { payload?: unknown }).payload ?? null);
  } catch {
    return 'null';
  }
}
