/**
 * The queue's overhead on image work: thumbnails per second made by a bare sharp loop versus
 * the same handler behind the broker and the worker runtime, on the same images and at the
 * same concurrency. Run with `npm run bench -- --scenario images [--broker sqlite]`.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { createEnvelope } from '@polyqueue/core';
import { configureSharp, createImageHandler, makeVariants } from '@polyqueue/image-worker';
import type { ImageVariant } from '@polyqueue/jobs';
import sharp from 'sharp';
import { benchWorker } from './framework';
import { Countdown, perSecond } from './measure';

const THUMBNAIL: ImageVariant = { name: 'thumbnail', width: 256, height: 256, fit: 'cover', format: 'webp' };
const LIMIT_PIXELS = 100_000_000;

export interface ImageBenchOptions {
  env: Record<string, string | undefined>;
  images: number;
  concurrency: number;
}

/** Photo-like test JPEGs (noise, so the encoder has real work), written once per bench run. */
export async function makeTestImages(root: string, count: number): Promise<string[]> {
  mkdirSync(join(root, 'uploads'), { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = `uploads/bench-${i}.jpg`;
    await sharp({
      create: {
        width: 1600,
        height: 1200,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .jpeg({ quality: 85 })
      .toFile(join(root, path));
    paths.push(path);
  }
  return paths;
}

/** The baseline: makeVariants over the images, `concurrency` at a time, no queue. */
export async function rawSharpLoop(
  root: string,
  paths: readonly string[],
  concurrency: number,
): Promise<number> {
  const out = join(root, `raw-${Date.now()}`);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < paths.length) {
        const i = next++;
        await makeVariants(join(root, paths[i]!), [THUMBNAIL], {
          outputDir: join(out, String(i)),
          limitInputPixels: LIMIT_PIXELS,
        });
      }
    }),
  );
  return perSecond(paths.length, t0);
}

/** The same work as process_image jobs: publish, then the image worker's handler via the runtime. */
export async function queuedThumbnails(
  root: string,
  paths: readonly string[],
  options: ImageBenchOptions,
): Promise<number> {
  const broker = await createBrokerFromEnv(options.env);
  const queue = `img${Date.now().toString(36)}`;
  const countdown = new Countdown(paths.length);
  const controller = new AbortController();
  const worker = benchWorker(
    broker,
    queue,
    options.concurrency,
    {
      process_image: createImageHandler({
        storageRoot: root,
        limitInputPixels: LIMIT_PIXELS,
        maxInputBytes: 50 << 20,
        timeoutMs: 60_000,
      }),
    },
    (e) => {
      if (e.outcome === 'succeeded') countdown.tick();
      if (e.outcome === 'dead' || e.outcome === 'retrying')
        failed(new Error(`bench image job failed: ${e.error}`));
    },
  );
  let failed!: (error: Error) => void;
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  const t0 = performance.now();
  await broker.publish(
    queue,
    paths.map((path) => ({ envelope: createEnvelope('process_image', { path, variants: [THUMBNAIL] }) })),
  );
  const running = worker.run(controller.signal);
  try {
    await Promise.race([countdown.finished, failure]);
    return perSecond(paths.length, t0);
  } finally {
    controller.abort();
    await running;
    await broker.close();
  }
}

export function imageBenchRoot(): string {
  return mkdtempSync(join(tmpdir(), 'pq-bench-images-'));
}

export { configureSharp };
