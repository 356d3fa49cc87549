import { randomUUID } from 'node:crypto';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageVariant } from '@polyqueue/jobs';
import sharp, { type FormatEnum, type Sharp } from 'sharp';

export interface MakeVariantsOptions {
  /** Where to write `<name>.<format>`; without it the variants are returned as buffers only. */
  outputDir?: string;
  /** sharp refuses to decode an input with more pixels than this. */
  limitInputPixels: number;
  /** libvips stops a pipeline that runs longer (rounded up to whole seconds; 0 = no limit). */
  timeoutMs?: number;
  /**
   * The job's signal (a cancel): checked before each variant starts and when each is done, which
   * then deletes what it wrote and rejects with the signal's reason. libvips cannot be
   * interrupted inside an encode, so a variant already encoding finishes first.
   */
  signal?: AbortSignal;
  /** Told as each variant is written (they finish in any order): done of total so far. */
  onVariantDone?: (variant: MadeVariant, done: number, total: number) => void;
}

export interface MadeVariant {
  name: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
  /** The written file, when outputDir was given. */
  file?: string;
  /** The encoded image, when no outputDir was given. */
  data?: Buffer;
}

/**
 * Resizes one image into every variant: decoded once, each variant a clone of the same input,
 * encoded in parallel. Orientation follows the EXIF tag; an image is never enlarged. Files are
 * written under a temporary name and renamed, so a reader never sees half a file.
 *
 * The image worker's handler calls this per job, and the benchmark calls it in a bare loop to
 * measure what the queue adds.
 */
export async function makeVariants(
  input: string | Buffer,
  variants: readonly ImageVariant[],
  options: MakeVariantsOptions,
): Promise<MadeVariant[]> {
  const source = sharp(input, { limitInputPixels: options.limitInputPixels, failOn: 'error' }).rotate();
  if (options.timeoutMs) source.timeout({ seconds: Math.max(1, Math.ceil(options.timeoutMs / 1000)) });
  if (options.outputDir) await mkdir(options.outputDir, { recursive: true });
  let done = 0;
  return Promise.all(
    variants.map(async (variant) => {
      const made = await makeOne(source.clone(), variant, options.outputDir, options.signal);
      done += 1;
      options.onVariantDone?.(made, done, variants.length);
      return made;
    }),
  );
}

async function makeOne(
  pipeline: Sharp,
  variant: ImageVariant,
  outputDir: string | undefined,
  signal: AbortSignal | undefined,
): Promise<MadeVariant> {
  signal?.throwIfAborted();
  const format = variant.format ?? 'webp';
  pipeline
    .resize({
      width: variant.width,
      height: variant.height,
      fit: variant.fit ?? (variant.height ? 'cover' : 'inside'),
      withoutEnlargement: true,
    })
    .toFormat(format as keyof FormatEnum, encoderOptions(format, variant.quality));
  if (!outputDir) {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    signal?.throwIfAborted();
    return { name: variant.name, width: info.width, height: info.height, format, bytes: info.size, data };
  }
  const file = join(outputDir, `${variant.name}.${format}`);
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    const info = await pipeline.toFile(temp);
    signal?.throwIfAborted();
    await rename(temp, file);
    return { name: variant.name, width: info.width, height: info.height, format, bytes: info.size, file };
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

function encoderOptions(format: string, quality: number | undefined): Record<string, unknown> {
  switch (format) {
    case 'jpeg':
      return { quality: quality ?? 82, mozjpeg: false };
    case 'png':
      return { compressionLevel: 6 };
    case 'avif':
      return { quality: quality ?? 50, effort: 4 };
    default:
      return { quality: quality ?? 80 };
  }
}
