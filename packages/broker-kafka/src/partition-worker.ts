import type { Logger } from '@polyqueue/core';
import type { EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { type SessionSettings, SupervisedConsumer } from './supervised-consumer';

/**
 * Runs handlers for the messages of one topic in one consumer group, `concurrency` at a time,
 * and commits an offset only after the handler's outcome.
 *
 * Kafka has one committed offset per partition, not an ack per message. With several handlers
 * running on one partition, offset n + 1 is committed only once every message at or below n is
 * settled (a per-partition watermark). A crash therefore redelivers every unsettled message and
 * possibly some settled ones after it: at-least-once, never lost.
 *
 * Messages with the same key run one after another, in offset order (same key -> same
 * partition); messages with different keys or no key run in parallel. The batch loop hands a
 * message out and moves on (so one slow job does not stop fetching); it waits only when every
 * slot is busy, heartbeating meanwhile.
 */

export interface RecordControl {
  /** Marks the message done; resolves once the watermark commit it allowed has been tried. */
  settle(): Promise<void>;
  /** Runs the message again in this process after delayMs with `attempt`, holding its offset. */
  again(delayMs: number, attempt: number): void;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  message: KafkaMessage;
}

export interface PartitionWorkerOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  fromBeginning: boolean;
  concurrency: number;
  /**
   * Where partitions without a committed offset start (partition -> offset), applied and
   * committed at the first join; without it, fromBeginning decides.
   */
  startAt?: ReadonlyMap<number, number>;
  session: SessionSettings;
  logger: Logger;
  /**
   * Runs one message. Must call control.settle() or control.again() before resolving; a record
   * left unsettled (the outcome itself failed) runs again here after a short pause.
   */
  process(record: ConsumedRecord, attempt: number | undefined, control: RecordControl): Promise<void>;
  onConnectionChange?: (connected: boolean, error?: Error) => void;
}

/** Per-partition progress: what was handed out, what is settled, what is committed. */
class PartitionProgress {
  /** Highest offset handed to a handler. */
  dispatched = -1;
  /** Highest offset below which every handed-out message is settled. */
  watermark = -1;
  committed = -1;
  revoked = false;
  readonly open: number[] = [];
  readonly settled = new Set<number>();
  readonly chains = new Map<string, Promise<void>>();
  commitChain: Promise<void> = Promise.resolve();

  dispatch(offset: number): void {
    this.dispatched = offset;
    this.open.push(offset);
  }

  /** Returns true when the watermark moved. */
  settle(offset: number): boolean {
    this.settled.add(offset);
    let moved = false;
    while (this.open.length > 0 && this.settled.has(this.open[0]!)) {
      const head = this.open.shift()!;
      this.settled.delete(head);
      this.watermark = head;
      moved = true;
    }
    return moved;
  }
}

/** A counting semaphore whose waiters can be woken to re-check whether they should give up. */
class Slots {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(giveUp: () => boolean): Promise<boolean> {
    while (this.used >= this.limit) {
      if (giveUp()) return false;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (giveUp()) return false;
    this.used += 1;
    return true;
  }

  release(): void {
    this.used -= 1;
    this.waiters.shift()?.();
  }

  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export class PartitionWorker {
  private readonly consumer: SupervisedConsumer;
  /** Messages the batch loop may have outstanding (running or waiting for their key). */
  private readonly admission: Slots;
  /** Handlers running at once; taken after a same-key predecessor finished, so waiting holds none. */
  private readonly slots: Slots;
  private readonly progress = new Map<number, PartitionProgress>();
  private readonly running = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;
  private firstJoin = true;
  private readonly startCommits = new Map<number, number>();
  /** Messages handed out and not settled yet (QueueStats.inFlight for this process). */
  unsettled = 0;

  constructor(private readonly options: PartitionWorkerOptions) {
    this.admission = new Slots(Math.max(1, options.concurrency));
    this.slots = new Slots(Math.max(1, options.concurrency));
    this.consumer = new SupervisedConsumer({
      kafka: options.kafka,
      groupId: options.groupId,
      topic: options.topic,
      fromBeginning: options.fromBeginning,
      session: options.session,
      logger: options.logger,
      run: {
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: Math.max(1, options.concurrency),
        eachBatch: (payload) => this.onBatch(payload),
      },
      onJoin: (partitions) => this.onJoin(partitions),
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    });
  }

  /** Per owned partition, the next offset this worker has not handed out yet. */
  positions(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [partition, progress] of this.progress) {
      if (progress.dispatched >= 0) out.set(partition, progress.dispatched + 1);
    }
    return out;
  }

  get joined(): Promise<void> {
    return this.consumer.joined;
  }

  async start(): Promise<void> {
    await this.consumer.start();
    // kafkajs drops commits made before its runner is up, so the start positions are committed
    // here, after run() resolved: from then on the group has a position that survives restarts.
    for (const [partition, offset] of this.startCommits) await this.consumer.commit(partition, offset);
    this.startCommits.clear();
  }

  /** Stops handing out messages, waits for every running handler and its commit, leaves the group. */
  async drain(): Promise<void> {
    this.stopping = true;
    this.admission.wakeAll();
    this.slots.wakeAll();
    this.consumer.pauseAll();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    await Promise.allSettled([...this.progress.values()].map((p) => p.commitChain));
    await this.consumer.stop();
  }

