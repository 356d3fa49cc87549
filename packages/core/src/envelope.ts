import { z } from 'zod';
import { newJobId } from './job-id';

/**
 * The wire format every broker carries as its message body (docs/wire-format.md).
 * A producer in another language may send only `{type, payload}`; see decodeEnvelope.
 */
const createdAtSchema = z.iso.datetime();

export const envelopeSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.string().min(1).max(100),
  payload: z.unknown(),
  attempt: z.number().int().min(1).default(1),
  createdAt: createdAtSchema,
  idempotencyKey: z.string().min(1).max(200).optional(),
  traceparent: z.string().max(200).optional(),
  /** Who the job is for (a tenant, an account): per-key concurrency limits count by it. */
  key: z.string().min(1).max(200).optional(),
});

export type Envelope = z.infer<typeof envelopeSchema>;

/**
 * What a foreign producer must send: a `type`. Its `payload` is the `payload` key, or, when there
 * is none, every other key (the flat shape of `RPUSH q '{"type":"notify","to":"a@b.c"}'`).
 */
const foreignShapeSchema = z.object({ type: z.string().min(1).max(100) });

export interface NewEnvelopeOptions {
  id?: string;
  idempotencyKey?: string;
  traceparent?: string;
  key?: string;
  now?: Date;
}

export function createEnvelope(type: string, payload: unknown, options: NewEnvelopeOptions = {}): Envelope {
  const envelope: Envelope = {
    id: options.id ?? newJobId(),
    type,
    payload,
    attempt: 1,
    createdAt: (options.now ?? new Date()).toISOString(),
  };
  if (options.idempotencyKey !== undefined) envelope.idempotencyKey = options.idempotencyKey;
  if (options.traceparent !== undefined) envelope.traceparent = options.traceparent;
  if (options.key !== undefined) envelope.key = options.key;
  return envelope;
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };

/**
 * Turns a message body into an envelope. A body with neither `id` nor `createdAt` is a foreign
 * message: `{type, payload}` as the classic PHP/Python producers send it, or the flat
 * `{type, ...fields}` the article's redis-cli examples send, whose fields are the payload. Its id
 * is the broker's own message id and it is on its first attempt. Anything else yields a reason,
 * for the dead-letter record; this never throws.
 */
export function decodeEnvelope(body: string, brokerMessageId: string): DecodeResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    return { ok: false, reason: `malformed message: body is not JSON (${(error as Error).message})` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'malformed message: body is not a JSON object' };
  }
  if (!('id' in json) && !('createdAt' in json)) return foreignEnvelope(json, brokerMessageId);
  const fast = wellFormedEnvelope(json as Record<string, unknown>);
  if (fast) return { ok: true, envelope: fast };
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `malformed envelope: ${describeIssues(parsed.error)}` };
  return { ok: true, envelope: parsed.data };
}

/** A foreign body (no id, no createdAt) as an envelope; not on the fast path. */
function foreignEnvelope(json: object, brokerMessageId: string): DecodeResult {
  const foreign = foreignShapeSchema.safeParse(json);
  if (!foreign.success) return { ok: false, reason: `malformed message: ${describeIssues(foreign.error)}` };
  let payload: unknown;
  if ('payload' in json) payload = json.payload;
  else {
    const { type: _type, ...fields } = json as Record<string, unknown>;
    payload = fields;
  }
  return { ok: true, envelope: createEnvelope(foreign.data.type, payload, { id: brokerMessageId }) };
}

/** The schema's own pattern (real dates only: no February 30th, no hour 24), so both agree. */
const ISO_UTC: RegExp = createdAtSchema._zod.pattern;

const isText = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= max;

/**
 * The common case, checked by hand because it runs once per message: an envelope as
 * createEnvelope writes it. Anything unusual returns undefined and goes through the zod
 * schema, which gives the reasons; both accept and strip the same things.
 */
function wellFormedEnvelope(o: Record<string, unknown>): Envelope | undefined {
  const { id, type, payload, attempt = 1, createdAt, idempotencyKey, traceparent, key } = o;
  if (!isText(id, 200) || !isText(type, 100) || payload === undefined) return undefined;
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined;
  if (typeof createdAt !== 'string' || !ISO_UTC.test(createdAt)) return undefined;
  if (idempotencyKey !== undefined && !isText(idempotencyKey, 200)) return undefined;
  if (traceparent !== undefined && (typeof traceparent !== 'string' || traceparent.length > 200))
    return undefined;
  if (key !== undefined && !isText(key, 200)) return undefined;
  if (o.attempt !== undefined && hasOnlyEnvelopeKeys(o)) return o as Envelope; // as written: no copy
  const envelope: Envelope = { id, type, payload, attempt, createdAt };
  if (idempotencyKey !== undefined) envelope.idempotencyKey = idempotencyKey;
  if (traceparent !== undefined) envelope.traceparent = traceparent;
  if (key !== undefined) envelope.key = key;
  return envelope;
}

const ENVELOPE_KEYS = new Set([
  'id',
  'type',
  'payload',
  'attempt',
  'createdAt',
  'idempotencyKey',
  'traceparent',
  'key',
]);

function hasOnlyEnvelopeKeys(o: Record<string, unknown>): boolean {
  for (const key in o) if (!ENVELOPE_KEYS.has(key)) return false;
  return true;
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

/**
 * The attempt number a body records, as decodeEnvelope reads it: 1 when absent, unreadable or
 * the body is a foreign `{type, payload}`. Drivers that carry out retry() by publishing again
 * use it with withAttempt().
 */
export function attemptOf(body: string): number {
  try {
    const json = JSON.parse(body) as { id?: unknown; createdAt?: unknown; attempt?: unknown } | null;
    if (typeof json !== 'object' || json === null || (!('id' in json) && !('createdAt' in json))) return 1;
    const attempt = json.attempt;
    return typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
  } catch {
    return 1;
  }
}

/**
 * The body to publish again for a retry: the same envelope with `attempt` set. A foreign
 * `{type, payload}` body gains the full envelope shape, keeping the id it was first given.
 */
export function withAttempt(body: string, attempt: number, brokerMessageId: string): string {
  const decoded = decodeEnvelope(body, brokerMessageId);
  if (!decoded.ok) return body;
  return encodeEnvelope({ ...decoded.envelope, attempt });
}

/** One line naming each failing field, e.g. `payload.to: Invalid email address`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
