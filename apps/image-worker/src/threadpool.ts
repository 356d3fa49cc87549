/**
 * Imported first by main.ts: libuv sizes its thread pool from UV_THREADPOOL_SIZE when the pool
 * is first used, and sharp runs every pipeline on that pool. When unset, it is sized to the
 * worker's concurrency plus two for file I/O. But node's ESM loader reads module files on the
 * pool before any of our code runs (an ESM entry setting UV_THREADPOOL_SIZE=8 still gets the 4
 * default threads on Node 20, compiled or through tsx), so this takes effect only where nothing
 * started the pool yet; `npm start` and compose pass the size in the environment, which works.
 */
if (!process.env.UV_THREADPOOL_SIZE) {
  const concurrency = Number.parseInt(process.env.WORKER_CONCURRENCY ?? '', 10);
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, (Number.isFinite(concurrency) ? concurrency : 2) + 2));
}

export {};
