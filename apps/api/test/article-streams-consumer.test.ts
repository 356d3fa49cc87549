/**
 * Mixed fleets on Redis Streams: the seed article's Streams consumer (its `RedisStreamWorker`,
 * kept line for line, in TypeScript with ioredis instead of Python with redis-py) reads a job
 * posted through polyqueue's HTTP API, with its own consumer group, from polyqueue's stream.
 * It reads the entry's `type` and `payload` fields (`data[b'type']`,
 * `json.loads(data[b'payload'])`), which polyqueue writes beside `envelope`; polyqueue's own
 * consumers go on reading `envelope` from the same entry.
 *
 * Real servers: the API app from createServer over a real redis-streams broker from
 * createBrokerFromEnv. Nothing sleeps: the test awaits the consumer's handle_job call.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import type { CompleteBroker } from '@polyqueue/core';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `pqarticle${Math.random().toString(36).slice(2, 8)}`;

/** A redis-py reply dict: `data[b'type']` raises KeyError when the field is missing. */
function pyDict(fields: string[]): (key: string) => string {
  const data = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) data.set(fields[i]!, fields[i + 1]!);
  return (key) => {
    const value = data.get(key);
    if (value === undefined) throw new Error(`KeyError: b'${key}'`);
    return value;
  };
}

/** The article's RedisStreamWorker, its consumer side method for method (enqueue is polyqueue's API here). */
class RedisStreamWorker {
  running = true;
  readonly log: string[] = [];

  constructor(
    readonly redis: Redis,
    readonly stream: string,
    readonly group: string,
    readonly consumer: string,
    readonly handleJob: (jobType: string, payload: Record<string, unknown>) => void,
  ) {}

  // Consumer Groupを作成(既に存在すればスキップ)
  async createGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  async run(): Promise<void> {
    this.log.push(`Worker ${this.consumer} started`);
    // Bounded: stop() clears running and disconnects, which ends the blocking read.
    while (this.running) {
      try {
        // XREADGROUPでメッセージを取得
        const messages = (await this.redis.xreadgroup(
          'GROUP',
          this.group,
          this.consumer,
          'COUNT',
          1,
          'BLOCK',
          10_000,
          'STREAMS',
          this.stream,
          '>', // 新しいメッセージのみ
        )) as [string, [string, string[]][]][] | null;
        if (!messages) continue;
        for (const [, streamMessages] of messages) {
          for (const [messageId, data] of streamMessages) await this.processMessage(messageId, data);
        }
      } catch (error) {
        this.log.push(`Error: ${(error as Error).message}`);
      }
    }
  }

  async processMessage(messageId: string, fields: string[]): Promise<void> {
    const data = pyDict(fields);
    try {
      const jobType = data('type');
      const payload = JSON.parse(data('payload'));
      this.log.push(`Processing ${messageId}: ${jobType}`);
      // ジョブを処理
      this.handleJob(jobType, payload);
      // 処理完了 → ACK
      await this.redis.xack(this.stream, this.group, messageId);
      this.log.push(`Completed ${messageId}`);
    } catch (error) {
      // 失敗したメッセージはACKしない → 再処理される
      this.log.push(`Failed ${messageId}: ${(error as Error).message}`);
    }
  }

  stop(): void {
    this.running = false;
    this.redis.disconnect();
  }
}

let broker: CompleteBroker;
let root: string;
const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-article-'));
  try {
    await admin.connect();
    broker = await createBrokerFromEnv({ BROKER: 'redis-streams', REDIS_URL, POLYQUEUE_PREFIX: PREFIX });
  } catch (error) {
    throw new Error(`cannot reach Redis at ${REDIS_URL} (or set REDIS_URL): ${(error as Error).message}`);
  }
});

afterAll(async () => {
  await broker?.close();
  const keys = [...(await admin.keys(`${PREFIX}:*`)), ...(await admin.keys(`{${PREFIX}:*`))];
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
  await rm(root, { recursive: true, force: true });
});

describe("the seed article's Streams consumer beside polyqueue", () => {
  it('reads and handles a job posted through the API, with its own group; polyqueue still reads the envelope', async () => {
    const stream = `${PREFIX}:email`;
    let handled!: (job: { jobType: string; payload: Record<string, unknown> }) => void;
    const handledJob = new Promise<{ jobType: string; payload: Record<string, unknown> }>((resolve) => {
      handled = resolve;
    });
    const worker = new RedisStreamWorker(
      new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      stream,
      'workers',
      'worker1',
      (jobType, payload) => {
        // def handle_job: if job_type == "send_email": print(f"Sending email to {payload['to']}")
        if (jobType === 'send_email') worker.log.push(`Sending email to ${payload.to}`);
        handled({ jobType, payload });
      },
    );
    await worker.createGroup();
    const running = worker.run();

    const app = createServer({ broker, state: new MemoryStateStore(), storageRoot: root });
    const email = { to: 'legacy-reader@example.com', subject: 'Mixed fleet', body: 'posted to polyqueue' };
    const res = await request(app).post('/v1/emails').send(email);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const jobId: string = res.body.id;

    let timer: NodeJS.Timeout | undefined;
    const job = await Promise.race([
      handledJob,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`the article's consumer handled nothing in 10 s:\n${worker.log.join('\n')}`)),
          10_000,
        );
      }),
    ]);
    clearTimeout(timer);
    expect(job).toEqual({ jobType: 'send_email', payload: email });
    expect(worker.log).toContain('Sending email to legacy-reader@example.com');
    await expect
      .poll(() => worker.log.some((l) => l.startsWith('Completed ')), { timeout: 5_000 })
      .toBe(true);
    // The entry as polyqueue wrote it: `envelope` first (what polyqueue reads), then the classic fields.
    const entries = (await admin.xrange(stream, '-', '+')) as [string, string[]][];
    expect(entries).toHaveLength(1);
    const fields = entries[0]![1];
    expect(fields.filter((_field: string, i: number) => i % 2 === 0)).toEqual([
      'envelope',
      'type',
      'payload',
    ]);
    expect(JSON.parse(fields[1]!)).toMatchObject({ id: jobId, type: 'send_email', payload: email });
    // Acked in its group: nothing pending there.
    const pending = (await admin.xpending(stream, 'workers')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    worker.stop();
    await running;
    expect(worker.log.filter((l) => l.startsWith('Failed'))).toEqual([]);

    // The same entry, read by polyqueue's own consumer group: the envelope, under the API's job id.
    const controller = new AbortController();
    let got!: (body: string) => void;
    const body = new Promise<string>((resolve) => {
      got = resolve;
    });
    const consuming = broker.consume(
      'email',
      async (delivery) => {
        await delivery.ack();
        got(delivery.body);
      },
      { concurrency: 1, signal: controller.signal },
    );
    const envelope = JSON.parse(
      await Promise.race([
        body,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('polyqueue consumer got nothing in 10 s')), 10_000);
        }),
      ]),
    );
    clearTimeout(timer);
    controller.abort();
    await consuming;
    expect(envelope).toMatchObject({ id: jobId, type: 'send_email', payload: email, attempt: 1 });
  }, 30_000);
});
