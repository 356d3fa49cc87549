/**
 * The Redis type each key of a queue must have, and a check that names a key of the wrong
 * type. The three drivers share one prefix namespace: `polyqueue:email` is a list for
 * redis-list and redis-reliable and a stream for redis-streams, so switching BROKER without
 * switching POLYQUEUE_PREFIX leaves keys the new driver cannot use. Redis then answers each
 * command with a bare WRONGTYPE; this says which key, what it is, what was expected and what
 * to do, for start-up, publish and /readyz.
 */
import type { RedisClient } from './connection';
import type { QueueKeys } from './keys';

/** How jobs sit in the main key: a list (redis-list, redis-reliable) or a stream. */
export type StorageKind = 'list' | 'stream';

/** Redis TYPE answers as a reader says them. */
const TYPE_NAMES: Record<string, string> = { zset: 'sorted set' };
const typeName = (type: string) => TYPE_NAMES[type] ?? type;

/** The keys of a queue a driver reads and writes by type, with the TYPE each must have. */
export function expectedKeyTypes(keys: QueueKeys, kind: StorageKind): Array<[key: string, type: string]> {
  return [
    [keys.main, kind],
    // Only the list drivers keep low-priority jobs apart.
    ...(kind === 'list' ? ([[keys.low, 'list']] as Array<[string, string]>) : []),
    [keys.delayed, 'zset'],
    [keys.dead, 'stream'],
  ];
}

export class WrongKeyTypeError extends Error {
  constructor(
    readonly key: string,
    readonly actual: string,
    readonly expected: string,
    driver: string,
  ) {
    const mainKeyMixup =
      (actual === 'list' && expected === 'stream') || (actual === 'stream' && expected === 'list');
    const cause = mainKeyMixup
      ? `another Redis driver used this prefix (redis-list and redis-reliable keep a queue in a list, redis-streams in a stream)`
      : 'something other than this driver wrote this key';
    super(
      `key ${key} is a ${typeName(actual)}, ${driver} needs a ${typeName(expected)}: ${cause}; ` +
        'delete the key (move the jobs it holds first) or set POLYQUEUE_PREFIX to a prefix of its own',
    );
    this.name = 'WrongKeyTypeError';
  }
}

/** Redis's answer to a command on a key of another type. */
export function isWrongTypeError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

/**
 * Asks TYPE of every key of the given queues, one pipeline per queue (a queue's keys share one
 * cluster slot; a Redis Cluster refuses a pipeline across slots), all sent at once; throws a
 * WrongKeyTypeError for the first key whose type differs (a missing key, `none`, is fine: it
 * is created on use).
 */
export async function checkKeyTypes(
  redis: RedisClient,
  driver: string,
  queues: Iterable<QueueKeys>,
  kind: StorageKind,
): Promise<void> {
  const perQueue = [...queues].map((keys) => expectedKeyTypes(keys, kind)).filter((e) => e.length > 0);
  const answered = await Promise.all(
    perQueue.map(async (expected) => {
      const pipeline = redis.pipeline();
      for (const [key] of expected) pipeline.type(key);
      return { expected, answers: (await pipeline.exec()) ?? [] };
    }),
  );
  for (const { expected, answers } of answered) {
    for (const [i, [key, type]] of expected.entries()) {
      const [error, actual] = answers[i] ?? [new Error(`no answer to TYPE ${key}`), undefined];
      if (error) throw error;
      if (actual !== 'none' && actual !== type)
        throw new WrongKeyTypeError(key, String(actual), type, driver);
    }
  }
}
