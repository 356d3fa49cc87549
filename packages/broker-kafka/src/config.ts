import { intVariable } from '@polyqueue/core';
import { z } from 'zod';

/**
 * Environment of the kafka driver. Every variable has a default that works against the local
 * broker of scripts/services/kafka (KRaft, one node, 127.0.0.1:9092).
 */

const hostPort = /^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/;

/** KAFKA_BROKERS: comma-separated host:port bootstrap list, e.g. `kafka-1:9092,kafka-2:9092`. */
const brokersVariable = z
  .string()
  .default('127.0.0.1:9092')
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  )
  .refine((list) => list.length > 0 && list.every((entry) => hostPort.test(entry)), {
    message: 'must be a comma-separated list of host:port, e.g. 127.0.0.1:9092 or kafka-1:9092,kafka-2:9092',
  });

/** Topic-name-safe text: Kafka allows [A-Za-z0-9._-] only. */
const topicSafe = z
  .string()
  .regex(/^[A-Za-z0-9._-]+$/, 'may contain only letters, digits, ".", "_" and "-" (Kafka topic names)');

export const kafkaEnvSchema = z.object({
  KAFKA_BROKERS: brokersVariable,
  KAFKA_CLIENT_ID: z.string().min(1).default('polyqueue'),
  /** Partitions of each queue, retry and event topic when the driver creates it (never changed afterwards). */
  KAFKA_PARTITIONS: intVariable(3, 1, 10_000),
  /** Replication factor of created topics; -1 takes the broker's default.replication.factor. */
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(-1).max(100).default(-1),
  /** A consumer silent for this long is declared dead and its partitions go to other members. */
  KAFKA_SESSION_TIMEOUT_MS: intVariable(30_000, 1_000),
  KAFKA_HEARTBEAT_INTERVAL_MS: intVariable(3_000, 100),
  /** How long a rebalance waits for members to rejoin. */
  KAFKA_REBALANCE_TIMEOUT_MS: intVariable(60_000, 1_000),
  /** retention.ms of created queue and retry topics (dead-letter topics keep messages forever). */
  KAFKA_RETENTION_MS: intVariable(7 * 24 * 3_600_000, 60_000),
  POLYQUEUE_PREFIX: topicSafe.default('polyqueue'),
});

export type KafkaConfig = z.infer<typeof kafkaEnvSchema>;

/** The Kafka names behind one logical queue. */
export interface QueueTopics {
  main: string;
  retry: string;
  dead: string;
  /** Consumer group of the queue's workers: one group per worker kind. */
  group: string;
  /** Consumer group that moves due messages from the retry topic back to main. */
  retryGroup: string;
}

export function queueTopics(prefix: string, queue: string): QueueTopics {
  const main = `${prefix}.${checkName('queue', queue)}`;
  return { main, retry: `${main}.retry`, dead: `${main}.dead`, group: main, retryGroup: `${main}.retry` };
}

/** The Kafka names behind one pub/sub topic and one subscriber group. */
export function eventTopic(prefix: string, topic: string): string {
  return `${prefix}.events.${checkName('topic', topic)}`;
}

export function subscriberGroup(
  prefix: string,
  topic: string,
  group: string,
): { group: string; dead: string } {
  const name = `${eventTopic(prefix, topic)}.${checkName('group', group)}`;
  return { group: name, dead: `${name}.dead` };
}

function checkName(what: string, name: string): string {
  const parsed = topicSafe.max(200).safeParse(name);
  if (!parsed.success) {
    throw new Error(
      `kafka: ${what} name ${JSON.stringify(name)} ${parsed.error.issues[0]?.message ?? 'is invalid'}`,
    );
  }
  return name;
}
