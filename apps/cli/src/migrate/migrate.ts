/**
 * `polyqueue migrate`: moves the rows of a legacy queue table into any broker without losing
 * one and without creating a second job for a row, once or while producers keep writing.
 *
 * For each chunk of rows (id order):
 *   1. look up which rows the bookkeeping table already records as moved -> "already moved";
 *   2. turn each other row into an envelope with id `legacy-<table>-<rowid>` (idempotencyKey the
 *      same), after --map and --transform -> or report it as invalid (one its worker would
 *      dead-letter) and leave it in the legacy table;
 *   3. publish a batch and wait for the broker's durable confirm;
 *   4. record the batch's row ids in `polyqueue_migrations`, then go on.
 *
 * A row is recorded only after its publish is confirmed, so no row is ever lost. A process
 * killed between 3 and 4 publishes that one batch (at most --batch rows) again on the next run
 * with the same job ids and idempotency keys: the broker holds two copies of those messages,
 * and the workers' idempotency store runs each job's side effect once. No broker lets a
 * publisher ask "do you already hold job X?", so this is the strongest promise a migration into
 * an arbitrary broker can make; docs/brokers/mysql.md explains it.
 *
 * Modes. `once` moves the rows present when it reaches them and stops at the table's end.
 * `follow` then keeps polling after the last row it read (every `pollMs`) until `signal`
 * aborts; `until-empty` stops at the first poll that finds nothing left to move (the last
 * drain, after the producers have switched). Every run starts from the table's first row, so
 * a rerun after a crash revisits what the crashed run had not recorded.
 *
 * Gaps. AUTO_INCREMENT hands out ids before commit, so a follower can read row 105 while the
 * transaction that holds 104 is still open. When following, each id skipped between two rows
 * read is re-checked at every poll until the row appears or `gapWaitMs` have passed since
 * the row after it was written (a rolled-back insert leaves a gap that never fills). A row
 * committed later than that is moved by the next run, which reads the whole table again; the
 * final `--until-empty` run and its count of unmoved rows make sure none is left.
 */
import type { Broker, Envelope } from '@polyqueue/core';
import { type ConvertOptions, createConverter } from './convert';
import type { LegacyRow, LegacyTable } from './legacy-table';

export { type Conversion, convertRow, legacyJobId } from './convert';

export type MigrateMode = 'once' | 'follow' | 'until-empty';

export interface MigrateOptions extends ConvertOptions {
  /** The target BROKER name, the key of this run in the bookkeeping table. */
  target: string;
  /** Rows read per query. */
  chunkSize: number;
  /** Messages per publish (and per bookkeeping insert): the most a crash can duplicate. */
  batchSize: number;
  dryRun: boolean;
  /** `once` when absent. */
  mode?: MigrateMode;
  /** Pause between polls once caught up (follow, until-empty). */
  pollMs?: number;
  /** How long a skipped id is waited for (follow, until-empty). */
  gapWaitMs?: number;
  /** Stops a follow (or any run) after the chunk in hand is published and recorded. */
  signal?: AbortSignal;
  onProgress?: (progress: MigrateProgress) => void;
}

export interface InvalidRow {
  rowId: string;
  reason: string;
}

export interface MigrateProgress {
  /** backlog: reading rows that were there; following: caught up, polling for new ones. */
  phase: 'backlog' | 'following';
  /** Rows in the table when the run started. */
  total: number;
  read: number;
  published: number;
  alreadyMoved: number;
  invalid: number;
  /** Rows after the last one read, at the last measurement. */
  backlog: number;
  /** Age of the oldest row not yet read (s), 0 when caught up; null when the table has no created_at. */
  lagSeconds: number | null;
  /** Skipped ids still waited for (see Gaps above). */
  pendingGaps: number;
}

export interface MigrateSummary extends MigrateProgress {
  source: string;
  target: string;
  mode: MigrateMode;
  dryRun: boolean;
  /** end: reached the table's end (once); empty: nothing left (until-empty); signal: stopped. */
  stoppedBy: 'end' | 'empty' | 'signal';
  invalidRows: InvalidRow[];
  /** Skipped ids given up on after gapWaitMs (rolled-back inserts, most often). */
  gapsExpired: number;
  /** Rows of this source recorded as moved to this target, after the run. */
  recordedMoved: number;
  /** Rows in the legacy table not recorded as moved, after the run (null in a dry run). */
  unmoved: number | null;
  /** read = published + alreadyMoved + invalid. */
  reconciled: boolean;
}

/** The most skipped ids a follower waits for at once; beyond it, the next run moves them. */
export const MAX_PENDING_GAPS = 10_000;
/** The backlog and lag are measured at most this often while rows keep coming. */
const MEASURE_EVERY_MS = 1_000;

/**
 * Runs one migration over the legacy table. `broker` is unused in a dry run (nothing is
 * published or recorded).
 */
