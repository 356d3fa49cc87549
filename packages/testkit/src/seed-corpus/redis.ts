/** The article's Redis producers: RPUSH onto a list (方式1, also the reliable driver) and XADD (方式3). */
import { type SeedBroker, type SeedExample, USER } from './types';

const LIST_QUEUES: readonly SeedBroker[] = ['redis-list', 'redis-reliable'];

// Python's json.dumps writes ", " and ": " between items: these bodies are its output, byte for byte.

/** 第2部 Redis, printed and derived. */
export const REDIS_EXAMPLES: readonly SeedExample[] = [
  {
    id: 'redis-cli-rpush',
    where: '第2部 Redis / 方式1:List / 基本操作',
    article: `RPUSH job_queue '{"type":"send_email","to":"user@example.com"}'`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: { kind: 'rpush', body: '{"type":"send_email","to":"user@example.com"}' },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker:
      "RedisQueueWorker.process_job reads job['payload'] (a KeyError on this flat shape); issue 18 reads flat fields as the payload",
  },
  {
    id: 'python-redis-list-enqueue',
    where: '第2部 Redis / 方式1:List / Pythonでの実装',
    article: `worker.enqueue("send_email", {"to": "user@example.com", "subject": "Hello"})  # rpush(json.dumps({"type": ..., "payload": ...}))`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: {
      kind: 'rpush',
      body: '{"type": "send_email", "payload": {"to": "user@example.com", "subject": "Hello"}}',
    },
    expect: { delivered: { to: USER, subject: 'Hello', body: '' } },
    articleWorker: "RedisQueueWorker.send_email prints payload['to']",
  },
  {
    id: 'redis-cli-xadd',
    where: '第2部 Redis / 方式3:Redis Streams',
    article: 'XADD job_stream * type send_email to user@example.com',
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['to', USER],
      ],
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker:
      "RedisStreamWorker.process_message reads data[b'payload'] (a KeyError on flat fields); issue 18 reads flat fields as the payload",
  },
  {
    id: 'python-redis-streams-enqueue',
    where: '第2部 Redis / 方式3:Redis Streams / Pythonでの実装',
    article: `worker.enqueue("send_email", {"to": "user@example.com"})  # xadd(stream, {"type": job_type, "payload": json.dumps(payload)})`,
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['payload', '{"to": "user@example.com"}'],
      ],
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "RedisStreamWorker.handle_job prints payload['to']",
  },
  {
    id: 'python-redis-list-enqueue-without-to',
    where: '第2部 Redis / 方式1:List / Pythonでの実装',
    article: `worker.enqueue("send_email", {"subject": "Hello"})`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: { kind: 'rpush', body: '{"type": "send_email", "payload": {"subject": "Hello"}}' },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "RedisQueueWorker.send_email: KeyError 'to'",
    derived: 'the payload has no "to"',
  },
  {
    id: 'python-redis-streams-enqueue-without-to',
    where: '第2部 Redis / 方式3:Redis Streams / Pythonでの実装',
    article: `worker.enqueue("send_email", {"subject": "Hello"})`,
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['payload', '{"subject": "Hello"}'],
      ],
    },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "RedisStreamWorker.handle_job: KeyError 'to' (left unacked, so redelivered forever)",
    derived: 'the payload has no "to"',
  },
];

export async function withRedis(
  url: string,
  use: (redis: import('ioredis').Redis) => Promise<void>,
): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  try {
    await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Deletes the keys of the queues under `prefix` (with and without a cluster hash tag). */
export function removeRedisKeys(url: string, prefix: string): Promise<void> {
  return withRedis(url, async (redis) => {
    for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
  });
}
