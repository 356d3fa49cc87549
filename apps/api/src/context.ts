/**
 * What the route modules share: the context createServer builds once, and the helpers more than
 * one resource answers with. Route modules import this, never server.ts or each other.
 */

import type { ServerResponse } from 'node:http';
import type { JobAttempt, JobRecord, JobStateStore } from '@polyqueue/core';
import type { Counter } from 'prom-client';
import type { EnqueueDeps } from './enqueue';
import { problems } from './problem';

/** The context the route modules share. */
export interface ApiContext extends EnqueueDeps {
  storageRoot: string;
  apiToken: string | undefined;
  limits: { jsonBytes: number; imageBytes: number };
  /** Job status records, read by GET /v1/jobs/:id and the image routes. */
  state: JobStateStore;
  enqueued: Counter<'type'>;
}

/** Job ids are UUIDs from the API, or a foreign producer's message id: printable, bounded. */
export const JOB_ID_PATTERN = /^[\w.:-]{1,200}$/;

/** 202 with the job id and where to poll it. */
export function sendAccepted(res: ServerResponse, job: JobRecord, replayed: boolean): void {
  const location = `/v1/jobs/${encodeURIComponent(job.id)}`;
  // Written directly, not through res.json: express's send would also hash the body for an ETag,
  // which no client of a 202 to a POST uses, on the API's busiest answer.
  const body = JSON.stringify({ id: job.id, type: job.type, queue: job.queue, status: job.status, location });
  res.statusCode = 202;
  res.setHeader('Location', location);
  if (replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export async function findJob(ctx: ApiContext, id: string): Promise<JobRecord> {
  if (!JOB_ID_PATTERN.test(id)) throw problems.notFound(`no job ${JSON.stringify(id)}`);
  const job = await ctx.state.getJob(id);
  if (!job) throw problems.notFound(`no job ${JSON.stringify(id)}`);
  return job;
}

/** What GET /v1/jobs/:id shows; image variants gain the URL that serves them. */
export function jobView(job: JobRecord): Record<string, unknown> {
  let result = job.result;
  if (job.type === 'process_image' && isVariantResult(result)) {
    result = {
      ...result,
      variants: result.variants.map((v) => ({
        ...v,
        url: `/v1/images/${encodeURIComponent(job.id)}/${encodeURIComponent(v.name)}`,
      })),
    };
  }
  return {
    id: job.id,
    type: job.type,
    queue: job.queue,
    status: job.status,
    attempts: job.attempts,
    ...(job.lastError ? { lastError: job.lastError } : {}),
    ...(result !== undefined && result !== null ? { result } : {}),
    // What the handler last told through context.progress; kept once the job has ended.
    ...(job.progress ? { progress: job.progress } : {}),
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
}

/** The payload fields of GET /v1/jobs/:id (for holders of API_TOKEN): the payload, or that it was too large to keep. */
export function payloadView(job: JobRecord): Pick<JobRecord, 'payload' | 'payloadTruncated'> {
  if (job.payloadTruncated) return { payloadTruncated: true };
  return job.payload === undefined ? {} : { payload: job.payload };
}

/**
 * GET /v1/jobs/:id's `attemptHistory`: the job's attempts, oldest first ([] from a store without one),
 * each attempt's stack left out unless `withStacks`.
 */
export async function attemptsOf(ctx: ApiContext, id: string, withStacks: boolean): Promise<JobAttempt[]> {
  const attempts = (await ctx.state.listAttempts?.(id)) ?? [];
  return withStacks ? attempts : attempts.map(({ stack: _stack, ...rest }) => rest);
}

export function isVariantResult(
  value: unknown,
): value is { variants: { name: string; path: string; format?: string }[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { variants?: unknown }).variants) &&
    (value as { variants: unknown[] }).variants.every(
      (v) => typeof v === 'object' && v !== null && 'name' in v && 'path' in v,
    )
  );
}
