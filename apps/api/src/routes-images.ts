import { mkdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveExistingInStorage, resolveInStorage } from '@polyqueue/app-runtime';
import { type ImageVariant, processImagePayloadSchema } from '@polyqueue/jobs';
import { Router } from 'express';
import { type ApiContext, findJob, isVariantResult, sendAccepted } from './context';
import { enqueueJob, hashJson } from './enqueue';
import { assertBrokerCan, flowFromHeaders } from './flow-control';
import { bearerAuth, idempotencyKeyOf, traceparentOf } from './http';
import { extensionFor } from './image-sniff';
import { fieldErrors, problems } from './problem';
import { receiveImageUpload } from './uploads';

/** Where the image worker writes its outputs: <storage root>/variants/<job folder>/. */
const VARIANTS_DIR = 'variants';

/** Where an upload for a job is kept, relative to the storage root. */
export function uploadPathFor(jobId: string, extension: string): string {
  return `uploads/${jobId}/original.${extension}`;
}

/** POST /v1/images, GET /v1/images/:id/:variant. */
export function imageRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post('/v1/images', bearerAuth(ctx.apiToken), async (req, res) => {
    // Read the headers before the body, so a bad key, delay or priority does not cost an upload.
    const idempotencyKey = idempotencyKeyOf(req);
    const flow = flowFromHeaders(req, ctx.now());
    assertBrokerCan(ctx.broker, flow);
    const upload = await receiveImageUpload(req, {
      tempDir: resolveInStorage(ctx.storageRoot, 'tmp'),
      maxBytes: ctx.limits.imageBytes,
    });
    try {
      const variants = parseVariants(upload.fields.variants);
      const extension = extensionFor[upload.format];
      const payloadFor = (id: string) => ({
        path: uploadPathFor(id, extension),
        ...(variants ? { variants } : {}),
      });
      const { job, replayed } = await enqueueJob(ctx, {
        type: 'process_image',
        payloadFor,
        requestHash: hashJson('process_image', { sha256: upload.sha256, variants }),
        idempotencyKey,
        traceparent: traceparentOf(req),
        flow,
        async beforePublish(id) {
          const target = resolveInStorage(ctx.storageRoot, uploadPathFor(id, extension));
          await mkdir(dirname(target), { recursive: true });
          await rename(upload.tempPath, target);
        },
      });
      if (!replayed) ctx.enqueued.inc({ type: 'process_image' });
      sendAccepted(res, job, replayed);
    } finally {
      // Already moved into place, or a replay that needs no second copy.
      await unlink(upload.tempPath).catch(() => {});
    }
  });

  router.get('/v1/images/:id/:variant', async (req, res) => {
    const job = await findJob(ctx, req.params.id);
    if (job.type !== 'process_image')
      throw problems.notFound(`job ${job.id} is a ${job.type} job, not an image`);
    if (job.status !== 'succeeded' || !isVariantResult(job.result)) {
      throw problems.notFound(`job ${job.id} has no variants yet (status ${job.status})`);
    }
    const variant = job.result.variants.find((v) => v.name === req.params.variant);
    if (!variant) {
      const names = job.result.variants.map((v) => v.name).join(', ');
      throw problems.notFound(
        `job ${job.id} has no variant ${JSON.stringify(req.params.variant)} (it has ${names})`,
      );
    }
    let file: string;
    try {
      // Only the image worker's output folder is served: a result naming another stored file
      // (an upload, or anything through `..` or a symlink) is refused like a missing one.
      if (!variant.path.startsWith(`${VARIANTS_DIR}/`)) throw new Error('not an output');
      const outputs = resolveInStorage(ctx.storageRoot, VARIANTS_DIR);
      file = await resolveExistingInStorage(outputs, variant.path.slice(VARIANTS_DIR.length + 1));
    } catch {
      throw problems.notFound(`the file of variant ${variant.name} is gone from storage`);
    }
    res.set('Cache-Control', 'public, max-age=31536000, immutable');
    await new Promise<void>((resolve, reject) =>
      res.sendFile(file, { dotfiles: 'allow' }, (error) =>
        error && !res.headersSent ? reject(error) : resolve(),
      ),
    );
  });

  return router;
}

/** The optional multipart field `variants`: a JSON array of {name, width, height?, fit?, format?, quality?}. */
function parseVariants(raw: string | undefined): ImageVariant[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw problems.validation([
      { field: 'variants', pointer: '/variants', message: `not JSON: ${(error as Error).message}` },
    ]);
  }
  const parsed = processImagePayloadSchema.shape.variants.safeParse(value);
  if (!parsed.success) throw problems.validation(fieldErrors(parsed.error, ['variants']));
  return parsed.data;
}
