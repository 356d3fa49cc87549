import { createJobRecorder, type OutcomeObserver, recordAttempts } from '@polyqueue/app-runtime';
import {
  type Broker,
  type BrokerAdmin,
  type Capabilities,
  type CompleteBroker,
  createWorker,
  type Envelope,
  NonRetryableError,
  type OutgoingMessage,
  type Priority,
  type QueueStats,
  type StateStore,
} from '@polyqueue/core';
import { deferred } from '@polyqueue/testkit';
import sharp from 'sharp';

/**
 * The part of a broker the API uses, recording what it publishes; set failWith to simulate an
 * outage, and capabilities to play a broker that lacks delayed delivery or priority.
 */
export class RecordingBroker
  implements Pick<Broker, 'publish' | 'name' | 'capabilities'>, Pick<BrokerAdmin, 'ping' | 'stats'>
{
  readonly name = 'recording';
  capabilities: Capabilities = {
    delayedDelivery: 'native',
    priority: 'native',
    redeliveryAfterCrash: 'none',
    ordering: 'none',
    pubsub: 'native',
    leaseExtension: false,
    delivery: 'at-least-once',
    ackDurable: 'on-resolve',
    crossProcess: false,
  };
  readonly published: { queue: string; envelope: Envelope; delayMs?: number; priority?: Priority }[] = [];
  failWith: Error | undefined;

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    for (const m of messages) {
      const entry: (typeof this.published)[number] = { queue, envelope: structuredClone(m.envelope) };
      if (m.delayMs !== undefined) entry.delayMs = m.delayMs;
      if (m.priority !== undefined) entry.priority = m.priority;
      this.published.push(entry);
    }
  }

  async ping(): Promise<void> {
    if (this.failWith) throw this.failWith;
  }

  async stats(_queue: string): Promise<QueueStats> {
    return { ready: this.published.length, inFlight: 0, delayed: 0, dead: 0 };
  }
}

/**
 * The email worker the admin API's tests run against a real broker: while `failing()` its
 * handler fails for good (each job goes to the dead letters), after that it succeeds; job
 * states go to `state`. It consumes through `consumeFrom` (a pause gate, say; the broker by
 * default). Resolves once it consumes, with its run, which ends on `signal`.
 */
export async function startEmailWorker(options: {
  broker: CompleteBroker;
  consumeFrom?: Broker;
  state: StateStore;
  failing: () => boolean;
  signal: AbortSignal;
  /** Counts the outcomes for GET /v1/queues/:q/history (startOutcomeHistory), as run-worker does. */
  history?: OutcomeObserver;
}): Promise<{ running: Promise<void> }> {
  const { broker, state } = options;
  const ready = deferred();
  const worker = createWorker({
    broker: options.consumeFrom ?? broker,
    queue: 'email',
    handlers: {
      send_email: {
        async handle(payload, context) {
          if (options.failing()) throw new NonRetryableError('mailbox unavailable: 550 no such user');
          // What the email worker's result holds (its headers and SMTP envelope), so that the
          // dashboard's job page shows them.
          const { to, subject } = payload as { to: string; subject: string };
          return {
            transport: 'smtp',
            messageId: `<${context.envelope.id}@example.test>`,
            from: 'polyqueue <no-reply@example.test>',
            to: [to],
            subject,
            envelope: { from: 'no-reply@example.test', to: [to] },
            accepted: [to],
            rejected: [],
            response: '250 2.0.0 Ok: queued',
          };
        },
      },
    },
    idempotency: state,
    jobs: state,
    // Each attempt goes to the job's history too, as run-worker.ts records it.
    onOutcome: recordAttempts(
      createJobRecorder({ state, broker, ...(options.history ? { history: options.history } : {}) }),
      { state, worker: 'test-host:1:helpers' },
    ),
  });
  const running = worker.run(options.signal, () => ready.resolve());
  await Promise.race([ready.promise, running]);
  return { running };
}

/** A small valid PNG for the image routes. */
export const png = () =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();
