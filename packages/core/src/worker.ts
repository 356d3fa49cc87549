import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff';
import type { Broker, ConsumeOptions, Delivery } from './broker';
import { DEFAULT_CANCEL_CHECK_MS, isCancelled, type RunningJob, watchCancels } from './cancellation';
import { coalesceIdempotency } from './coalescing-idempotency';
import { decodeEnvelope, describeIssues, type Envelope } from './envelope';
import { errorMessage, NonRetryableError, RetryableError } from './errors';
import type { IdempotencyStore } from './idempotency';
import { type JobContextShared, RuntimeJobContext } from './job-context';
import type { JobHandler } from './job-handler';
import { silentLogger } from './logger';
import type { RuntimeMetrics } from './metrics';
import type { Outcome, OutcomeEvent } from './outcome';
import type { JobStateStore } from './state';

export type { Outcome, OutcomeEvent } from './outcome';

/**
 * The lease of a running job's idempotency claim on a broker that has no lease of its own
 * (RabbitMQ, Kafka): how long a dead worker's job waits before another worker may run it.
 */
export const DEFAULT_LEASE_MS = 10_000;

export interface WorkerOptions {
  broker: Broker;
  queue: string;
  // biome-ignore lint/suspicious/noExplicitAny: handlers are typed per job type by their schema
  handlers: Record<string, JobHandler<any, unknown>>;
  idempotency: IdempotencyStore;
  concurrency?: number;
  /** A job failing on this attempt is dead-lettered instead of retried. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /**
   * How long a running job's idempotency claim (and, where the broker has leases, its delivery)
   * stays held without a heartbeat: a dead worker's job can run elsewhere this long after its
   * last heartbeat. Defaults to the broker's own lease (`broker.leaseMs`), else DEFAULT_LEASE_MS.
   */
  leaseMs?: number;
  /** How often the heartbeat renews every running job's claim and delivery; leaseMs / 3 by default. */
  heartbeatMs?: number;
  /** How long shutdown waits for in-flight jobs before aborting their signal. */
  drainTimeoutMs?: number;
  logger?: Logger;
  metrics?: RuntimeMetrics;
  /** Passed to the broker's consume(): told when the consumer loses or regains its connection. */
  onConnectionChange?: ConsumeOptions['onConnectionChange'];
  /**
   * Told of each state change, for job status records and lifecycle events. Errors are logged,
   * never thrown. For `processing`, told before the handler runs, it may answer 'cancelled'
   * (the job's record says so): the job is then acked without running.
   */
  onOutcome?: (event: OutcomeEvent) => Promise<HookAnswer> | HookAnswer;
  /**
   * Job records: with them, a running job whose record turns `cancelled` has its signal aborted
   * (read every cancelCheckMs) and ends cancelled, and a failed job's record is read before a
   * retry, so a cancel that raced the failure is not undone by it. With updateJob, handlers'
   * context.progress is written to them (else only logged at debug).
   */
  jobs?: Pick<JobStateStore, 'getJob'> & Partial<Pick<JobStateStore, 'updateJob'>>;
  /** How often running jobs' records are read for a cancel; DEFAULT_CANCEL_CHECK_MS (1 s). */
  cancelCheckMs?: number;
  random?: () => number;
}

// biome-ignore lint/suspicious/noConfusingVoidType: a hook that answers nothing returns void
export type HookAnswer = void | 'cancelled';

export interface Worker {
  /** Consumes until signal aborts, then drains (bounded by drainTimeoutMs) and resolves. */
  run(signal: AbortSignal, onReady?: () => void): Promise<void>;
  /** How many jobs its handlers run now (the heartbeat of GET /v1/workers reports it). */
  inFlight(): number;
}

/** Whether a port answered later; awaiting a value it gave at once would still cost a promise. */
function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** The delivery's attempt, off the decoded envelope where the driver keeps it there. */
function attemptFor(delivery: Delivery, envelope: Envelope | undefined): number {
  return envelope && delivery.attemptInEnvelope ? envelope.attempt : delivery.attempt;
}

/**
 * The worker runtime: validate -> claim the idempotency key -> handler -> ack | retry(backoff)
 * | deadLetter. Every retry, backoff and dead-letter decision in polyqueue is made here.
 */
