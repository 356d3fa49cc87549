/**
 * The seed article's producers, unchanged, on every real server: each example of the testkit's
 * golden corpus is written with the broker's own client as the article writes it, into the queue
 * the article's name maps to, and the email worker's own handlers (through core's createWorker,
 * with the file outbox) must turn it into one delivered email with the right To, Subject and
 * body, or into a dead letter that says why where the article's own worker failed too.
 *
 * Each test owns its queues: a prefix of its own (POLYQUEUE_PREFIX), removed afterwards.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import {
  type CompleteBroker,
  createWorker,
  MemoryIdempotencyStore,
  type OutcomeEvent,
} from '@polyqueue/core';
import {
  rabbitmqArticleDeclare,
  removeSeedQueues,
  SEED_BROKERS,
  LOCAL_SERVERS as SERVERS,
  type SeedBroker,
  type SeedExample,
  type SeedTarget,
  seedExamplesFor,
  writeSeedExample,
} from '@polyqueue/testkit';
import { parseHeaders } from '@polyqueue/testkit/smtp-sink';
import { describe, expect, it } from 'vitest';
import { createEmailHandler } from '../src/handler';
import { createOutboxTransport, type SendResult } from '../src/transport';

/** Each broker's variables: the local servers, tuned for short waits (as the conformance tests are). */
function brokerEnv(broker: SeedBroker, prefix: string): Record<string, string> {
  const common = { BROKER: broker, POLYQUEUE_PREFIX: prefix };
  switch (broker) {
    case 'mysql':
      return { ...common, MYSQL_URL: SERVERS.MYSQL_URL, MYSQL_POLL_MIN_MS: '10', MYSQL_POLL_MAX_MS: '100' };
    case 'sqlite':
      return { ...common, SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'pq-seed-')), 'queue.db') };
    case 'redis-list':
    case 'redis-reliable':
    case 'redis-streams':
      return { ...common, REDIS_URL: SERVERS.REDIS_URL, REDIS_BLOCK_MS: '200', REDIS_POLL_MS: '50' };
    case 'rabbitmq':
      return { ...common, AMQP_URL: SERVERS.AMQP_URL };
    case 'kafka':
      return {
        ...common,
        KAFKA_BROKERS: SERVERS.KAFKA_BROKERS,
        KAFKA_PARTITIONS: '1',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
      };
    case 'sqs':
      return {
        ...common,
        SQS_ENDPOINT: SERVERS.SQS_ENDPOINT,
        AWS_REGION: SERVERS.AWS_REGION,
        SQS_WAIT_TIME_S: '1',
      };
  }
}

let tests = 0;
/** A prefix no other test (or run) shares, and no other prefix starts with: short enough for SQS. */
function uniquePrefix(): string {
  tests += 1;
  return `sc${process.pid}t${String(tests).padStart(3, '0')}`;
}

const MAIL = { from: 'polyqueue <no-reply@example.test>', messageIdDomain: 'example.test' };
const QUEUE = 'email';
const TIMEOUT_MS: Record<SeedBroker, number> = {
  mysql: 15_000,
  sqlite: 15_000,
  'redis-list': 15_000,
  'redis-reliable': 15_000,
  'redis-streams': 15_000,
  rabbitmq: 20_000,
  kafka: 60_000,
  sqs: 30_000,
};

interface Running {
  broker: CompleteBroker;
  target: SeedTarget;
  /** The first succeeded or dead outcome; rejects after timeoutMs with every outcome seen. */
  settled: Promise<OutcomeEvent>;
  stop(): Promise<void>;
}