export async function runMigration(
  legacy: LegacyTable,
  broker: Broker | undefined,
  options: MigrateOptions,
): Promise<MigrateSummary> {
  const mode = options.mode ?? 'once';
  const following = mode !== 'once';
  if (!options.dryRun) {
    if (!broker) throw new Error('a target broker is required unless --dry-run');
    await legacy.ensureBookkeeping();
  }
  const convert = createConverter(legacy.source.table, options);
  const total = await legacy.count();
  const progress: MigrateProgress = {
    phase: 'backlog',
    total,
    read: 0,
    published: 0,
    alreadyMoved: 0,
    invalid: 0,
    backlog: total,
    lagSeconds: null,
    pendingGaps: 0,
  };
  const invalidRows: InvalidRow[] = [];
  const gaps = new Map<bigint, number>(); // skipped id -> give up at (Date.now() ms)
  let gapsExpired = 0;
  let cursor = '0';
  let measuredAt = 0;
  let stoppedBy: MigrateSummary['stoppedBy'] = 'end';
  const stopped = () => options.signal?.aborted === true;

  const report = async (force: boolean) => {
    progress.pendingGaps = gaps.size;
    if (force || Date.now() - measuredAt >= MEASURE_EVERY_MS) {
      // Counting the rows after the cursor scans them: while reading the backlog, the count at
      // the start less what was read stands in for it; once following, few rows are left to count.
      progress.backlog =
        progress.phase === 'backlog'
          ? Math.max(0, progress.total - progress.read)
          : await legacy.countAfter(cursor);
      const age = await legacy.oldestAgeAfter(cursor);
      progress.lagSeconds = age === null ? null : age / 1000;
      measuredAt = Date.now();
    }
    options.onProgress?.({ ...progress });
  };

  const handle = async (rows: readonly LegacyRow[]) => {
    const moved = await legacy.movedBetween(options.target, rows[0]!.id, rows[rows.length - 1]!.id);
    const pending: { rowId: string; queue: string; envelope: Envelope }[] = [];
    for (const row of rows) {
      progress.read += 1;
      if (moved.has(String(row.id))) {
        progress.alreadyMoved += 1;
        continue;
      }
      const converted = await convert(row);
      if (!converted.ok) {
        progress.invalid += 1;
        invalidRows.push({ rowId: String(row.id), reason: converted.reason });
        continue;
      }
      pending.push({ rowId: String(row.id), queue: converted.queue, envelope: converted.envelope });
    }
    for (let i = 0; i < pending.length; i += options.batchSize) {
      const batch = pending.slice(i, i + options.batchSize);
      if (!options.dryRun) await publishAndRecord(legacy, broker!, options.target, batch);
      progress.published += batch.length;
      await report(false);
    }
    if (pending.length === 0) await report(false);
  };

  /** Ids skipped between the cursor and the rows just read, while their writers may still commit. */
  const noteGaps = (after: string, rows: readonly LegacyRow[]) => {
    const gapWaitMs = options.gapWaitMs ?? 10_000;
    // Ids before the first row of the run are not gaps: the legacy consumers deleted them.
    let expected = after === '0' ? undefined : BigInt(after) + 1n;
    for (const row of rows) {
      const id = BigInt(row.id);
      // The skipped ids were handed out before this row was written: wait from its age.
      const age = row.age_ms === null || row.age_ms === undefined ? 0 : Math.max(0, Number(row.age_ms));
      const giveUpAt = Date.now() + gapWaitMs - age;
      if (expected !== undefined && giveUpAt > Date.now()) {
        for (let gap = expected; gap < id && gaps.size < MAX_PENDING_GAPS; gap += 1n) gaps.set(gap, giveUpAt);
      }
      expected = id + 1n;
    }
  };

  const recheckGaps = async () => {
    const ids = [...gaps.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < ids.length; i += 1_000) {
      const rows = await legacy.readIds(ids.slice(i, i + 1_000).map(String));
      for (const row of rows) gaps.delete(BigInt(row.id));
      if (rows.length > 0) await handle(rows);
    }
    const now = Date.now();
    for (const [id, giveUpAt] of gaps) {
      if (giveUpAt <= now) {
        gaps.delete(id);
        gapsExpired += 1;
      }
    }
  };

  for (;;) {
    if (stopped()) {
      stoppedBy = 'signal';
      break;
    }
    const rows = await legacy.readChunk(cursor, options.chunkSize);
    if (rows.length > 0) {
      if (following) noteGaps(cursor, rows);
      cursor = String(rows[rows.length - 1]!.id);
      await handle(rows);
      continue;
    }
    // At the table's end.
    if (!following) break;
    if (gaps.size > 0) await recheckGaps();
    progress.phase = 'following';
    await report(true);
    if (mode === 'until-empty' && gaps.size === 0 && progress.backlog === 0) {
      stoppedBy = 'empty';
      break;
    }
    await pause(options.pollMs ?? 200, options.signal);
  }

  progress.pendingGaps = gaps.size;
  const recordedMoved = await legacy.recordedCount(options.target);
  const unmoved = options.dryRun ? null : await legacy.unmovedCount(options.target);
  return {
    ...progress,
    source: legacy.source.key,
    target: options.target,
    mode,
    dryRun: options.dryRun,
    stoppedBy,
    invalidRows,
    gapsExpired,
    recordedMoved,
    unmoved,
    reconciled: progress.read === progress.published + progress.alreadyMoved + progress.invalid,
  };
}

/** Waits ms, or less when the signal aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function publishAndRecord(
  legacy: LegacyTable,
  broker: Broker,
  target: string,
  batch: readonly { rowId: string; queue: string; envelope: Envelope }[],
): Promise<void> {
  const byQueue = new Map<string, Envelope[]>();
  for (const item of batch) byQueue.set(item.queue, [...(byQueue.get(item.queue) ?? []), item.envelope]);
  // publish() resolves only after the broker's durable confirm; only then is the row recorded.
  for (const [queue, envelopes] of byQueue)
    await broker.publish(
      queue,
      envelopes.map((envelope) => ({ envelope })),
    );
  await legacy.recordMoved(
    target,
    batch.map((item) => ({ rowId: item.rowId, jobId: item.envelope.id })),
  );
}
