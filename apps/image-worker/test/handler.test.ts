import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEnvelope,
  JobCancelledError,
  type JobContext,
  NonRetryableError,
  silentLogger,
} from '@polyqueue/core';
import type { ProcessImagePayload } from '@polyqueue/jobs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageHandler, type ImageHandlerOptions } from '../src/handler';
import { makeVariants } from '../src/variants';
import { makeJpeg, makePngBomb } from './images';

let root: string;
let outside: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-images-'));
  outside = await mkdtemp(join(tmpdir(), 'polyqueue-outside-'));
  await mkdir(join(root, 'in'), { recursive: true });
  await writeFile(join(root, 'in', 'photo.jpg'), await makeJpeg(1600, 1200));
  await writeFile(join(root, 'in', 'bomb.png'), makePngBomb());
  await writeFile(join(root, 'in', 'notes.txt'), 'not an image at all');
  await writeFile(join(outside, 'secret.jpg'), await makeJpeg(32, 32));
  await symlink(join(outside, 'secret.jpg'), join(root, 'in', 'link.jpg'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

function handler(overrides: Partial<ImageHandlerOptions> = {}) {
  return createImageHandler({
    storageRoot: root,
    limitInputPixels: 100_000_000,
    maxInputBytes: 50 * 1024 * 1024,
    timeoutMs: 30_000,
    ...overrides,
  });
}

function context(
  id = `job-${Math.random().toString(36).slice(2)}`,
  signal = new AbortController().signal,
  progress: [number, string | undefined][] = [],
): JobContext {
  return {
    envelope: createEnvelope('process_image', {}, { id }),
    attempt: 1,
    signal,
    extend: async () => {},
    progress: async (percent, message) => void progress.push([percent, message]),
    logger: silentLogger(),
  };
}

async function dead(
  payload: ProcessImagePayload,
  overrides: Partial<ImageHandlerOptions> = {},
): Promise<string> {
  const error = await handler(overrides)
    .handle(payload, context())
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(NonRetryableError);
  return (error as Error).message;
}

describe('process_image handler', () => {
  it('makes the default thumbnail and medium webp variants with the right dimensions', async () => {
    const ctx = context('job-default');
    const result = await handler().handle({ path: 'in/photo.jpg' }, ctx);
    expect(result.source).toMatchObject({ path: 'in/photo.jpg', width: 1600, height: 1200, format: 'jpeg' });
    expect(result.variants.map((v) => [v.name, v.width, v.height, v.format])).toEqual([
      ['thumbnail', 256, 256, 'webp'],
      ['medium', 1024, 768, 'webp'],
    ]);
    for (const variant of result.variants) {
      expect(variant.path).toBe(`variants/job-default/${variant.name}.webp`);
      const meta = await sharp(join(root, variant.path)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', variant.width, variant.height]);
    }
  });

  it('reports progress after each variant, ending at 100', async () => {
    const progress: [number, string | undefined][] = [];
    await handler().handle({ path: 'in/photo.jpg' }, context('job-progress', undefined, progress));
    expect(progress).toEqual([
      [50, 'done 1 of 2 variants'],
      [100, 'done 2 of 2 variants'],
    ]);
  });

  it('makes the variants a job names', async () => {
    const result = await handler().handle(
      {
        path: 'in/photo.jpg',
        variants: [{ name: 'small', width: 100, height: 50, fit: 'fill', format: 'png' }],
      },
      context(),
    );
    expect(result.variants).toMatchObject([{ name: 'small', width: 100, height: 50, format: 'png' }]);
  });

  it('refuses a decompression bomb from its header, before decoding', async () => {
    const reason = await dead({ path: 'in/bomb.png' });
    expect(reason).toMatch(/20000x20000 = 400000000 pixels, over IMAGE_LIMIT_INPUT_PIXELS=100000000/);
    expect(reason).toMatch(/decompression bomb/);
  });

  it('refuses paths that leave the storage root, lexically or by a symlink', async () => {
    expect(await dead({ path: '../etc/passwd' })).toMatch(/leaves the storage root/);
    expect(await dead({ path: '/etc/passwd' })).toMatch(/must be relative/);
    expect(await dead({ path: 'in/link.jpg' })).toMatch(/resolves outside the storage root/);
  });

  it('dead-letters a missing file, a directory, a non-image and a file over the size limit', async () => {
    expect(await dead({ path: 'in/missing.jpg' })).toMatch(/no such file/);
    expect(await dead({ path: 'in' })).toMatch(/not a file/);
    expect(await dead({ path: 'in/notes.txt' })).toMatch(/not an image sharp can read/);
    expect(await dead({ path: 'in/photo.jpg' }, { maxInputBytes: 100 })).toMatch(
      /over IMAGE_MAX_INPUT_BYTES=100/,
    );
  });

  it('dead-letters a job that runs past its timeout', async () => {
    await writeFile(join(root, 'in', 'big.jpg'), await makeJpeg(4000, 3000));
    const reason = await dead(
      { path: 'in/big.jpg', variants: [{ name: 'a', width: 3000, format: 'avif' }] },
      { timeoutMs: 100 },
    );
    expect(reason).toMatch(/longer than IMAGE_JOB_TIMEOUT_MS=100/);
  });
});

describe('a cancelled image job', () => {
  it('stops with the cancel as its error and leaves no variants behind', async () => {
    const cancel = new AbortController();
    const handling = handler()
      .handle({ path: 'in/photo.jpg' }, context('job-cancelled', cancel.signal))
      .catch((e: unknown) => e);
    cancel.abort(new JobCancelledError('job-cancelled'));
    expect(await handling).toBeInstanceOf(JobCancelledError);
    const left = await readdir(join(root, 'variants', 'job-cancelled')).catch(() => []);
    expect(left).toEqual([]);
  });

  it('makeVariants checks the signal before each variant and after each is encoded', async () => {
    const dir = join(root, 'cancelled-variants');
    const cancel = new AbortController();
    cancel.abort(new JobCancelledError('j'));
    const made = makeVariants(await makeJpeg(400, 300), [{ name: 'a', width: 40 }], {
      outputDir: dir,
      limitInputPixels: 1e8,
      signal: cancel.signal,
    });
    await expect(made).rejects.toBeInstanceOf(JobCancelledError);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('makeVariants', () => {
  it('returns buffers when given no output folder', async () => {
    const made = await makeVariants(await makeJpeg(400, 300), [{ name: 't', width: 40 }], {
      limitInputPixels: 1_000_000,
    });
    expect(made).toMatchObject([{ name: 't', width: 40, height: 30, format: 'webp' }]);
    expect(made[0]!.data!.length).toBe(made[0]!.bytes);
  });
});
