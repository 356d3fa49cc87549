/**
 * Live worker processes (GET /v1/workers, the dashboard's Workers page): every worker writes a
 * heartbeat every HEARTBEAT_MS to the state store (STATE_URL), and one not heard of for
 * WORKER_EXPIRY_MS (three heartbeats) is gone: crashed, killed or cut off. Stores: a table in
 * the sqlite file, a Redis hash (per-field expiry emulated by the heartbeat's time), a MySQL
 * table, and MemoryWorkerRegistry below for one process.
 */
export interface WorkerHeartbeat {
  /** Unique per process: host, pid and a random part. */
  id: string;
  queue: string;
  host: string;
  pid: number;
  concurrency: number;
  inFlight: number;
  /** The worker app's package.json version. */
  version: string;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601, the writer's clock. */
  lastHeartbeat: string;
}

export const HEARTBEAT_MS = 5_000;
export const WORKER_EXPIRY_MS = 3 * HEARTBEAT_MS;

export interface WorkerRegistry {
  /** Records (or refreshes) a worker's heartbeat; also forgets workers expired long ago. */
  beat(heartbeat: WorkerHeartbeat): Promise<void>;
  /** Workers whose last heartbeat is within WORKER_EXPIRY_MS of `now`, by queue then id. */
  live(now?: number): Promise<WorkerHeartbeat[]>;
  /** A worker that stops cleanly leaves at once, not three heartbeats later. */
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Whether a heartbeat still counts at `now`. */
export function isLive(heartbeat: Pick<WorkerHeartbeat, 'lastHeartbeat'>, now: number): boolean {
  return now - Date.parse(heartbeat.lastHeartbeat) < WORKER_EXPIRY_MS;
}

/** By queue, then id: a stable order for tables. */
export function byQueueThenId(a: WorkerHeartbeat, b: WorkerHeartbeat): number {
  return a.queue.localeCompare(b.queue) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** WorkerRegistry in one process's memory: tests, and BROKER=memory with one process. */
export class MemoryWorkerRegistry implements WorkerRegistry {
  readonly #workers = new Map<string, WorkerHeartbeat>();

  async beat(heartbeat: WorkerHeartbeat): Promise<void> {
    this.#workers.set(heartbeat.id, { ...heartbeat });
  }

  async live(now = Date.now()): Promise<WorkerHeartbeat[]> {
    for (const [id, w] of this.#workers) if (!isLive(w, now)) this.#workers.delete(id);
    return [...this.#workers.values()].map((w) => ({ ...w })).sort(byQueueThenId);
  }

  async remove(id: string): Promise<void> {
    this.#workers.delete(id);
  }

  async close(): Promise<void> {}
}

/**
 * Beats now and every HEARTBEAT_MS until the returned stop(), which removes the worker. A failed
 * write is reported and retried at the next beat: the registry is for operators, never a reason
 * to stop working.
 */
export function startHeartbeat(
  registry: WorkerRegistry,
  read: () => Omit<WorkerHeartbeat, 'lastHeartbeat'>,
  onError: (error: unknown) => void,
): () => Promise<void> {
  const beat = () => registry.beat({ ...read(), lastHeartbeat: new Date().toISOString() }).catch(onError);
  void beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await registry.remove(read().id).catch(onError);
  };
}
