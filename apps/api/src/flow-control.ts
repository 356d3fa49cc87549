/**
 * Delay, priority and limit key of a job, as a request asks for them: `delayMs`, `runAt`,
 * `priority` and `key` (who the job is for: per-key concurrency limits count by it).
 * JSON routes (POST /v1/jobs, POST /v1/emails) take them as top-level body fields beside the
 * job's own; POST /v1/images, whose body is the image, takes them as the headers
 * Polyqueue-Delay-Ms, Polyqueue-Run-At, Polyqueue-Priority and Polyqueue-Key. Delay and priority
 * are checked against the broker's capabilities before anything is recorded or published
 * (docs/flow-control.md); the key needs no capability, the worker runtime enforces its limit.
 */
import type { Broker, Priority } from '@polyqueue/core';
import type { Request } from 'express';
import { type FieldError, HttpProblem } from './problem';

/** What is passed on to Broker.publish (OutgoingMessage.delayMs / priority). */
export interface FlowOptions {
  delayMs?: number;
  priority?: Priority;
}

/** The flow a request asked for: what goes to Broker.publish, and the envelope's limit key. */
export interface RequestedFlow extends FlowOptions {
  key?: string;
}

/** A runAt this far in the past is a clock skew or a retry, and runs now; further back is a 400. */
export const RUN_AT_TOLERANCE_MS = 5_000;
/** The longest delay asked for: a year and a day. */
export const MAX_DELAY_MS = 366 * 24 * 3600 * 1000;
const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];

/** The body field names, taken out of a JSON body before its payload is validated. */
export const FLOW_FIELDS = ['delayMs', 'runAt', 'priority', 'key'] as const;

export const FLOW_HEADERS = {
  delayMs: 'Polyqueue-Delay-Ms',
  runAt: 'Polyqueue-Run-At',
  priority: 'Polyqueue-Priority',
  key: 'Polyqueue-Key',
} as const;

type Raw = { delayMs?: unknown; runAt?: unknown; priority?: unknown; key?: unknown };
type Field = keyof Raw;

/** Splits a JSON body into its flow fields and the rest. */
export function takeFlowFields(body: unknown): { raw: Raw; rest: unknown } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { raw: {}, rest: body };
  const { delayMs, runAt, priority, key, ...rest } = body as Record<string, unknown>;
  return { raw: { delayMs, runAt, priority, key }, rest };
}

/** The flow fields of a JSON body, checked; `name` says where each is (a body field). */
export function flowFromBody(raw: Raw, now: Date): RequestedFlow {
  return parseFlow(raw, now, (field) => ({ field, pointer: `/${field}` }));
}

/** The flow headers of a request (POST /v1/images), checked. Numbers arrive as text here. */
export function flowFromHeaders(req: Request, now: Date): RequestedFlow {
  const header = (field: Field) => req.get(FLOW_HEADERS[field]);
  const delay = header('delayMs');
  const raw: Raw = {
    delayMs: delay === undefined ? undefined : /^\d+$/.test(delay.trim()) ? Number(delay) : delay,
    runAt: header('runAt'),
    priority: header('priority'),
    key: header('key'),
  };
  return parseFlow(raw, now, (field) => ({ field: FLOW_HEADERS[field] }));
}

function parseFlow(
  raw: Raw,
  now: Date,
  where: (field: Field) => { field: string; pointer?: string },
): RequestedFlow {
  const errors: FieldError[] = [];
  const fail = (field: Field, message: string) => errors.push({ ...where(field), message });
  const flow: RequestedFlow = {};

  if (raw.delayMs !== undefined && raw.runAt !== undefined)
    fail('runAt', `give either ${where('delayMs').field} or ${where('runAt').field}, not both`);
  if (raw.delayMs !== undefined) {
    const d = raw.delayMs;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      fail('delayMs', `must be an integer number of milliseconds, 0 or more (got ${JSON.stringify(d)})`);
    else if (d > MAX_DELAY_MS) fail('delayMs', `must be at most ${MAX_DELAY_MS} (366 days)`);
    else if (d > 0) flow.delayMs = d;
  }
  if (raw.runAt !== undefined) {
    const text = raw.runAt;
    const at = typeof text === 'string' && ISO_8601.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(at)) {
      fail(
        'runAt',
        `must be an ISO 8601 date-time with a time zone, e.g. 2030-01-31T09:00:00Z (got ${JSON.stringify(text)})`,
      );
    } else {
      const delay = at - now.getTime();
      if (delay < -RUN_AT_TOLERANCE_MS)
        fail(
          'runAt',
          `is ${Math.round(-delay / 1000)} s in the past (a runAt up to ${RUN_AT_TOLERANCE_MS / 1000} s past runs now)`,
        );
      else if (delay > MAX_DELAY_MS) fail('runAt', 'must be at most 366 days ahead');
      else if (delay > 0) flow.delayMs = delay;
    }
  }
  if (raw.priority !== undefined) {
    if (!PRIORITIES.includes(raw.priority as Priority))
      fail('priority', `must be one of ${PRIORITIES.join(', ')} (got ${JSON.stringify(raw.priority)})`);
    else flow.priority = raw.priority as Priority;
  }
  if (raw.key !== undefined) {
    // The envelope's own bounds: a worker would dead-letter a longer key as an invalid envelope.
    if (typeof raw.key !== 'string' || raw.key.length < 1 || raw.key.length > 200)
      fail('key', `must be text of 1 to 200 characters (got ${JSON.stringify(raw.key)})`);
    else flow.key = raw.key;
  }
  if (errors.length > 0) {
    const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    throw new HttpProblem(400, 'invalid-flow-control', `invalid delay, priority or key: ${detail}`, {
      errors,
    });
  }
  return flow;
}

/** Date and time with a zone (Z or ±hh:mm): Date.parse alone takes a bare date as UTC midnight and a bare time as local. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * 422 when the broker cannot do what was asked (capabilities 'none'): a delay on a broker
 * without delayed delivery (SQS FIFO), high or low priority on one without priority. Asked
 * `normal` is what every message already is, so any broker takes it.
 */
export function assertBrokerCan(broker: Pick<Broker, 'name' | 'capabilities'>, flow: FlowOptions): void {
  const missing =
    flow.delayMs !== undefined && broker.capabilities.delayedDelivery === 'none'
      ? { capability: 'delayedDelivery', what: 'deliver a job after a delay (delayMs, runAt)' }
      : flow.priority !== undefined && flow.priority !== 'normal' && broker.capabilities.priority === 'none'
        ? { capability: 'priority', what: `order jobs by priority (priority ${flow.priority})` }
        : undefined;
  if (!missing) return;
  throw new HttpProblem(
    422,
    'capability-missing',
    `the broker ${broker.name} cannot ${missing.what}: its capabilities.${missing.capability} is 'none'; nothing was queued`,
    { broker: broker.name, capability: missing.capability },
  );
}
