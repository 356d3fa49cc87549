/**
 * `polyqueue migrate`: moves the rows of a legacy queue table into any broker without losing
 * one and without creating a second job for a row.
 *
 * For each chunk of rows (id order):
 *   1. look up which rows the bookkeeping table already records as moved -> "already moved";
 *   2. turn each other row into an envelope with id `legacy-<table>-<rowid>` (idempotencyKey the
 *      same) -> or report it as invalid (one its worker would dead-letter) and leave it in the
 *      legacy table;
 *   3. publish a batch and wait for the broker's durable confirm;
 *   4. record the batch's row ids in `polyqueue_migrations`, then go on.
 *
 * A row is recorded only after its publish is confirmed, so no row is ever lost. A process
 * killed between 3 and 4 publishes that one batch (at most --batch rows) again on the next run
 * with the same job ids and idempotency keys: the broker holds two copies of those messages,
 * and the workers' idempotency store runs each job's side effect once. No broker lets a
 * publisher ask "do you already hold job X?", so this is the strongest promise a migration into
 * an arbitrary broker can make; docs/brokers/mysql.md explains it.
 */
import {
  acceptedJobSchemas,
  type Broker,
  createEnvelope,
  describeIssues,
  type Envelope,
  isJobType,
  queueForJobType,
} from '@polyqueue/core';
import type { LegacyRow, LegacyTable } from './legacy-table';

export interface MigrateOptions {
  /** The target BROKER name, the key of this run in the bookkeeping table. */
  target: string;
  /** Every job goes to this queue; without it, the queue of each known job type. */
  queue?: string;
  /** Rows read per query. */
  chunkSize: number;
  /** Messages per publish (and per bookkeeping insert): the most a crash can duplicate. */
  batchSize: number;
  dryRun: boolean;
  onProgress?: (progress: MigrateProgress) => void;
}

export interface InvalidRow {
  rowId: string;
  reason: string;
}

export interface MigrateProgress {
  total: number;
  read: number;
  published: number;
  alreadyMoved: number;
  invalid: number;
}

export interface MigrateSummary extends MigrateProgress {
  source: string;
  target: string;
  dryRun: boolean;
  invalidRows: InvalidRow[];
  /** Rows of this source recorded as moved to this target, after the run. */
  recordedMoved: number;
  /** read = published + alreadyMoved + invalid. */
  reconciled: boolean;
}

/** The job id of a legacy row: stable, so every run gives a row the same id. */
export function legacyJobId(table: string, rowId: string): string {
  return `legacy-${table}-${rowId}`;
}

export type Conversion = { ok: true; queue: string; envelope: Envelope } | { ok: false; reason: string };

/** A legacy row as an envelope for its queue, or why it is not a valid job. */
export function convertRow(row: LegacyRow, table: string, queue: string | undefined): Conversion {
  const type = row.job_type ?? '';
  if (type.length === 0 || type.length > 100)
    return { ok: false, reason: 'job_type is empty or longer than 100 characters' };
  let payload: unknown = row.payload;
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
    try {
      payload = JSON.parse(String(payload));
    } catch (error) {
      return { ok: false, reason: `payload is not JSON (${(error as Error).message})` };
    }
  }
  if (payload === null || payload === undefined) return { ok: false, reason: 'payload is empty' };
  const target = queue ?? (isJobType(type) ? queueForJobType[type] : undefined);
  if (!target)
    return { ok: false, reason: `unknown job type "${type}" (pass --queue to send every row to one queue)` };
  if (isJobType(type)) {
    // What the worker accepts, not what the HTTP API demands of new producers: a legacy row as
    // the classic Q4M example writes it (no body) is a job the email worker delivers. The
    // payload is published as the row holds it; the worker reads it the same way.
    const parsed = acceptedJobSchemas[type].safeParse(payload);
    if (!parsed.success)
      return { ok: false, reason: `invalid ${type} payload: ${describeIssues(parsed.error)}` };
  }
  const id = legacyJobId(table, row.id);
  const createdMs = row.created_ms === null ? Number.NaN : Number(row.created_ms);
  const envelope = createEnvelope(type, payload, {
    id,
    idempotencyKey: id,
    ...(Number.isFinite(createdMs) ? { now: new Date(createdMs) } : {}),
  });
  return { ok: true, queue: target, envelope };
}

/**
 * Runs one migration pass over the whole legacy table. `broker` is unused in a dry run
 * (nothing is published or recorded).
 */
export async function runMigration(
  legacy: LegacyTable,
  broker: Broker | undefined,
  options: MigrateOptions,
): Promise<MigrateSummary> {
  if (!options.dryRun) {
    if (!broker) throw new Error('a target broker is required unless --dry-run');
    await legacy.ensureBookkeeping();
  }
  const progress: MigrateProgress = {
    total: await legacy.count(),
    read: 0,
    published: 0,
    alreadyMoved: 0,
    invalid: 0,
  };
  const invalidRows: InvalidRow[] = [];
  let afterId = '0';
  for (;;) {
    const rows = await legacy.readChunk(afterId, options.chunkSize);
    if (rows.length === 0) break;
    afterId = rows[rows.length - 1]!.id;
    const moved = await legacy.movedBetween(options.target, rows[0]!.id, afterId);
    const pending: { rowId: string; queue: string; envelope: Envelope }[] = [];
    for (const row of rows) {
      progress.read += 1;
      if (moved.has(String(row.id))) {
        progress.alreadyMoved += 1;
        continue;
      }
      const converted = convertRow(row, legacy.source.table, options.queue);
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
      options.onProgress?.({ ...progress });
    }
    if (pending.length === 0) options.onProgress?.({ ...progress });
  }
  const recordedMoved = await legacy.recordedCount(options.target);
  return {
    ...progress,
    source: legacy.source.key,
    target: options.target,
    dryRun: options.dryRun,
    invalidRows,
    recordedMoved,
    reconciled: progress.read === progress.published + progress.alreadyMoved + progress.invalid,
  };
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
