import { AlreadySettledError, type Logger, type SettleOutcome } from '@polyqueue/core';
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
 * Settling is local and immediate: ack() does not wait for a commit (a commit is a round trip to
 * the group coordinator; waiting for one per message held the handler's slot and capped a
 * partition at one message per round trip). Commits are coalesced instead: per partition at most
 * one is in flight, and when it lands it is followed by one for the latest watermark if that
 * moved meanwhile. A commit also goes out at the end of each batch, on a short timer (which also
 * retries a failed one), when the group starts rebalancing (while this member's generation is
 * still accepted) and at drain, which resolves only after the final commit of what is settled.
 * So a crash (SIGKILL, not a drain) also redelivers settled messages whose commit had not landed
 * yet: at-least-once, and the runtime's idempotency keys make those redeliveries no-ops.
 *
 * Messages with the same key run one after another, in offset order (same key -> same
 * partition); messages with different keys or no key run in parallel. The batch loop hands a
 * message out and moves on (so one slow job does not stop fetching); it waits only when every
 * slot is busy, heartbeating meanwhile.
 */

export interface RecordControl {
  /**
   * Marks the message done, locally: the watermark moves and a commit is requested, but not
   * awaited (a crash before it lands redelivers the message). Throws AlreadySettledError if
   * the record is already settled (or was given up on: see finish()).
   */
  settle(outcome: SettleOutcome): void;
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
  /** The commit loop in flight, if any; it runs until the committed offset caught up. */
  committing: Promise<void> | undefined;

  dispatch(offset: number): void {
    this.dispatched = offset;
    this.open.push(offset);
  }

