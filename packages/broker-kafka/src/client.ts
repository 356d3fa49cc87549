import type { Logger } from '@polyqueue/core';
import kafkajs, {
  type Admin,
  type IHeaders,
  type Kafka,
  type KafkaMessage,
  type LogEntry,
  type Message,
  type PartitionMetadata,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import type { KafkaConfig } from './config';

/**
 * The kafkajs client, its logging and the small admin helpers the driver shares: topic creation,
 * watermarks and group lag. kafkajs is CommonJS; it is imported as a default and destructured so
 * Node's ESM loader and the bundlers agree.
 */

const { Kafka: KafkaClient, logLevel, Partitioners } = kafkajs;

/** Header names the driver writes; values are UTF-8 strings. */
export const HEADER = {
  /** Epoch milliseconds before which a message in the retry topic must not go back to main. */
  dueAt: 'polyqueue-due-at',
  /** The delivery's message id when the message was dead-lettered (the id for foreign bodies). */
  messageId: 'polyqueue-message-id',
  reason: 'polyqueue-reason',
  deadAt: 'polyqueue-dead-at',
} as const;

export function createKafka(config: KafkaConfig, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  return new KafkaClient({
    clientId: config.KAFKA_CLIENT_ID,
    brokers: config.KAFKA_BROKERS,
    // kafkajs is chatty at INFO (every join, every restart attempt): keep WARN and above.
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      const fields = { namespace: entry.namespace, ...extra };
      if (entry.level === logLevel.ERROR) log.error(fields, message);
      else if (entry.level === logLevel.WARN) log.warn(fields, message);
      else log.debug(fields, message);
    },
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 },
    connectionTimeout: 3_000,
  });
}

/** A kafkajs client (producer or admin) connected on first use; a failed connect is tried again. */
export class LazyClient<T extends { connect(): Promise<void>; disconnect(): Promise<void> }> {
  private connecting: Promise<T> | undefined;

  constructor(private readonly create: () => T) {}

  get(): Promise<T> {
    if (!this.connecting) {
      const client = this.create();
      const connecting = client.connect().then(() => client);
      connecting.catch(() => {
        if (this.connecting === connecting) this.connecting = undefined;
      });
      this.connecting = connecting;
    }
    return this.connecting;
  }

  async disconnect(): Promise<void> {
    const connecting = this.connecting;
    this.connecting = undefined;
    await connecting?.then((client) => client.disconnect());
  }
}

/**
 * One kafkajs admin client. The driver keeps two, one per kind of read, because kafkajs keeps
 * one metadata cache per client and admin.fetchTopicMetadata({ topics }) (describeCluster too,
 * once the cache is 5 minutes old) replaces that cache with the named topics alone. fetchTopicOffsets reads the cache once
 * per request it sends; a replacement landing between its two requests left it no partitions
 * for its own topic, and it threw "Cannot destructure property 'partitions' of 'low.pop(...)'"
 * (kafkajs#461). A stats() read failed that way while another queue was being created.
 * - a topics admin creates topics and reads their metadata (fetchTopicMetadata,
 *   describeCluster); those calls ask the broker and do not read the cache;
 * - an offsets admin reads watermarks and committed offsets and deletes records and groups;
 *   kafkajs refreshes its cache for every topic it has read, never for a few.
 */
export class AdminClient extends LazyClient<Admin> {
  constructor(kafka: Kafka) {
    super(() => kafka.admin({ retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 } }));
  }
}

export function headerText(message: Pick<KafkaMessage, 'headers'>, name: string): string | undefined {
  const value = message.headers?.[name];
  if (value === undefined || value === null) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** The message's headers as strings, without the named ones (for republishing). */
export function copyHeaders(
  message: Pick<KafkaMessage, 'headers'>,
  without: readonly string[] = [],
): IHeaders {
  const out: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (without.includes(name) || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((v) => v.toString()) : value.toString();
  }
  return out;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** retention.ms; -1 keeps messages forever. */
  retentionMs: number;
}

/**
 * Creates the topics that do not exist yet (an existing topic keeps its partitions and config),
 * once per name per process.
 */
export class TopicRegistry {
  private readonly created = new Map<string, Promise<void>>();

  /** `admin` must be a topics admin (see AdminClient): this reads topic metadata. */
  constructor(
    private readonly admin: () => Promise<Admin>,
    private readonly replicationFactor: number,
  ) {}

  ensure(specs: readonly TopicSpec[]): Promise<void> {
    const missing = specs.filter((spec) => !this.created.has(spec.topic));
    if (missing.length > 0) {
      const creating = this.create(missing);
      for (const spec of missing) {
        const one = creating.catch((error) => {
          // A failed creation is tried again by the next caller rather than cached.
          this.created.delete(spec.topic);
          throw error;
        });
        one.catch(() => {});
        this.created.set(spec.topic, one);
      }
    }
    return Promise.all(specs.map((spec) => this.created.get(spec.topic))).then(() => {});
  }

  private async create(specs: readonly TopicSpec[]): Promise<void> {
    const admin = await this.admin();
    // false when they existed already (maybe created a moment ago by another process): either
    // way, wait below until every partition has a leader, or the first offset read fails.
    await admin
      .createTopics({
        waitForLeaders: true,
        topics: specs.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: this.replicationFactor,
          configEntries: [{ name: 'retention.ms', value: String(spec.retentionMs) }],
        })),
      })
      .catch((error: unknown) => {
        // On a cluster the broker asked for the new topic's leaders may not know the topic yet
        // (UNKNOWN_TOPIC_OR_PARTITION), and kafkajs's own wait gives up on it: the topic was
        // created, and the loop below waits until every partition has a leader.
        if (!LEADER_ERRORS.has((error as { type?: string }).type ?? '')) throw error;
      });
    const topics = specs.map((spec) => spec.topic);
    await retryAdminRead(async () => {
      const metadata = await admin.fetchTopicMetadata({ topics });
      const leaderless = metadata.topics.some(
        (t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0),
      );
      if (leaderless)
        throw Object.assign(new Error(`kafka: no leader yet for ${topics.join(', ')}`), { retriable: true });
    });
  }
}

