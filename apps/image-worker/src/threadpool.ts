/**
 * Imported first by main.ts: libuv sizes its thread pool from UV_THREADPOOL_SIZE when the pool
 * is first used, and sharp runs every pipeline on that pool. When unset, it is sized to the
 * worker's concurrency plus two for file I/O. A loader that touches the pool earlier (tsx's hooks
 * on some Node versions) fixes the size first, so `npm start` also passes it in the environment.
 */
if (!process.env.UV_THREADPOOL_SIZE) {
  const concurrency = Number.parseInt(process.env.WORKER_CONCURRENCY ?? '', 10);
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, (Number.isFinite(concurrency) ? concurrency : 2) + 2));
}

export {};
