/**
 * Kafka keeps one committed offset per partition, not an ack per message. With several handlers
 * running on one partition, offset n + 1 is committed only once every message at or below n is
 * settled (a per-partition watermark). A crash therefore redelivers every unsettled message and
 * possibly some settled ones after it: at-least-once, never lost.
 *
 * Commits are coalesced: per partition at most one is in flight, and when it lands it is
 * followed by one for the latest watermark if that moved meanwhile. However many messages settle
 * during a round trip, they cost one more commit, and a lower offset never lands last.
 */

/** Per-partition progress: what was handed out, what is settled, what is committed. */
export class PartitionProgress {
  /** Highest offset handed to a handler. */
  dispatched = -1;
  /** Highest offset below which every handed-out message is settled. */
  watermark = -1;
  committed = -1;
  revoked = false;
  readonly open: number[] = [];
  readonly settled = new Set<number>();
  /** The runs of this partition waiting per message key (see KeyedScheduler). */
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

/** Commits `offset` (the next offset to read) for a partition; false if the commit failed. */
export type CommitOffset = (partition: number, offset: number) => Promise<boolean>;

export class OffsetCommitter {
  readonly #partitions = new Map<number, PartitionProgress>();

  constructor(private readonly commitOffset: CommitOffset) {}

  /** The partition's progress, created at its first batch. */
  partition(partition: number): PartitionProgress {
    let progress = this.#partitions.get(partition);
    if (!progress) {
      progress = new PartitionProgress();
      this.#partitions.set(partition, progress);
    }
    return progress;
  }

  /** Per owned partition, the next offset not handed out yet. */
  positions(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [partition, progress] of this.#partitions) {
      if (progress.dispatched >= 0) out.set(partition, progress.dispatched + 1);
    }
    return out;
  }

  /** The message at `offset` is done: moves the watermark and requests a commit, not awaited. */
  settled(partition: number, progress: PartitionProgress, offset: number): void {
    if (progress.settle(offset)) void this.commit(partition, progress);
  }

  /**
   * After a join: partitions still owned get their watermark committed again (commits made
   * while kafkajs was restarting were dropped); the others now belong to another member, which
   * starts from the last commit, so this one stops committing for them.
   */
  assigned(partitions: readonly number[]): void {
    const owned = new Set(partitions);
    for (const [partition, progress] of this.#partitions) {
      if (owned.has(partition)) {
        progress.committed = -1;
        void this.commit(partition, progress);
      } else {
        progress.revoked = true;
        this.#partitions.delete(partition);
      }
    }
  }

  /** Requests a commit of every owned partition's watermark (timer, rebalance). */
  commitAll(): void {
    for (const [partition, progress] of this.#partitions) void this.commit(partition, progress);
  }

  /** At drain: resolves once what is settled is committed, or a fresh attempt failed. */
  async final(): Promise<void> {
    await Promise.all(
      [...this.#partitions].map(async ([partition, progress]) => {
        // The first wait may be a loop that was already failing (its commit is not retried);
        // the second is then a fresh attempt at the final watermark.
        await this.commit(partition, progress);
        await this.commit(partition, progress);
      }),
    );
  }

  /**
   * Commits the partition's watermark unless a commit is already in flight, in which case that
   * one follows up with the latest watermark when it lands. Resolves when the committed offset
   * caught up or a commit failed (commitAll() on a timer tries again); never rejects.
   */
  commit(partition: number, progress: PartitionProgress): Promise<void> {
    if (progress.committing) return progress.committing;
    if (progress.revoked || progress.watermark <= progress.committed) return Promise.resolve();
    const loop = (async () => {
      try {
        while (!progress.revoked && progress.watermark > progress.committed) {
          const target = progress.watermark;
          if (!(await this.commitOffset(partition, target + 1))) return;
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