export function createWorker(options: WorkerOptions): Worker {
  const {
    broker,
    queue,
    handlers,
    idempotency: store,
    concurrency = 4,
    maxAttempts = 5,
    backoff = DEFAULT_BACKOFF,
    leaseMs = broker.leaseMs ?? DEFAULT_LEASE_MS,
    drainTimeoutMs = 30_000,
    logger = silentLogger(),
    metrics,
    random = Math.random,
  } = options;
  // Claims and done marks of concurrent jobs share round trips when the store can batch them.
  const idempotency = coalesceIdempotency(store);
  const hardStop = new AbortController();
  const heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3));
  const extendsDelivery = broker.capabilities.leaseExtension;
  // Claim owners: one token per delivery, so a stale holder cannot touch its successor's claim.
  const workerId = randomUUID();
  let deliveries = 0;
  const running = new Set<RunningJob>();
  const contextShared: JobContextShared = {
    hardStop: hardStop.signal,
    logger,
    records: options.jobs?.updateJob ? (options.jobs as Pick<JobStateStore, 'updateJob'>) : undefined,
  };

  /**
   * Renews the delivery lease and the claim of every running job not renewed in the last half
   * heartbeat: one timer per worker, not one per job. A job is so renewed at most 1.5 heartbeats
   * apart, which keeps both leases (3 heartbeats long) alive with room for a slow round trip.
   */
  function heartbeat(): void {
    const now = Date.now();
    for (const job of running) {
      if (now - job.renewedAt < heartbeatMs / 2) continue;
      job.renewedAt = now;
      if (extendsDelivery)
        job.delivery
          .extend(leaseMs)
          .catch((error) =>
            logger.warn({ err: error, messageId: job.delivery.messageId }, 'lease extension failed'),
          );
      Promise.resolve(idempotency.renew(job.key, job.owner, leaseMs)).then(
        (held) => {
          if (!held)
            logger.warn({ key: job.key }, 'idempotency claim lost while the job ran (its lease ran out)');
        },
        (error) => logger.warn({ err: error, key: job.key }, 'idempotency claim renewal failed'),
      );
    }
  }

  /** Tells the hook; a synchronous hook costs no promise. Errors are logged, never thrown. */
  function notify(event: OutcomeEvent): HookAnswer | Promise<HookAnswer> {
    if (!options.onOutcome) return;
    try {
      const pending = options.onOutcome(event);
      // No closure unless the hook is asynchronous: this runs for every job.
      if (isPromise(pending)) return pending.catch((error) => hookFailed(event, error));
      return pending;
    } catch (error) {
      hookFailed(event, error);
    }
  }

  function hookFailed(event: OutcomeEvent, error: unknown): void {
    logger.warn({ err: error, jobId: event.envelope?.id }, 'outcome hook failed');
  }

  function count(type: string, outcome: Outcome): void {
    metrics?.processed.inc({ queue, type, outcome });
  }

  async function deadLetter(
    delivery: Delivery,
    envelope: Envelope | undefined,
    reason: string,
    failure?: unknown,
  ): Promise<void> {
    await delivery.deadLetter(reason);
    count(envelope?.type ?? 'unknown', 'dead');
    logger.warn({ jobId: envelope?.id ?? delivery.messageId, reason }, 'job dead-lettered');
    await notify({
      envelope,
      messageId: delivery.messageId,
      queue,
      outcome: 'dead',
      attempt: attemptFor(delivery, envelope),
      error: reason,
      failure,
    });
  }

  async function handleDelivery(delivery: Delivery): Promise<void> {
    const decoded = decodeEnvelope(delivery.body, delivery.messageId);
    if (!decoded.ok) return deadLetter(delivery, undefined, decoded.reason);
    const envelope = decoded.envelope;
    const handler = handlers[envelope.type];
    if (!handler) {
      const known = Object.keys(handlers).join(', ');
      return deadLetter(
        delivery,
        envelope,
        `unknown job type "${envelope.type}" on queue ${queue} (handled here: ${known})`,
      );
    }
    let payload = envelope.payload;
    if (handler.schema) {
      const parsed = handler.schema.safeParse(envelope.payload);
      if (!parsed.success)
        return deadLetter(delivery, envelope, `invalid payload: ${describeIssues(parsed.error)}`);
      payload = parsed.data;
    }

    const key = envelope.idempotencyKey ?? envelope.id;
    const attempt = attemptFor(delivery, envelope);
    deliveries += 1;
    const owner = `${workerId}:${deliveries}`;
    const claiming = idempotency.claim(key, owner, leaseMs);
    const claim = isPromise(claiming) ? await claiming : claiming;
    if (claim.state === 'done') {
      await delivery.ack();
      count(envelope.type, 'skipped_duplicate');
      logger.info({ jobId: envelope.id }, 'already done; acked without running again');
      // The record may still say processing: the earlier run's ack (or its record) was lost.
      await notify({
        envelope,
        messageId: delivery.messageId,
        queue,
        outcome: 'skipped_duplicate',
        attempt,
        result: claim.result,
      });
      return;
    }
    if (claim.state === 'busy') {
      // Another worker runs this key now: look again once its lease could have ended.
      await delivery.retry(claim.retryInMs);
      count(envelope.type, 'retrying');
      return;
    }

    if (options.onOutcome) {
      const notified = notify({
        envelope,
        messageId: delivery.messageId,
        queue,
        outcome: 'processing',
        attempt,
      });
      const answer = isPromise(notified) ? await notified : notified;
      if (answer === 'cancelled') return settleCancelled(delivery, envelope, key, owner, attempt);
    }
    const started = metrics ? performance.now() : 0;
    metrics?.inFlight.inc({ queue });
    const runningJob: RunningJob = { delivery, jobId: envelope.id, key, owner, renewedAt: Date.now() };
    running.add(runningJob);
    let result: unknown;
    let failure: unknown;
    let failed = false;
    const context = new RuntimeJobContext(envelope, attempt, delivery, runningJob, contextShared);
    try {
      result = await handler.handle(payload, context);
    } catch (error) {
      failed = true;
      failure = error;
    } finally {
      // The last progress lands before the outcome, so a late write cannot follow `succeeded`.
      if (context.progressWriter) await context.progressWriter.end();
      running.delete(runningJob);
      metrics?.inFlight.dec({ queue });
      metrics?.duration.observe({ queue, type: envelope.type }, (performance.now() - started) / 1000);
    }

    // Cancelled while it ran (noticed by the watch, or read now for a failure that may be the
    // abort's): ends cancelled whatever the handler did, and is never retried.
    if (runningJob.cancelled || (failed && (await isCancelled(options.jobs, envelope.id, logger))))
      return settleCancelled(delivery, envelope, key, owner, attempt);

    if (!failed) {
      // Mark done before the ack: a crash between them redelivers a job that is then skipped.
      const completing = idempotency.complete(key, owner, result ?? null);
      // The hook is told in the same turn as the done mark, not after the ack: a store that
      // commits a turn's writes together (SQLite) then makes the done mark and the `succeeded`
      // record durable in one commit. A crash before the ack reruns nothing either way (the
      // done mark skips the redelivery), and the lifecycle event carries a deterministic id.
      const notified = options.onOutcome
        ? notify({ envelope, messageId: delivery.messageId, queue, outcome: 'succeeded', attempt, result })
        : undefined;
      const completed = isPromise(completing) ? await completing : completing;
      if (!completed)
        logger.warn(
          { jobId: envelope.id, key },
          'claim taken over by another worker while this one ran; it records the job',
        );
      await delivery.ack();
      count(envelope.type, 'succeeded');
      if (notified) await notified;
      return;
    }

    await idempotency.release(key, owner);
    const reason = errorMessage(failure);
    if (failure instanceof NonRetryableError) return deadLetter(delivery, envelope, reason, failure);
    if (attempt >= maxAttempts) {
      return deadLetter(delivery, envelope, `failed after ${attempt} attempts: ${reason}`, failure);
    }
    const jittered = backoffDelay(attempt, backoff, random);
    const retryInMs =
      failure instanceof RetryableError && failure.retryAfterMs !== undefined
        ? Math.max(failure.retryAfterMs, jittered)
        : jittered;
    await delivery.retry(retryInMs);
    count(envelope.type, 'retrying');
    logger.info({ jobId: envelope.id, attempt: attempt, retryInMs, reason }, 'job failed; retrying');
    await notify({
      envelope,
      messageId: delivery.messageId,
      queue,
      outcome: 'retrying',
      attempt: attempt,
      error: reason,
      failure,
      retryInMs,
    });
  }

  /**
   * A cancelled job: its claim is released, not completed (a redelivery must find the record's
   * `cancelled`, not a done mark that would read as succeeded), and the delivery is acked.
   */
  async function settleCancelled(
    delivery: Delivery,
    envelope: Envelope,
    key: string,
    owner: string,
    attempt: number,
  ): Promise<void> {
    await idempotency.release(key, owner);
    await delivery.ack();
    count(envelope.type, 'cancelled');
    logger.info({ jobId: envelope.id }, 'job cancelled; acked without running it further');
    await notify({ envelope, messageId: delivery.messageId, queue, outcome: 'cancelled', attempt });
  }

  /** The DeliveryHandler given to the broker: never rejects. Not async: that would cost an await per job. */
  function safeHandle(delivery: Delivery): Promise<void> {
    return handleDelivery(delivery).catch((error) => {
      // The broker or a store failed while settling: leave the delivery unsettled so its lease
      // (or the connection's loss) brings it back, and keep consuming.
      logger.error({ err: error, messageId: delivery.messageId }, 'could not settle delivery');
    });
  }

  return {
    inFlight: () => running.size,
    async run(signal, onReady) {
      metrics?.consumers.inc({ queue });
      const beating = setInterval(heartbeat, heartbeatMs);
      beating.unref();
      const stopWatch = options.jobs
        ? watchCancels(running, options.jobs, options.cancelCheckMs ?? DEFAULT_CANCEL_CHECK_MS, logger)
        : undefined;
      const consuming = broker.consume(queue, safeHandle, {
        concurrency,
        signal,
        ...(onReady ? { onReady } : {}),
        ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
      });
      const onAbort = () => {
        const timer = setTimeout(() => {
          logger.warn({ queue, drainTimeoutMs }, 'drain timeout: aborting in-flight jobs');
          hardStop.abort(new Error('drain timeout'));
          // Jobs whose handler has read its signal hold a controller of their own (jobSignal).
          for (const job of running) job.abort?.abort(hardStop.signal.reason);
        }, drainTimeoutMs);
        timer.unref();
        consuming.finally(() => clearTimeout(timer)).catch(() => {});
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        await consuming;
      } finally {
        clearInterval(beating);
        stopWatch?.();
        metrics?.consumers.dec({ queue });
      }
    },
  };
}

// Kept importable from here, where it has always been.
export { shutdownSignal } from './shutdown-signal';
