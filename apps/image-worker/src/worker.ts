import { resolve } from 'node:path';
import { runWorkerProcess } from '@polyqueue/app-runtime';
import { queueForJobType } from '@polyqueue/jobs';
import type { ImageWorkerConfig } from './config';
import { createImageHandler } from './handler';
import { configureSharp } from './sharp-settings';

/** The image worker process: consumes the `image` queue until SIGTERM / SIGINT, then drains. */
export async function runImageWorker(
  config: ImageWorkerConfig,
  env: Record<string, string | undefined>,
): Promise<void> {
  await runWorkerProcess({
    name: 'image-worker',
    queue: queueForJobType.process_image,
    env,
    config,
    async setup({ logger }) {
      const sharpSettings = configureSharp({ concurrency: config.SHARP_CONCURRENCY });
      logger.info(
        {
          storageRoot: resolve(config.STORAGE_ROOT),
          sharpConcurrency: sharpSettings.concurrency,
          uvThreadpoolSize: env.UV_THREADPOOL_SIZE,
          limitInputPixels: config.IMAGE_LIMIT_INPUT_PIXELS,
          timeoutMs: config.IMAGE_JOB_TIMEOUT_MS,
        },
        'image worker configured',
      );
      const processImage = createImageHandler({
        storageRoot: config.STORAGE_ROOT,
        limitInputPixels: config.IMAGE_LIMIT_INPUT_PIXELS,
        maxInputBytes: config.IMAGE_MAX_INPUT_BYTES,
        timeoutMs: config.IMAGE_JOB_TIMEOUT_MS,
      });
      return { handlers: { process_image: processImage } };
    },
  });
}
