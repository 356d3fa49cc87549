/**
 * A legacy row as a polyqueue job: `--map legacy_type=job_type` renames job types, an optional
 * transform module (`--transform ./my-transform.mjs`) reshapes payloads that differ, and the
 * result is checked with what the worker accepts, so a row is reported invalid only when its
 * worker would dead-letter it.
 *
 * A transform module exports a function, as `default` or as `transform`:
 *
 *   export default function transform({ id, legacyType, type, payload, payloadText, createdAt }) {
 *     return { type: 'process_image', payload: { path: payload.file } };
 *   }
 *
 * `type` is the row's job type after --map; `payload` is the parsed JSON payload, or undefined
 * when the column is not JSON (then `payloadText` holds it, e.g. PHP's serialize()). It returns
 * `{ type, payload }` (or a promise of it). A throw, or anything else returned, makes the row
 * invalid with that reason; the row stays in the legacy table like every invalid row.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createEnvelope, describeIssues, type Envelope } from '@polyqueue/core';
import { acceptedJobSchemas, isJobType, queueForJobType } from '@polyqueue/jobs';
import type { LegacyRow } from './legacy-table';

/** The job id of a legacy row: stable, so every run gives a row the same id. */
export function legacyJobId(table: string, rowId: string): string {
  return `legacy-${table}-${rowId}`;
}

export type Conversion = { ok: true; queue: string; envelope: Envelope } | { ok: false; reason: string };

export interface TransformInput {
  id: string;
  /** job_type as the legacy table holds it. */
  legacyType: string;
  /** The job type after --map. */
  type: string;
  /** The parsed JSON payload; undefined when the column is not JSON. */
  payload: unknown;
  payloadText: string | null;
  createdAt: Date | null;
}

export type RowTransform = (
  row: TransformInput,
) => { type: string; payload: unknown } | Promise<{ type: string; payload: unknown }>;

export interface ConvertOptions {
  /** Every job goes to this queue; without it, the queue of each known job type. */
  queue?: string;
  /** legacy job_type -> polyqueue job type (--map). */
  typeMap?: ReadonlyMap<string, string>;
  transform?: RowTransform;
}

/** `--map resize=process_image` (repeatable) -> a map; a clear error for a bad entry. */
export function parseTypeMap(entries: readonly string[], anyQueue: boolean): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(entry);
    if (!match)
      throw new Error(
        `--map: expected legacy_type=job_type, e.g. --map resize=process_image (got "${entry}")`,
      );
    const [, from, to] = match as unknown as [string, string, string];
    if (!anyQueue && !isJobType(to))
      throw new Error(
        `--map ${entry}: unknown job type "${to}"; valid: ${Object.keys(queueForJobType).join(', ')} (or pass --queue to send every row to one queue)`,
      );
    if (map.has(from) && map.get(from) !== to)
      throw new Error(`--map: "${from}" is mapped twice (to ${map.get(from)} and to ${to})`);
    map.set(from, to);
  }
  return map;
}

/** Imports a transform module (path relative to cwd); a clear error when it exports no function. */
export async function loadTransform(path: string, cwd = process.cwd()): Promise<RowTransform> {
  const url = pathToFileURL(resolve(cwd, path)).href;
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`--transform: cannot import ${path}: ${(error as Error).message}`);
  }
  const fn = typeof module.default === 'function' ? module.default : module.transform;
  if (typeof fn !== 'function')
    throw new Error(`--transform: ${path} exports no function (export default or export function transform)`);
  return fn as RowTransform;
}

/** A legacy row as an envelope for its queue, or why it is not a valid job (no map, no transform). */
export function convertRow(row: LegacyRow, table: string, queue: string | undefined): Conversion {
  const decoded = decodeRow(row, undefined);
  if (!decoded.ok) return decoded;
  if (decoded.payload === undefined) return { ok: false, reason: decoded.parseError };
  return finish(row, table, queue, decoded.type, decoded.payload);
}

/** A row converter with --map and --transform applied, in that order. */
export function createConverter(
  table: string,
  options: ConvertOptions,
): (row: LegacyRow) => Promise<Conversion> {
  return async (row) => {
    const decoded = decodeRow(row, options.typeMap);
    if (!decoded.ok) return decoded;
    let { type, payload } = decoded;
    if (options.transform) {
      const createdMs = row.created_ms === null ? Number.NaN : Number(row.created_ms);
      let result: unknown;
      try {
        result = await options.transform({
          id: String(row.id),
          legacyType: row.job_type ?? '',
          type,
          payload,
          payloadText: decoded.payloadText,
          createdAt: Number.isFinite(createdMs) ? new Date(createdMs) : null,
        });
      } catch (error) {
        return { ok: false, reason: `transform failed: ${(error as Error)?.message ?? String(error)}` };
      }
      if (
        typeof result !== 'object' ||
        result === null ||
        typeof (result as { type?: unknown }).type !== 'string'
      )
        return { ok: false, reason: 'transform returned no { type, payload } object' };
      ({ type, payload } = result as { type: string; payload: unknown });
    } else if (payload === undefined) {
      return { ok: false, reason: decoded.parseError };
    }
    return finish(row, table, options.queue, type, payload);
  };
}

type Decoded =
  | { ok: true; type: string; payload: unknown; payloadText: string | null; parseError: string }
  | { ok: false; reason: string };

function decodeRow(row: LegacyRow, typeMap: ReadonlyMap<string, string> | undefined): Decoded {
  const legacyType = row.job_type ?? '';
  if (legacyType.length === 0 || legacyType.length > 100)
    return { ok: false, reason: 'job_type is empty or longer than 100 characters' };
  const type = typeMap?.get(legacyType) ?? legacyType;
  let payload: unknown = row.payload;
  let payloadText: string | null = null;
  let parseError = 'payload is empty';
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
    payloadText = String(payload);
    try {
      payload = JSON.parse(payloadText);
    } catch (error) {
      payload = undefined;
      parseError = `payload is not JSON (${(error as Error).message})`;
    }
  }
  if (payload === null) payload = undefined;
  return { ok: true, type, payload, payloadText, parseError };
}

function finish(
  row: LegacyRow,
  table: string,
  queue: string | undefined,
  type: string,
  payload: unknown,
): Conversion {
  if (type.length === 0 || type.length > 100)
    return { ok: false, reason: `job type "${type}" is empty or longer than 100 characters` };
  if (payload === null || payload === undefined) return { ok: false, reason: 'payload is empty' };
  const target = queue ?? (isJobType(type) ? queueForJobType[type] : undefined);
  if (!target)
    return {
      ok: false,
      reason: `unknown job type "${type}" (pass --map ${type}=<job type> or --queue to send every row to one queue)`,
    };
  if (isJobType(type)) {
    // What the worker accepts, not what the HTTP API demands of new producers: a legacy row as
    // the classic Q4M example writes it (no body) is a job the email worker delivers. The
    // payload is published as the row holds it; the worker reads it the same way.
    const parsed = acceptedJobSchemas[type].safeParse(payload);
    if (!parsed.success)
      return { ok: false, reason: `invalid ${type} payload: ${describeIssues(parsed.error)}` };
  }
  const id = legacyJobId(table, String(row.id));
  const createdMs = row.created_ms === null ? Number.NaN : Number(row.created_ms);
  const envelope = createEnvelope(type, payload, {
    id,
    idempotencyKey: id,
    ...(Number.isFinite(createdMs) ? { now: new Date(createdMs) } : {}),
  });
  return { ok: true, queue: target, envelope };
}