const LEADER_ERRORS = new Set([
  'NOT_LEADER_FOR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'UNKNOWN_TOPIC_OR_PARTITION',
]);

/**
 * Runs an admin read again while a just-created topic's partitions have no leader, the client's
 * metadata is stale, or the group coordinator moves or loads: kafkajs gives up at once on
 * NOT_LEADER_FOR_PARTITION, and admin.fetchOffsets has no retry at all. Nothing is refreshed in
 * between: fetchTopicOffsets and fetchOffsets refresh the metadata of a topic their admin lacks,
 * and a topic-metadata read on an offsets admin would do harm (see AdminClient).
 */
export async function retryAdminRead<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const { type, retriable } = error as { type?: string; retriable?: boolean };
      if (attempt >= 20 || !(retriable || (type !== undefined && LEADER_ERRORS.has(type)))) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, 1_000)));
    }
  }
}

export interface PartitionOffsets {
  partition: number;
  low: number;
  high: number;
}

/** `admin` must be an offsets admin (see AdminClient). */
export async function watermarks(admin: Admin, topic: string): Promise<PartitionOffsets[]> {
  const offsets = await retryAdminRead(() => admin.fetchTopicOffsets(topic));
  return offsets
    .map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) }))
    .sort((a, b) => a.partition - b.partition);
}

/** The group's committed offset per partition of the topic (-1 where it has none). */
export async function committedOffsets(
  admin: Admin,
  groupId: string,
  topic: string,
): Promise<Map<number, number>> {
  const answer = await retryAdminRead(() => admin.fetchOffsets({ groupId, topics: [topic] }));
  const byPartition = new Map<number, number>();
  for (const entry of answer.find((t) => t.topic === topic)?.partitions ?? []) {
    byPartition.set(entry.partition, Number(entry.offset));
  }
  return byPartition;
}

/**
 * Messages of the topic that the group has not committed yet (all of them for a new group).
 * `handedOut` gives, per partition, an offset up to which this process has already handed
 * messages to handlers: those count as in flight, not as waiting.
 */
export async function groupLag(
  admin: Admin,
  groupId: string,
  topic: string,
  handedOut: ReadonlyMap<number, number> = new Map(),
): Promise<number> {
  const [marks, committed] = await Promise.all([
    watermarks(admin, topic),
    committedOffsets(admin, groupId, topic),
  ]);
  let lag = 0;
  for (const mark of marks) {
    const offset = committed.get(mark.partition) ?? -1;
    const start = Math.max(offset, mark.low, handedOut.get(mark.partition) ?? -1);
    lag += Math.max(0, mark.high - start);
  }
  return Math.max(0, lag);
}

/** Total messages the topic holds now (high - low watermark, summed). */
export async function topicSize(admin: Admin, topic: string): Promise<number> {
  const marks = await watermarks(admin, topic);
  return marks.reduce((sum, mark) => sum + (mark.high - mark.low), 0);
}

/**
 * Publishes a batch as one produce call per partition, all at once, each resolving only when
 * that partition's leader and its in-sync replicas have the messages (acks=all).
 *
 * Not one sendBatch: kafkajs 2.2's sendBatch across several leaders remembers, per broker, the
 * answers it already has; when a leader dies mid-call, its partitions move to a broker that has
 * already answered for its own, the retry skips that broker, and the call resolves without ever
 * sending the dead leader's messages. On a 3-broker cluster with one broker SIGKILLed under
 * load that lost 13 to 22 of 3,000 jobs whose publish had resolved (packages/broker-kafka/test/
 * cluster). A call for one partition has one leader: after a failure it is sent again, whole,
 * to the new one. Partitions are chosen by kafkajs's own DefaultPartitioner (murmur2 of the
 * key, as before; keyless messages round-robin), from the topic's partition list.
 */
export async function sendPerPartition(
  producer: Producer,
  partitionsOf: (topic: string) => Promise<PartitionMetadata[]>,
  topicMessages: readonly TopicMessages[],
): Promise<void> {
  const partitioner = Partitioners.DefaultPartitioner();
  const sends: Promise<unknown>[] = [];
  for (const { topic, messages } of topicMessages) {
    const partitionMetadata = await partitionsOf(topic);
    const groups = new Map<number, Message[]>();
    for (const message of messages) {
      const partition = partitioner({ topic, partitionMetadata, message });
      const group = groups.get(partition) ?? [];
      group.push({ ...message, partition });
      groups.set(partition, group);
    }
    for (const group of groups.values()) sends.push(producer.send({ topic, acks: -1, messages: group }));
  }
  await Promise.all(sends);
}
