import { AlreadySettledError, type Logger, type SettleOutcome, Slots } from '@polyqueue/core';
import type { EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { KeyedScheduler } from './keyed-scheduler';
import { OffsetCommitter, type PartitionProgress } from './offset-committer';
import { type SessionSettings, SupervisedConsumer } from './supervised-consumer';

/**
 * Runs handlers for the messages of one topic in one consumer group, `concurrency` at a time,
 * and commits an offset only after the handler's outcome.
 *
 * This file is the glue between kafkajs' batches and two parts of their own: the offsets
 * (offset-committer.ts: a per-partition watermark, commits coalesced) and the scheduling
 * (keyed-scheduler.ts: same key in offset order, different keys in parallel).
 *
 * Settling is local and immediate: ack() does not wait for a commit (a commit is a round trip to
 * the group coordinator; waiting for one per message held the handler's slot and capped a
 * partition at one message per round trip). A commit goes out when the watermark moves, at the
 * end of each batch, on a short timer (which also retries a failed one), when the group starts
 * rebalancing (while this member's generation is still accepted) and at drain, which resolves
 * only after the final commit of what is settled. So a crash (SIGKILL, not a drain) also
 * redelivers settled messages whose commit had not landed yet: at-least-once, and the runtime's
 * idempotency keys make those redeliveries no-ops.
 *
 * Kafka pushes a batch per partition rather than answering "fetch N", so core's pull loop does
 * not fit here; what the batch loop shares with it is the admission: it hands a message out and
 * moves on (so one slow job does not stop fetching), taking a slot of core's Slots, and waits
 * only when every slot is busy, heartbeating meanwhile.
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
  /** Handler slots and per-key order; taken after a same-key predecessor finished. */
  private readonly scheduler: KeyedScheduler<Outcome>;
  private readonly offsets: OffsetCommitter;
  private commitTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private firstJoin = true;
  private readonly startCommits = new Map<number, number>();
  /** Messages handed out and not settled yet (QueueStats.inFlight for this process). */
  unsettled = 0;

  constructor(private readonly options: PartitionWorkerOptions) {
    this.admission = new Slots(Math.max(1, options.concurrency));
    this.scheduler = new KeyedScheduler<Outcome>({
      concurrency: options.concurrency,
      start: (outcome) => this.options.process(outcome.record, outcome.attempt, outcome),
      failed: (outcome, error) =>
        this.options.logger.error(
          { err: error, topic: outcome.record.topic, offset: outcome.record.offset },
          'message handler threw',
        ),
      ended: (outcome, ran) => this.ended(outcome, ran),
    });
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
      onRebalance: () => this.offsets.commitAll(),
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    });
    this.offsets = new OffsetCommitter((partition, offset) => this.consumer.commit(partition, offset));
  }

  /** Per owned partition, the next offset this worker has not handed out yet. */
  positions(): Map<number, number> {
    return this.offsets.positions();
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
    if (!this.stopping) this.commitTimer = setInterval(() => this.offsets.commitAll(), COMMIT_INTERVAL_MS);
  }

  /**
   * Stops handing out messages, waits for every running handler, commits what is settled, then
   * leaves the group: a clean stop redelivers only what never settled.
   */
  async drain(): Promise<void> {
    this.stopping = true;
    this.admission.wakeAll();
    this.scheduler.stop();
    this.consumer.pauseAll();
    await this.scheduler.idle();
    clearInterval(this.commitTimer);
    await this.offsets.final();
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
    this.offsets.assigned(partitions);
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const partition = batch.partition;
    const progress = this.offsets.partition(partition);
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
        this.offsets.commitAll();
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
        this.run(
          { topic: batch.topic, partition, offset: message.offset, message },
          progress,
          undefined,
          true,
        );
      }
    } finally {
      clearInterval(beat);
      // Whatever settled while the batch was handed out; a no-op when a commit is in flight.
      void this.offsets.commit(partition, progress);
    }
  }

  /** `admitted`: the record holds an admission slot of the batch loop, released when it ends. */
  private run(
    record: ConsumedRecord,
    progress: PartitionProgress,
    attempt: number | undefined,
    admitted: boolean,
  ): void {
    void this.scheduler.run(
      new Outcome(this, record, progress, attempt, admitted),
      record.message.key?.toString(),
      progress.chains,
    );
  }

  /** A handed-out record is done here: it ran, or was given up during a drain (ran false). */
  private ended(outcome: Outcome, ran: boolean): void {
    if (ran && !outcome.decided) {
      // The outcome itself failed (the broker or a store was down): hold the offset, try again.
      outcome.decided = true;
      const { record, progress, attempt } = outcome;
      this.options.logger.warn(
        { topic: record.topic, partition: record.partition, offset: record.offset },
        'delivery left unsettled; running it again in 1s',
      );
      this.later(record, progress, 1_000, attempt);
    }
    if (outcome.admitted) this.admission.release();
  }

  /** @internal Outcome.settle(): the record is done; moves the watermark, requests a commit. */
  settled(record: ConsumedRecord, progress: PartitionProgress): void {
    this.unsettled -= 1;
    this.offsets.settled(record.partition, progress, Number(record.offset));
  }

  /** @internal Runs the record again here after delayMs, holding its offset meanwhile. */
  later(
    record: ConsumedRecord,
    progress: PartitionProgress,
    delayMs: number,
    attempt: number | undefined,
  ): void {
    this.scheduler.defer(delayMs, () => {
      if (this.stopping || progress.revoked) {
        this.unsettled -= 1;
        return;
      }
      this.run(record, progress, attempt, false);
    });
  }
}
