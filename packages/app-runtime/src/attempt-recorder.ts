import {
  attemptStack,
  type HookAnswer,
  type JobAttempt,
  type JobStateStore,
  type Logger,
  type OutcomeEvent,
  silentLogger,
} from '@polyqueue/core';

/** Far above any worker's concurrency: only starts whose end never came are ever dropped. */
const MAX_RUNNING = 10_000;

export interface AttemptRecorderOptions {
  /** Where histories go; a store without recordAttempt records none. */
  state: Pick<JobStateStore, 'recordAttempt'>;
  /** This process's id in GET /v1/workers (workerProcessId()), named as each attempt's worker. */
  worker?: string;
  logger?: Logger;
  now?: () => number;
}

/**
 * Wraps an onOutcome hook (createJobRecorder) so that each attempt of a job is also written to
 * its history (JobAttempt, core's job-attempts.ts): once when it starts (`processing`, written
 * beside the hook's own status write, not after it) and once when it ends (succeeded, retrying,
 * dead, cancelled), with its duration, and for a failure the error and its stack. A delivery
 * dead-lettered before it ran (not an envelope, an unknown type, an invalid payload) is an
 * attempt that started and ended at once. A redelivery found already done ran nothing: no entry.
 *
 * The starts of running attempts are kept in memory (one entry per job in flight) until their
 * end: start and end happen in this process. A history write that fails is logged and dropped:
 * it is for operators, and must not hold a job or change its outcome.
 */
export function recordAttempts(
  hook: (event: OutcomeEvent) => Promise<HookAnswer>,
  options: AttemptRecorderOptions,
): (event: OutcomeEvent) => Promise<HookAnswer> {
  const { state, worker, logger = silentLogger(), now = Date.now } = options;
  if (!state.recordAttempt) return hook;
  const record = state.recordAttempt.bind(state);
  const running = new Map<string, { startedAt: string; at: number }>();
  let warned = false;

  async function write(jobId: string, attempt: JobAttempt): Promise<void> {
    try {
      await record(jobId, attempt);
    } catch (error) {
      // Once per process: an outage of the state store shows in /readyz and the hook's own logs.
      if (!warned) logger.warn({ err: error, jobId }, 'could not record a job attempt (history)');
      warned = true;
    }
  }

  return async function recordOutcome(event) {
    if (!event.envelope || event.outcome === 'skipped_duplicate') return hook(event);
    const jobId = event.envelope.id;
    const runKey = `${jobId}#${event.attempt}`;
    const at = now();
    if (event.outcome === 'processing') {
      const startedAt = new Date(at).toISOString();
      running.set(runKey, { startedAt, at });
      // A start whose end never came (its settle failed) must not stay forever: oldest go first.
      if (running.size > MAX_RUNNING) running.delete(running.keys().next().value!);
      const [answer] = await Promise.all([
        hook(event),
        write(jobId, { attempt: event.attempt, startedAt, ...(worker ? { worker } : {}) }),
      ]);
      return answer;
    }
    const start = running.get(runKey) ?? { startedAt: new Date(at).toISOString(), at };
    running.delete(runKey);
    const attempt: JobAttempt = {
      attempt: event.attempt,
      startedAt: start.startedAt,
      endedAt: new Date(at).toISOString(),
      durationMs: Math.max(0, at - start.at),
      ...(worker ? { worker } : {}),
      outcome: event.outcome,
    };
    if (event.error !== undefined && event.outcome !== 'succeeded') attempt.error = event.error;
    const stack = attemptStack(event.failure);
    if (stack !== undefined) attempt.stack = stack;
    const [answer] = await Promise.all([hook(event), write(jobId, attempt)]);
    return answer;
  };
}