  /** Returns true when the watermark moved. */
  settle(offset: number): boolean {
    if (offset === this.open[0] && this.settled.size === 0) {
      // The usual case, the oldest open message settling first: no set to go through.
      this.open.shift();
      this.watermark = offset;
      return true;
    }
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

  /** Takes a slot if one is free, without a trip through the microtask queue. */
  tryAcquire(): boolean {
    if (this.used >= this.limit) return false;
    this.used += 1;
    return true;
  }

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

/**
 * One run of a record: its RecordControl, and what the worker needs when the run ends. A class
 * rather than an object of closures, as one is made per message.
 */
class Outcome implements RecordControl {
  decided = false;

  constructor(
    private readonly worker: PartitionWorker,
    readonly record: ConsumedRecord,
    readonly progress: PartitionProgress,
    readonly attempt: number | undefined,
    /** Holds an admission slot of the batch loop, given back when the run ends. */
    readonly admitted: boolean,
  ) {}

  settle(outcome: SettleOutcome): void {
    this.decide(outcome);
    this.worker.settled(this.record, this.progress);
  }

  again(delayMs: number, attempt: number): void {
    this.decide('retry');
    this.worker.later(this.record, this.progress, delayMs, attempt);
  }

  private decide(outcome: SettleOutcome): void {
    if (this.decided) {
      const { topic, partition, offset } = this.record;
      throw new AlreadySettledError(`${topic}/${partition}/${offset}`, outcome);
    }
    this.decided = true;
  }
}

/**
 * How often owned partitions are checked for settled offsets not committed yet. Commits normally
 * go out as soon as messages settle; this catches the ones that failed (a broker restart).
 */
const COMMIT_INTERVAL_MS = 500;

export class PartitionWorker {
  private readonly consumer: SupervisedConsumer;
  /** Messages the batch loop may have outstanding (running or waiting for their key). */
  private readonly admission: Slots;
  /** Handlers running at once; taken after a same-key predecessor finished, so waiting holds none. */
  private readonly slots: Slots;
  private readonly progress = new Map<number, PartitionProgress>();
  /** Records handed to run() and not finished (waiting for their key, a slot, or running). */
  private active = 0;
  private idle: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private commitTimer: NodeJS.Timeout | undefined;
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
      // The group is about to reassign partitions: commit what is settled while it still counts.
      onRebalance: () => this.commitAll(),
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
    if (!this.stopping) this.commitTimer = setInterval(() => this.commitAll(), COMMIT_INTERVAL_MS);
  }

  /**
   * Stops handing out messages, waits for every running handler, commits what is settled, then
   * leaves the group: a clean stop redelivers only what never settled.
   */
  async drain(): Promise<void> {
    this.stopping = true;
    this.admission.wakeAll();
    this.slots.wakeAll();
    this.consumer.pauseAll();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    while (this.active > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    clearInterval(this.commitTimer);
    await Promise.all(
      [...this.progress].map(async ([partition, progress]) => {
        // The first wait may be a loop that was already failing (its commit is not retried);
        // the second is then a fresh attempt at the final watermark.
        await this.commit(partition, progress);
        await this.commit(partition, progress);
      }),
    );
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
        void this.commit(partition, progress);
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
    // Checked before each message. isStale() (a seek since the fetch: only an await lets one
    // happen) costs a lookup in kafkajs, so it is asked after waiting, not for every message.
    const stopped = () => this.stopping || heartbeatFailed || !isRunning() || progress.revoked;
    const giveUp = () => stopped() || isStale();
    if (isStale()) return;
    // kafkajs heartbeats between batches by itself; this timer covers a loop waiting for a slot.
    const beat = setInterval(() => {
      heartbeat().catch(() => {
        // Usually a rebalance: stop handing out, let kafkajs rejoin; the rest is fetched again.
        heartbeatFailed = true;
        this.admission.wakeAll();
        this.commitAll();
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
        // A free slot is taken synchronously: the loop awaits only when every slot is busy.
        if (stopped()) break;
        if (!this.admission.tryAcquire() && !(await this.admission.acquire(giveUp))) break;
        progress.dispatch(offset);
        this.unsettled += 1;
        // Resolving only moves kafkajs' fetch position; commits are ours (autoCommit is off).
        resolveOffset(message.offset);
        void this.run(
          { topic: batch.topic, partition, offset: message.offset, message },
          progress,
          undefined,
          true,
        );
      }
    } finally {
      clearInterval(beat);
      // Whatever settled while the batch was handed out; a no-op when a commit is in flight.
      void this.commit(partition, progress);
    }
  }

  /**
   * Runs a record after the previous one with its key; resolves when its handler is done (never
   * rejects). `admitted`: it holds an admission slot of the batch loop, released at the end.
   */
  private run(
    record: ConsumedRecord,
    progress: PartitionProgress,
    attempt: number | undefined,
    admitted: boolean,
  ): Promise<void> {
    const key = record.message.key?.toString();
    const previous = key === undefined ? undefined : progress.chains.get(key);
    this.active += 1;
    // The usual case, nothing to wait for, starts at once; the rest waits in execute().
    const task =
      previous === undefined && !this.stopping && this.slots.tryAcquire()
        ? this.begin(new Outcome(this, record, progress, attempt, admitted))
        : this.execute(record, progress, attempt, previous, admitted);
    if (key !== undefined) {
      progress.chains.set(key, task);
      task.finally(() => {
        if (progress.chains.get(key) === task) progress.chains.delete(key);
      });
    }
    return task;
  }

  /**
   * Waits for the record's turn (its key's predecessor, then a handler slot) and starts it; for
   * records that had to wait. Resolves when the run ends; never rejects.
   */
  private async execute(
    record: ConsumedRecord,
    progress: PartitionProgress,
    attempt: number | undefined,
    previous: Promise<void> | undefined,
    admitted: boolean,
  ): Promise<void> {
    if (previous) await previous;
    // During a drain an unstarted message stays uncommitted: the next consumer gets it.
    if (!this.stopping && (this.slots.tryAcquire() || (await this.slots.acquire(() => this.stopping)))) {
      return this.begin(new Outcome(this, record, progress, attempt, admitted));
    }
    this.ended(admitted);
  }

  /**
   * Runs a record that holds a handler slot. Not async, and no await: every message goes
   * through here, and an async frame per message showed in allocation profiles.
   */
  private begin(outcome: Outcome): Promise<void> {
    let running: Promise<void>;
    try {
      running = this.options.process(outcome.record, outcome.attempt, outcome);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      () => this.finish(outcome),
      (error) => {
        this.options.logger.error(
          { err: error, topic: outcome.record.topic, offset: outcome.record.offset },
          'message handler threw',
        );
        this.finish(outcome);
      },
    );
  }

  private finish(outcome: Outcome): void {
    this.slots.release();
    if (!outcome.decided) {
      // The outcome itself failed (the broker or a store was down): hold the offset, try again.
      outcome.decided = true;
      const { record, progress, attempt } = outcome;
      this.options.logger.warn(
        { topic: record.topic, partition: record.partition, offset: record.offset },
        'delivery left unsettled; running it again in 1s',
      );
      this.later(record, progress, 1_000, attempt);
    }
    this.ended(outcome.admitted);
  }

  /** A handed-out record is done here (run, or given up during a drain). */
  private ended(admitted: boolean): void {
    if (admitted) this.admission.release();
    this.active -= 1;
    if (this.active === 0) for (const wake of this.idle.splice(0)) wake();
  }

  /** @internal Outcome.settle(): the record is done; moves the watermark, requests a commit. */
  settled(record: ConsumedRecord, progress: PartitionProgress): void {
    this.unsettled -= 1;
    if (progress.settle(Number(record.offset))) void this.commit(record.partition, progress);
  }

  /** @internal Runs the record again here after delayMs, holding its offset meanwhile. */
  later(
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
        void this.run(record, progress, attempt, false);
      },
      Math.max(0, delayMs),
    );
    this.timers.add(timer);
  }

  /** Requests a commit of every owned partition's watermark (timer, rebalance). */
  private commitAll(): void {
    for (const [partition, progress] of this.progress) void this.commit(partition, progress);
  }

  /**
   * Commits the partition's watermark unless a commit is already in flight, in which case that
   * one follows up with the latest watermark when it lands. One at a time per partition, so a
   * lower offset never lands last, and however many messages settle during a round trip they
   * cost one more commit. Resolves when the committed offset caught up or a commit failed (the
   * timer tries again); never rejects.
   */
  private commit(partition: number, progress: PartitionProgress): Promise<void> {
    if (progress.committing) return progress.committing;
    if (progress.revoked || progress.watermark <= progress.committed) return Promise.resolve();
    const loop = (async () => {
      try {
        while (!progress.revoked && progress.watermark > progress.committed) {
          const target = progress.watermark;
          if (!(await this.consumer.commit(partition, target + 1))) return;
          progress.committed = target;
        }
      } finally {
        progress.committing = undefined;
      }
    })();
    // The loop always awaits its first commit, so its finally clears this only after it is set.
    progress.committing = loop;
    return loop;
  }
}
