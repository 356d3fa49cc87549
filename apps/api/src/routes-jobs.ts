import type { ServerResponse } from 'node:http';
import { resolveExistingInStorage } from '@polyqueue/app-runtime';
import { isJobType, type JobType, jobSchemas } from '@polyqueue/jobs';
import { Router } from 'express';
import { z } from 'zod';
import { cancelJob } from './cancel';
import { type ApiContext, attemptsOf, findJob, jobView, payloadView, sendAccepted } from './context';
import { enqueueJob, hashJson } from './enqueue';
import { flowFromBody, type RequestedFlow, takeFlowFields } from './flow-control';
import { bearerAuth, idempotencyKeyOf, isAuthorized, traceparentOf, type WithHeaders } from './http';
import { jsonBody } from './json-body';
import { fieldErrors, problems } from './problem';

const jobRequestSchema = z.object({ type: z.string().min(1), payload: z.unknown() });

/**
 * A job POST's work once the request is authorized and its JSON body parsed: validate, enqueue,
 * answer 202. Express' router (below) and the direct path (direct-routes.ts) both run these.
 */
export type JobPost = (body: unknown, req: WithHeaders, res: ServerResponse) => Promise<void>;

/** POST /v1/emails and POST /v1/jobs, by path. */
export function jobPosts(ctx: ApiContext): Record<'/v1/emails' | '/v1/jobs', JobPost> {
  return {
    '/v1/emails': async (body, req, res) => {
      // delayMs, runAt, priority and key sit beside the email's fields (no field of send_email has those names).
      const { raw, rest } = takeFlowFields(body);
      const flow = flowFromBody(raw, ctx.now());
      const payload = parse(jobSchemas.send_email, rest, []);
      await accept(ctx, res, 'send_email', payload, idempotencyKeyOf(req), traceparentOf(req), flow);
    },
    '/v1/jobs': async (body, req, res) => {
      const { raw } = takeFlowFields(body);
      const flow = flowFromBody(raw, ctx.now());
      const request = parse(jobRequestSchema, body, []);
      if (!isJobType(request.type)) {
        const valid = Object.keys(jobSchemas).join(', ');
        throw problems.validation([
          { field: 'type', pointer: '/type', message: `unknown job type "${request.type}"; valid: ${valid}` },
        ]);
      }
      const payload = parse(jobSchemas[request.type] as z.ZodType, request.payload, ['payload']);
      if (request.type === 'process_image') await assertStoredFile(ctx, (payload as { path: string }).path);
      await accept(ctx, res, request.type, payload, idempotencyKeyOf(req), traceparentOf(req), flow);
    },
  };
}

/** POST /v1/emails, POST /v1/jobs, GET /v1/jobs/:id, DELETE /v1/jobs/:id. */
export function jobRoutes(ctx: ApiContext): Router {
  const router = Router();
  const auth = bearerAuth(ctx.apiToken);
  const json = jsonBody(ctx.limits.jsonBytes);

  // Served before Express by direct-routes.ts; here for the paths Express also matches
  // (a trailing slash, another letter case).
  for (const [path, post] of Object.entries(jobPosts(ctx))) {
    router.post(path, auth, json, (req, res) => post(req.body, req, res));
  }

  router.get('/v1/jobs/:id', async (req, res) => {
    const job = await findJob(ctx, req.params.id);
    // `attempts` is the count (as ever); the history is beside it. Stacks name the workers' files
    // and lines, and payloads carry addresses: with API_TOKEN set, only its holders see them.
    const authorized = isAuthorized(req, ctx.apiToken);
    const attemptHistory = await attemptsOf(ctx, job.id, authorized);
    res
      .set('Cache-Control', 'no-store')
      .json({ ...jobView(job), ...(authorized ? payloadView(job) : {}), attemptHistory });
  });

  router.delete('/v1/jobs/:id', auth, async (req, res) => {
    const { job, wasRunning } = await cancelJob(ctx, String(req.params.id));
    // 202 for a running job: its worker aborts the handler within about a second.
    res
      .status(wasRunning ? 202 : 200)
      .set('Cache-Control', 'no-store')
      .json(jobView(job));
  });

  return router;
}

async function accept(
  ctx: ApiContext,
  res: ServerResponse,
  type: JobType,
  payload: unknown,
  idempotencyKey: string | undefined,
  traceparent: string | undefined,
  flow: RequestedFlow,
): Promise<void> {
  const { job, replayed } = await enqueueJob(ctx, {
    type,
    payloadFor: () => payload,
    // A hash of the content (sha256 of its canonical JSON) is compared only on a replay.
    requestHash: idempotencyKey === undefined ? undefined : hashJson(type, payload),
    idempotencyKey,
    traceparent,
    flow,
  });
  if (!replayed) ctx.enqueued.inc({ type });
  sendAccepted(res, job, replayed);
}

function parse<T>(schema: z.ZodType<T>, value: unknown, base: (string | number)[]): T {
  if (value === undefined) {
    throw problems.validation([
      { field: base.join('.'), pointer: `/${base.join('/')}`, message: 'a JSON object is required' },
    ]);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw problems.validation(fieldErrors(parsed.error, base));
  return parsed.data;
}

/** POST /v1/jobs with process_image names an existing file: check it now for a clear 422. */
async function assertStoredFile(ctx: ApiContext, path: string): Promise<void> {
  try {
    await resolveExistingInStorage(ctx.storageRoot, path);
  } catch (error) {
    const message =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'no such file under the storage root'
        : (error as Error).message;
    throw problems.validation([{ field: 'payload.path', pointer: '/payload/path', message }]);
  }
}
