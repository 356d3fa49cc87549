import { intVariable, urlVariable } from '@polyqueue/core';
import { z } from 'zod';

/**
 * The environment variables the rabbitmq driver reads. Keys are variable names; every one has a
 * default, so `BROKER=rabbitmq` alone talks to a local broker.
 */
export const rabbitmqEnvSchema = z.object({
  AMQP_URL: urlVariable(['amqp:', 'amqps:']).default('amqp://guest:guest@127.0.0.1:5672'),
  /** classic (default) keeps x-max-priority; quorum replicates queues across a cluster (no priority). */
  AMQP_QUEUE_TYPE: z.enum(['classic', 'quorum']).default('classic'),
  /**
   * Quorum queues only: how many times a message may be given back (its consumer died, or
   * nacked it) before RabbitMQ dead-letters it to `P.Q.dead`. 20 is RabbitMQ 4's own default.
   * Part of the queue's arguments: changing it for an existing queue means redeclaring it.
   */
  AMQP_DELIVERY_LIMIT: intVariable(20, 1, 1_000_000),
  POLYQUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, "_", "-" or "."')
    .default('polyqueue'),
  /**
   * Deliveries one consumer holds unacked; 0 (the default) or less than its concurrency means
   * its concurrency. More keeps the next message at hand instead of one broker round trip away,
   * the extra ones waiting in the worker for a handler slot; but they are then not available to
   * other consumers: with slow jobs a surviving worker hoards the backlog, and the jobs a killed
   * worker gives back wait behind it (the chaos run with 256: 29.4 s against 2 leases of 6 s).
   */
  AMQP_PREFETCH: intVariable(0, 0, 65_535),
  /** The longest pause between reconnection attempts after the broker went away. */
  AMQP_RECONNECT_MAX_MS: intVariable(5_000, 10, 600_000),
  /** How long publish() and the other calls wait for a lost connection to come back before failing. */
  AMQP_CONNECT_TIMEOUT_MS: intVariable(15_000, 10, 600_000),
  /** AMQP heartbeat in seconds: how soon a silently dead TCP connection is noticed. */
  AMQP_HEARTBEAT_S: intVariable(15, 0, 600),
});

export type RabbitmqConfig = z.infer<typeof rabbitmqEnvSchema>;

/**
 * The delay tiers, shortest first. Each is one queue per logical queue whose x-message-ttl is
 * the tier, so every message in it expires in arrival order and none blocks the head.
 */
export const DELAY_TIERS_MS: readonly number[] = [250, 1_000, 5_000, 30_000, 120_000, 600_000, 3_600_000];

/** `250ms`, `1s`, `2m`, `1h`: the suffix of a tier queue's name. */
export function tierLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

/** Every AMQP name the driver uses for one logical queue (DESIGN.md: `polyqueue.Q`). */
export interface QueueNames {
  work: string;
  dead: string;
  /** Tier queue name per tier, in DELAY_TIERS_MS order. */
  tiers: readonly string[];
}

export function queueNames(prefix: string, queue: string): QueueNames {
  return namesFor(`${prefix}.${queue}`);
}

/** A group's queue on a topic: `polyqueue.events.<topic>.<group>`, with its own retries and dead letters. */
export function groupQueueNames(prefix: string, topic: string, group: string): QueueNames {
  return namesFor(`${prefix}.events.${topic}.${group}`);
}

/** The fanout exchange of a topic: `polyqueue.events.<topic>`. */
export function topicExchange(prefix: string, topic: string): string {
  return `${prefix}.events.${topic}`;
}

function namesFor(work: string): QueueNames {
  return {
    work,
    dead: `${work}.dead`,
    tiers: DELAY_TIERS_MS.map((ms) => `${work}.delay.${tierLabel(ms)}`),
  };
}
