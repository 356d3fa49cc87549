import { type BackoffOptions, backoffDelay, type Logger } from '@polyqueue/core';
import type { Consumer, ConsumerRunConfig, Kafka } from 'kafkajs';

/**
 * One kafkajs consumer in one group, kept alive. kafkajs restarts a consumer by itself after a
 * retriable crash (a broker restart, a network drop); after a crash it will not restart, this
 * supervisor builds a new consumer and runs it again, with backoff, until stopped. So a worker
 * never sits silently idle after an outage.
 */

/** Between restarts of a crashed consumer: core's full-jitter backoff, from 1 s up to 15 s. */
const RESTART_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 15_000 };

export interface SessionSettings {
  sessionTimeout: number;
  heartbeatInterval: number;
  rebalanceTimeout: number;
}

export interface SupervisedConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  fromBeginning: boolean;
  session: SessionSettings;
  /** Fetch long-poll; defaults to the heartbeat interval (at most 5 s). */
  maxWaitTimeInMs?: number;
  logger: Logger;
  /** The run config for each (re)started consumer; autoCommit is always off. */
  run: Omit<ConsumerRunConfig, 'autoCommit'>;
  /** After every join: the partitions of `topic` this member now owns. */
  onJoin?: (partitions: number[]) => void;
  /** The group started rebalancing and this member is about to rejoin (its generation still counts). */
  onRebalance?: () => void;
  onConnectionChange?: (connected: boolean, error?: Error) => void;
}

export class SupervisedConsumer {
  private consumer: Consumer | undefined;
  private stopped = false;
  private connected = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private resolveJoined!: () => void;
  /** Resolves at the first group join. */
  readonly joined = new Promise<void>((resolve) => {
    this.resolveJoined = resolve;
  });

  constructor(private readonly options: SupervisedConsumerOptions) {}

  async start(): Promise<void> {
    const { kafka, groupId, topic, fromBeginning, session, logger } = this.options;
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: session.sessionTimeout,
      heartbeatInterval: session.heartbeatInterval,
      rebalanceTimeout: session.rebalanceTimeout,
      // The runner heartbeats between fetches, so a long poll would slow every rebalance down.
      maxWaitTimeInMs: this.options.maxWaitTimeInMs ?? Math.min(session.heartbeatInterval, 5_000),
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8, restartOnFailure: async () => true },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      this.restarts = 0;
      const assignment = event.payload.memberAssignment as Record<string, number[]>;
      this.options.onJoin?.(assignment[topic] ?? []);
      if (!this.connected) {
        this.connected = true;
        this.options.onConnectionChange?.(true);
      }
      this.resolveJoined();
    });
    consumer.on(consumer.events.REBALANCING, () => this.options.onRebalance?.());
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (this.connected) {
        this.connected = false;
        this.options.onConnectionChange?.(false, error);
      }
      if (this.stopped) return;
      logger.warn({ err: error, groupId, restart }, 'kafka consumer crashed');
      if (!restart && this.consumer === consumer) this.scheduleRestart(consumer);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning });
      await consumer.run({ ...this.options.run, autoCommit: false });
    } catch (error) {
      if (this.stopped) return;
      logger.warn({ err: error, groupId }, 'kafka consumer could not start; trying again');
      if (this.connected) {
        this.connected = false;
        this.options.onConnectionChange?.(false, error as Error);
      }
      this.scheduleRestart(consumer);
    }
  }

  /** Commits `offset` (the next offset to read) for a partition; false if the commit failed. */
  async commit(partition: number, offset: number): Promise<boolean> {
    const consumer = this.consumer;
    if (!consumer) return false;
    try {
      await consumer.commitOffsets([{ topic: this.options.topic, partition, offset: String(offset) }]);
      return true;
    } catch (error) {
      this.options.logger.warn(
        { err: error, groupId: this.options.groupId, partition, offset },
        'offset commit failed; the messages after the last commit will be delivered again',
      );
      return false;
    }
  }

  /** Moves the fetch position of an owned partition (kafkajs applies it before the next fetch). */
  seek(partition: number, offset: number): void {
    this.consumer?.seek({ topic: this.options.topic, partition, offset: String(offset) });
  }

  /** Stops fetching for every partition (during a drain) without leaving the group. */
  pauseAll(): void {
    try {
      this.consumer?.pause([{ topic: this.options.topic }]);
    } catch {
      // Not running (crashed or restarting): nothing is fetched anyway.
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch((error) => {
      this.options.logger.debug({ err: error }, 'kafka consumer disconnect failed');
    });
  }

  private scheduleRestart(old: Consumer): void {
    clearTimeout(this.restartTimer);
    this.restarts += 1;
    const delay = backoffDelay(this.restarts, RESTART_BACKOFF);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      old
        .disconnect()
        .catch(() => {})
        .then(() => (this.stopped ? undefined : this.start()));
    }, delay);
  }
}