/** The email worker's handlers over a fresh broker for `broker`, consuming `email` until stop(). */
async function startEmailWorker(broker: SeedBroker, timeoutMs: number): Promise<Running> {
  const env = brokerEnv(broker, uniquePrefix());
  const target: SeedTarget = { broker, env, queue: QUEUE };
  const instance = await createBrokerFromEnv(env);
  const transport = createOutboxTransport(mkdtempSync(join(tmpdir(), 'pq-seed-outbox-')));
  const seen: OutcomeEvent[] = [];
  let settle!: (event: OutcomeEvent) => void;
  let fail!: (error: Error) => void;
  const settled = new Promise<OutcomeEvent>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const timer = setTimeout(
    () =>
      fail(
        new Error(
          `${broker}: no delivered email or dead letter within ${timeoutMs} ms; outcomes seen: ${JSON.stringify(seen)}`,
        ),
      ),
    timeoutMs,
  );
  const worker = createWorker({
    broker: instance,
    queue: QUEUE,
    handlers: { send_email: createEmailHandler(transport, MAIL) },
    idempotency: new MemoryIdempotencyStore(),
    backoff: { baseMs: 50, maxMs: 200 },
    onOutcome: (event) => {
      seen.push(event);
      if (event.outcome === 'succeeded' || event.outcome === 'dead') settle(event);
    },
  });
  const controller = new AbortController();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const running = worker.run(controller.signal, ready);
  await Promise.race([
    isReady,
    running.then(() => Promise.reject(new Error(`${broker}: worker stopped before ready`))),
  ]);
  return {
    broker: instance,
    target,
    settled: settled.finally(() => clearTimeout(timer)),
    async stop() {
      clearTimeout(timer);
      controller.abort();
      await running;
      await transport.close();
      await instance.close();
      await removeSeedQueues(target);
    },
  };
}

/** The message's plain-text part as sent (the outbox writes 7-bit or quoted-printable text). */
function textBody(raw: string): string {
  const split = raw.indexOf('\r\n\r\n');
  const headers = parseHeaders(raw);
  const body = split < 0 ? '' : raw.slice(split + 4).replace(/\r\n$/, '');
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? ''))
    return body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return body;
}

function expectation(example: SeedExample): string {
  return 'delivered' in example.expect
    ? `a delivered email to ${example.expect.delivered.to}`
    : 'a dead letter with the reason';
}

for (const broker of SEED_BROKERS) {
  describe(`the article's producers on ${broker}`, () => {
    for (const example of seedExamplesFor(broker)) {
      it(
        `${example.id} (${example.article.split('\n').join(' ')}) ends as ${expectation(example)}`,
        async () => {
          const worker = await startEmailWorker(broker, TIMEOUT_MS[broker]);
          try {
            await writeSeedExample(example, worker.target);
            const event = await worker.settled;
            if ('delivered' in example.expect) {
              const want = example.expect.delivered;
              expect(event.outcome, `${event.error ?? ''}`).toBe('succeeded');
              const result = event.result as SendResult;
              expect(result.accepted).toEqual([want.to]);
              const raw = await readFile(result.file!, 'latin1');
              const headers = parseHeaders(raw);
              expect(headers.to).toBe(want.to);
              // nodemailer writes no Subject header for an empty subject (RFC 5322 makes it optional).
              expect(headers.subject ?? '').toBe(want.subject);
              expect(headers['content-type']).toMatch(/^text\/plain/);
              expect(textBody(raw)).toBe(want.body);
            } else {
              expect(event.outcome).toBe('dead');
              expect(event.error).toMatch(example.expect.deadLetter);
              const dead = await worker.broker.deadLetters(QUEUE).list(10);
              expect(dead.map((d) => d.reason)).toEqual([expect.stringMatching(example.expect.deadLetter)]);
            }
          } finally {
            await worker.stop();
          }
        },
        TIMEOUT_MS[broker] + 60_000,
      );
    }
  });
}

describe("the article's RabbitMQ producer's queue_declare(queue='job_queue', durable=True)", () => {
  // Pinned as it stands: polyqueue's work queue carries arguments (x-max-priority on classic
  // queues, x-queue-type on quorum ones) and RabbitMQ refuses a redeclaration without them, so
  // the article's producer must drop its declare (docs/wire-format.md). When the topology stops
  // needing arguments, this test fails and the declare can join the corpus's writer.
  it('is refused by the queue polyqueue declared, naming the argument', async () => {
    const worker = await startEmailWorker('rabbitmq', TIMEOUT_MS.rabbitmq);
    try {
      const refusal = await rabbitmqArticleDeclare(worker.target);
      expect(refusal).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-(max-priority|queue-type)'/);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});
