import { createHash } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PathEscapeError, resolveExistingInStorage, resolveInStorage } from '@polyqueue/app-runtime';
import {
  defineJob,
  JobCancelledError,
  type JobContext,
  type JobHandler,
  NonRetryableError,
  RetryableError,
} from '@polyqueue/core';
import { acceptedJobSchemas, DEFAULT_IMAGE_VARIANTS, type ProcessImagePayload } from '@polyqueue/jobs';
import sharp from 'sharp';
import { makeVariants } from './variants';

export interface ImageHandlerOptions {
  storageRoot: string;
  limitInputPixels: number;
  maxInputBytes: number;
  timeoutMs: number;
}

/** What a process_image job stores as its result (GET /v1/jobs/:id adds each variant's URL). */
export interface ImageJobResult {
  source: { path: string; width: number; height: number; format: string; bytes: number };
  variants: { name: string; path: string; width: number; height: number; format: string; bytes: number }[];
}

/**
 * process_image: checks the source before decoding anything, then makes the variants into
 * <storage root>/variants/<job id>/. Each refusal is a NonRetryableError (dead-lettered at
 * once, its message the reason):
 *
 * - a path outside the storage root, lexically or through a symlink;
 * - a missing file, a directory, or a file over IMAGE_MAX_INPUT_BYTES;
 * - bytes sharp cannot read as an image;
 * - width x height over IMAGE_LIMIT_INPUT_PIXELS, read from the header only, so a
 *   decompression bomb (a small file declaring 20000x20000) is never decoded;
 * - processing longer than IMAGE_JOB_TIMEOUT_MS.
 *
 * After each variant is written it reports context.progress (`done k of n variants`).
 *
 * I/O errors other than a missing file (EMFILE, ENOSPC ...) are thrown as they are: the
 * runtime retries them with backoff.
 */
export function createImageHandler(
  options: ImageHandlerOptions,
): JobHandler<ProcessImagePayload, ImageJobResult> {
  const { storageRoot, limitInputPixels, maxInputBytes, timeoutMs } = options;
  return defineJob(acceptedJobSchemas.process_image, async (payload, context) => {
    const file = await locate(storageRoot, payload.path);
    const size = (await stat(file)).size;
    if (size > maxInputBytes) {
      throw new NonRetryableError(
        `${payload.path} is ${size} bytes, over IMAGE_MAX_INPUT_BYTES=${maxInputBytes}`,
      );
    }
    const deadline = startDeadline(timeoutMs, context);
    try {
      const meta = await deadline.race(readHeader(file, payload.path));
      const pixels = meta.width * meta.height * meta.pages;
      if (pixels > limitInputPixels) {
        throw new NonRetryableError(
          `${payload.path} declares ${meta.width}x${meta.height}${meta.pages > 1 ? `x${meta.pages} pages` : ''} = ${pixels} pixels, ` +
            `over IMAGE_LIMIT_INPUT_PIXELS=${limitInputPixels}; refused before decoding (a decompression bomb, or too large)`,
        );
      }
      const folder = `variants/${safeSegment(context.envelope.id)}`;
      const outputDir = resolveInStorage(storageRoot, folder);
      const variants = payload.variants ?? DEFAULT_IMAGE_VARIANTS;
      const made = await deadline
        .race(
          makeVariants(file, variants, {
            outputDir,
            limitInputPixels,
            timeoutMs,
            signal: context.signal,
            // GET /v1/jobs/:id shows how many are done; the last report is 100.
            onVariantDone: (_made, done, total) =>
              void context.progress((done * 100) / total, `done ${done} of ${total} variants`),
          }),
        )
        .catch(async (error: unknown) => {
          await rm(outputDir, { recursive: true, force: true }).catch(() => {});
          throw classify(error, payload.path, timeoutMs);
        });
      return {
        source: {
          path: payload.path,
          width: meta.width,
          height: meta.height,
          format: meta.format,
          bytes: size,
        },
        variants: made.map((v) => ({
          name: v.name,
          path: `${folder}/${basename(v.file!)}`,
          width: v.width,
          height: v.height,
          format: v.format,
          bytes: v.bytes,
        })),
      };
    } finally {
      deadline.clear();
    }
  });
}

async function locate(root: string, path: string): Promise<string> {
  let file: string;
  try {
    file = await resolveExistingInStorage(root, path);
  } catch (error) {
    if (error instanceof PathEscapeError) throw new NonRetryableError(error.message);
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NonRetryableError(`${path}: no such file under the storage root`);
    }
    throw error;
  }
  if (!(await stat(file)).isFile()) throw new NonRetryableError(`${path} is not a file`);
  return file;
}

/** Width, height and page count from the file's header; libvips decodes no pixels here. */
async function readHeader(
  file: string,
  path: string,
): Promise<{ width: number; height: number; pages: number; format: string }> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new NonRetryableError(`${path} is not an image sharp can read: ${(error as Error).message}`);
  }
  if (!meta.width || !meta.height || !meta.format)
    throw new NonRetryableError(`${path}: the image declares no dimensions`);
  return { width: meta.width, height: meta.height, pages: meta.pages ?? 1, format: meta.format };
}

function classify(error: unknown, path: string, timeoutMs: number): Error {
  if (error instanceof NonRetryableError || error instanceof RetryableError) return error;
  if (error instanceof JobCancelledError) return error;
  const message = (error as Error)?.message ?? String(error);
  if ((error as NodeJS.ErrnoException)?.code && (error as NodeJS.ErrnoException).code !== 'ENOENT')
    return error as Error;
  if (/^timeout/i.test(message))
    return new NonRetryableError(`${path}: processing took longer than IMAGE_JOB_TIMEOUT_MS=${timeoutMs}`);
  return new NonRetryableError(`${path} could not be processed: ${message}`);
}

/**
 * The job's time budget: race() rejects with a NonRetryableError once it runs out, with the
 * JobCancelledError when the job is cancelled (DELETE /v1/jobs/:id), and with a RetryableError
 * when the worker is shutting down (the job runs again elsewhere).
 */
function startDeadline(timeoutMs: number, context: JobContext) {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NonRetryableError(`processing took longer than IMAGE_JOB_TIMEOUT_MS=${timeoutMs}`)),
      timeoutMs,
    );
    onAbort = () =>
      reject(
        context.signal.reason instanceof JobCancelledError
          ? context.signal.reason
          : new RetryableError('worker shutting down before the image was done'),
      );
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener('abort', onAbort, { once: true });
  });
  expired.catch(() => {});
  return {
    race<T>(work: Promise<T>): Promise<T> {
      return Promise.race([work, expired]);
    },
    clear() {
      clearTimeout(timer);
      if (onAbort) context.signal.removeEventListener('abort', onAbort);
    },
  };
}

/** A job id as one safe folder name: kept when plain, else hashed (foreign ids can be anything). */
export function safeSegment(id: string): string {
  return /^[\w-][\w.-]{0,127}$/.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 32);
}