  private onJoin(partitions: number[]): void {
    if (this.firstJoin && this.options.startAt) {
      for (const partition of partitions) {
        const offset = this.options.startAt.get(partition);
        if (offset === undefined) continue;
        this.consumer.seek(partition, offset);
        this.startCommits.set(partition, offset);
      }
    }
    this.firstJoin = false;
    const owned = new Set(partitions);
    for (const [partition, progress] of this.progress) {
      if (owned.has(partition)) {
        // Commits made while kafkajs was restarting were dropped; send the watermark again.
        progress.committed = -1;
        this.commit(partition, progress);
      } else {
        // Another member owns it now and starts from the last commit; stop committing for it.
        progress.revoked = true;
        this.progress.delete(partition);
      }
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const partition = batch.partition;
    let progress = this.progress.get(partition);
    if (!progress) {
      progress = new PartitionProgress();
      this.progress.set(partition, progress);
    }
    let heartbeatFailed = false;
    const giveUp = () => this.stopping || heartbeatFailed || !isRunning() || isStale() || progress.revoked;
    const beat = setInterval(() => {
      heartbeat().catch(() => {
        // Usually a rebalance: stop handing out, let kafkajs rejoin; the rest is fetched again.
        heartbeatFailed = true;
        this.admission.wakeAll();
      });
    }, this.options.session.heartbeatInterval);
    try {
      for (const message of batch.messages) {
        const offset = Number(message.offset);
        if (offset <= progress.dispatched) {
          // Fetched again after a rejoin while its first run is still going on here.
          resolveOffset(message.offset);
          continue;
        }
        if (!(await this.admission.acquire(giveUp))) break;
        progress.dispatch(offset);
        this.unsettled += 1;
        // Resolving only moves kafkajs' fetch position; commits are ours (autoCommit is off).
        resolveOffset(message.offset);
        const task = this.run(
          { topic: batch.topic, partition, offset: message.offset, message },
          progress,
          undefined,
        );
        task.finally(() => this.admission.release());
      }
    } finally {
      clearInterval(beat);
    }
  }

  /** Runs a record after the previous one with its key; resolves when its handler is done. */
  private run(
    record: ConsumedRecord,
    progress: PartitionProgress,
    attempt: number | undefined,
  ): Promise<void> {
    const key = record.message.key?.toString();
    const previous = key === undefined ? undefined : progress.chains.get(key);
    const task = (async () => {
      if (previous) await previous;
      // During a drain an unstarted message stays uncommitted: the next consumer gets it.
      if (!(await this.slots.acquire(() => this.stopping))) return;
      try {
        await this.runOnce(record, progress, attempt);
      } catch (error) {
        this.options.logger.error(
          { err: error, topic: record.topic, offset: record.offset },
          'kafka: delivery failed',
        );
      } finally {
        this.slots.release();
      }
    })();
    if (key !== undefined) {
      progress.chains.set(key, task);
      task.finally(() => {
        if (progress.chains.get(key) === task) progress.chains.delete(key);
      });
    }
    this.running.add(task);
    task.finally(() => this.running.delete(task));
    return task;
  }

  private async runOnce(
    record: ConsumedRecord,
    progress: PartitionProgress,
    attempt: number | undefined,
  ): Promise<void> {
    let decided = false;
    const offset = Number(record.offset);
    const control: RecordControl = {
      settle: () => {
        if (decided) return Promise.reject(new Error('kafka: this delivery is already settled'));
        decided = true;
        this.unsettled -= 1;
        if (!progress.settle(offset)) return Promise.resolve();
        return this.commit(record.partition, progress);
      },
      again: (delayMs, nextAttempt) => {
        if (decided) throw new Error('kafka: this delivery is already settled');
        decided = true;
        this.later(record, progress, delayMs, nextAttempt);
      },
    };
    try {
      await this.options.process(record, attempt, control);
    } catch (error) {
      this.options.logger.error(
        { err: error, topic: record.topic, offset: record.offset },
        'message handler threw',
      );
    }
    if (!decided) {
      // The outcome itself failed (the broker or a store was down): hold the offset and try again.
      decided = true;
      this.options.logger.warn(
        { topic: record.topic, partition: record.partition, offset: record.offset },
        'delivery left unsettled; running it again in 1s',
      );
      this.later(record, progress, 1_000, attempt);
    }
  }

  private later(
    record: ConsumedRecord,
    progress: PartitionProgress,
    delayMs: number,
    attempt: number | undefined,
  ): void {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (this.stopping || progress.revoked) {
          this.unsettled -= 1;
          return;
        }
        this.run(record, progress, attempt);
      },
      Math.max(0, delayMs),
    );
    this.timers.add(timer);
  }

  /** Commits the partition's watermark; serial per partition so a lower offset never lands last. */
  private commit(partition: number, progress: PartitionProgress): Promise<void> {
    progress.commitChain = progress.commitChain.then(async () => {
      const target = progress.watermark;
      if (progress.revoked || target < 0 || target === progress.committed) return;
      if (await this.consumer.commit(partition, target + 1)) progress.committed = target;
    });
    return progress.commitChain;
  }
}
