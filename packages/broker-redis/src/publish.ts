import { type Envelope, encodeEnvelope, type OutgoingMessage } from '@polyqueue/core';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection';
import { delayedMember, groupKeys, type QueueKeys, topicGroupsKey } from './keys';

export type Structure = 'list' | 'stream';

/**
 * Queues a batch in one MULTI (one slot: all keys share the queue's hash tag), so the batch is
 * accepted whole or not at all. Delayed jobs go to the delayed sorted set. Lists: normal is
 * RPUSHed to the main list exactly like a classic producer (the batch's normals in one
 * variadic RPUSH), high is LPUSHed to its head (in reverse, so a batch of highs keeps its
 * order), low goes to the low list. Streams: XADD with
 * the fields `envelope`, then `type` and `payload` (JSON text) for the article's consumers;
 * priority is not expressible there and is ignored. A delayed job, when it comes due, is XADDed
 * by promote-delayed-stream-2.lua with `envelope` only.
 */
export async function publishBatch(
  redis: RedisClient,
  keys: QueueKeys,
  structure: Structure,
  messages: readonly OutgoingMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  const now = Date.now();
  const multi = redis.multi();
  // One variadic push per list and priority instead of a command per job: the MULTI keeps
  // the batch whole either way, and Redis appends the bodies in the order given.
  const high: string[] = [];
  const normal: string[] = [];
  const low: string[] = [];
  for (const message of messages) {
    const body = encodeEnvelope(message.envelope);
    if (message.delayMs !== undefined && message.delayMs > 0) {
      multi.zadd(keys.delayed, now + message.delayMs, delayedMember(message.priority, body));
    } else if (structure === 'stream') {
      // `type` and `payload` (JSON text) beside `envelope`, for consumers written as the seed
      // article writes them (data[b'type'], json.loads(data[b'payload'])); polyqueue's consumer
      // and scripts read `envelope` first. docs/wire-format.md, "Mixed fleets".
      const payload = JSON.stringify(message.envelope.payload ?? null);
      multi.xadd(keys.main, '*', 'envelope', body, 'type', message.envelope.type, 'payload', payload);
    } else if (message.priority === 'high') {
      high.push(body);
    } else if (message.priority === 'low') {
      low.push(body);
    } else {
      normal.push(body);
    }
  }
  if (normal.length > 0) multi.rpush(keys.main, ...normal);
  if (low.length > 0) multi.rpush(keys.low, ...low);
  if (high.length > 0) multi.lpush(keys.main, ...high.reverse());
  await execOrThrow(multi);
}

/**
 * Pub/sub fan-out: every group subscribed to the topic has its own queue (so each group retries
 * and dead-letters on its own), registered in the set `{polyqueue:topic:T}:groups`. An event is
 * pushed to every registered group's queue in one MULTI.
 */
export async function publishToGroups(
  redis: RedisClient,
  prefix: string,
  topic: string,
  structure: Structure,
  event: Envelope,
): Promise<void> {
  const groups = await redis.smembers(topicGroupsKey(prefix, topic));
  if (groups.length === 0) return;
  const body = encodeEnvelope(event);
  const multi = redis.multi();
  for (const group of groups) {
    const main = groupKeys(prefix, topic, group).main;
    if (structure === 'stream') multi.xadd(main, '*', 'envelope', body);
    else multi.rpush(main, body);
  }
  await execOrThrow(multi);
}

export async function execOrThrow(multi: ChainableCommander): Promise<unknown[]> {
  const results = await multi.exec();
  if (!results) throw new Error('redis transaction aborted');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
