import {
  errorMessage,
  nextFireTime,
  type Schedule,
  ScheduleError,
  type ScheduleStore,
  validateScheduleTiming,
} from '@polyqueue/core';
import { isJobType, jobSchemas } from '@polyqueue/jobs';
import { Router } from 'express';
import { z } from 'zod';
import type { ApiContext } from './context';
import { bearerAuth } from './http';
import { jsonBody } from './json-body';
import { type FieldError, fieldErrors, HttpProblem, problems } from './problem';

const scheduleBodySchema = z.strictObject({
  name: z.string().min(1),
  cron: z.string().min(1).optional(),
  everyMs: z.number().int().optional(),
  timezone: z.string().min(1).optional(),
  job: z.object({ type: z.string().min(1), payload: z.unknown() }),
  catchUp: z.boolean().optional(),
});

/** A wrong schedule is a 400 naming the field (the contract), as problem+json. */
function invalid(errors: FieldError[]): HttpProblem {
  const problem = problems.validation(errors, 'invalid schedule');
  return new HttpProblem(400, problem.kind, problem.message, problem.extra);
}

/**
 * Checks a schedule as POST /v1/schedules and SCHEDULES_FILE take it: the fields, the timing
 * (core's validateScheduleTiming) and the job (a known type, a payload its schema accepts).
 * Throws a 400 HttpProblem naming the field.
 */
export function parseSchedule(body: unknown, minEveryMs?: number): Schedule {
  const parsed = scheduleBodySchema.safeParse(body);
  if (!parsed.success) throw invalid(fieldErrors(parsed.error));
  const { job, ...rest } = parsed.data;
  if (!isJobType(job.type)) {
    const valid = Object.keys(jobSchemas).join(', ');
    throw invalid([
      { field: 'job.type', pointer: '/job/type', message: `unknown job type "${job.type}"; valid: ${valid}` },
    ]);
  }
  const payload = (jobSchemas[job.type] as z.ZodType).safeParse(job.payload);
  if (!payload.success) throw invalid(fieldErrors(payload.error, ['job', 'payload']));
  const schedule: Schedule = { ...rest, job: { type: job.type, payload: payload.data } };
  try {
    validateScheduleTiming(schedule, minEveryMs);
  } catch (error) {
    if (!(error instanceof ScheduleError)) throw error;
    throw invalid([{ field: error.field, pointer: `/${error.field}`, message: error.message }]);
  }
  return schedule;
}

export interface ScheduleRoutesDeps {
  /** Where every replica's scheduler reads the schedules; without it no route is served. */
  schedules: ScheduleStore | undefined;
  ctx: ApiContext;
}

/**
 * POST /v1/schedules creates or replaces a schedule by name (201 or 200); GET /v1/schedules
 * lists them with each one's next fire time; DELETE /v1/schedules/:name removes one (204, or
 * 404). The scheduler (scheduling.ts) picks a change up on its next pass.
 */
export function scheduleRoutes({ schedules, ctx }: ScheduleRoutesDeps): Router {
  const router = Router();
  if (!schedules) return router;
  const auth = bearerAuth(ctx.apiToken);

  router.post('/v1/schedules', auth, jsonBody(ctx.limits.jsonBytes), async (req, res) => {
    const schedule = parseSchedule(req.body);
    const existing = (await guarded(() => schedules.list())).find((s) => s.name === schedule.name);
    // A replaced schedule keeps its creation time: catch-up is bounded by it.
    schedule.createdAt = existing?.createdAt ?? ctx.now().toISOString();
    await guarded(() => schedules.put(schedule));
    res
      .status(existing ? 200 : 201)
      .location(`/v1/schedules/${encodeURIComponent(schedule.name)}`)
      .json(view(schedule, ctx.now()));
  });

  router.get('/v1/schedules', async (_req, res) => {
    const now = ctx.now();
    const all = await guarded(() => schedules.list());
    res.set('Cache-Control', 'no-store').json({ schedules: all.map((s) => view(s, now)) });
  });

  router.delete('/v1/schedules/:name', auth, async (req, res) => {
    const name = String(req.params.name);
    if (!(await guarded(() => schedules.delete(name))))
      throw problems.notFound(`no schedule ${JSON.stringify(name)}`);
    res.status(204).end();
  });

  return router;
}

function view(schedule: Schedule, now: Date): Record<string, unknown> {
  return { ...schedule, catchUp: schedule.catchUp ?? true, nextFireAt: nextFireTime(schedule, now) };
}

async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw problems.unavailable(`the schedule store did not answer (${errorMessage(error)}); try again`);
  }
}
