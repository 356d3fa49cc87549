import { describe, expect, it } from 'vitest';
import { OffsetCommitter, PartitionProgress } from '../src/offset-committer';

/** A commit function whose calls the test answers one by one. */
function manualCommits() {
  const calls: Array<{ partition: number; offset: number; answer: (ok: boolean) => void }> = [];
  let onCall: (() => void) | undefined;
  return {
    calls,
    commit: (partition: number, offset: number) =>
      new Promise<boolean>((resolve) => {
        calls.push({ partition, offset, answer: resolve });
        onCall?.();
      }),
    /** Resolves once there have been n calls. */
    called: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (calls.length >= n) resolve();
          else onCall = check;
        };
        check();
      }),
  };
}

describe('PartitionProgress', () => {
  it('moves the watermark only over offsets that are all settled', () => {
    const p = new PartitionProgress();
    for (const offset of [10, 11, 12, 13]) p.dispatch(offset);
    expect(p.settle(12)).toBe(false);
    expect(p.watermark).toBe(-1);
    expect(p.settle(11)).toBe(false);
    expect(p.settle(10)).toBe(true);
    expect(p.watermark).toBe(12);
    expect(p.settle(13)).toBe(true);
    expect(p.watermark).toBe(13);
    expect(p.open).toEqual([]);
    expect(p.settled.size).toBe(0);
  });
});

describe('OffsetCommitter', () => {
  it('commits the next offset after the watermark, one commit in flight per partition, then the latest', async () => {
    const c = manualCommits();
    const committer = new OffsetCommitter(c.commit);
    const p = committer.partition(0);
    for (const offset of [0, 1, 2, 3]) p.dispatch(offset);
    committer.settled(0, p, 0);
    await c.called(1);
    expect(c.calls[0]).toMatchObject({ partition: 0, offset: 1 });
    // Settled while that commit is in flight: no second commit until it lands.
    committer.settled(0, p, 1);
    committer.settled(0, p, 2);
    committer.commitAll();
    expect(c.calls).toHaveLength(1);
    c.calls[0]!.answer(true);
    await c.called(2);
    expect(c.calls[1]).toMatchObject({ partition: 0, offset: 3 });
    c.calls[1]!.answer(true);
    await p.committing;
    expect(p.committed).toBe(2);
    expect(c.calls).toHaveLength(2);
  });

  it('stops after a failed commit and tries again on commitAll()', async () => {
    const c = manualCommits();
    const committer = new OffsetCommitter(c.commit);
    const p = committer.partition(3);
    p.dispatch(7);
    committer.settled(3, p, 7);
    await c.called(1);
    c.calls[0]!.answer(false);
    await p.committing;
    expect(p.committed).toBe(-1);
    committer.commitAll();
    await c.called(2);
    expect(c.calls[1]).toMatchObject({ partition: 3, offset: 8 });
    c.calls[1]!.answer(true);
    await p.committing;
    expect(p.committed).toBe(7);
  });

  it('after a join, commits owned partitions again and forgets revoked ones', async () => {
    const c = manualCommits();
    const committer = new OffsetCommitter(c.commit);
    for (const partition of [0, 1]) {
      const p = committer.partition(partition);
      p.dispatch(5);
      p.settle(5);
      p.committed = 5;
    }
    const revoked = committer.partition(1);
    committer.assigned([0]);
    await c.called(1);
    expect(c.calls.map((call) => [call.partition, call.offset])).toEqual([[0, 6]]);
    expect(revoked.revoked).toBe(true);
    expect([...committer.positions().keys()]).toEqual([0]);
    c.calls[0]!.answer(true);
    await committer.final();
    expect(c.calls).toHaveLength(1);
  });

  it('reports positions as the next offset not handed out', () => {
    const committer = new OffsetCommitter(async () => true);
    committer.partition(0).dispatch(41);
    committer.partition(1);
    expect(committer.positions()).toEqual(new Map([[0, 42]]));
  });
});
