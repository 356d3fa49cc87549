import sharp from 'sharp';

/**
 * Process-wide sharp settings for a worker: libvips threads per image and no operation cache
 * (each job's image is new, so the cache would only hold memory and stale file handles).
 */
export function configureSharp(options: { concurrency: number }): { concurrency: number } {
  sharp.cache(false);
  if (options.concurrency > 0) sharp.concurrency(options.concurrency);
  return { concurrency: sharp.concurrency() };
}
