import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { ACCEPTED_FORMATS, type ImageFormat, SNIFF_BYTES, sniffImage } from './image-sniff';
import { HttpProblem, problems } from './problem';

/** An image received into a temporary file under the storage root. */
export interface ReceivedUpload {
  tempPath: string;
  bytes: number;
  sha256: string;
  format: ImageFormat;
  /** Text fields of a multipart upload (e.g. `variants`); empty for a raw body. */
  fields: Record<string, string>;
}

export interface UploadOptions {
  tempDir: string;
  maxBytes: number;
}

/**
 * Receives an image upload: a raw body with an image/* Content-Type, or multipart/form-data
 * with one file part (any field name) and optional text fields. Streams to disk while hashing
 * and counting, so memory stays flat whatever the size; over maxBytes is a 413, bytes that are
 * not a known image a 415. The body is always read to its end before answering, so the client
 * sees the status instead of a reset connection.
 */
export async function receiveImageUpload(req: Request, options: UploadOptions): Promise<ReceivedUpload> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  await mkdir(options.tempDir, { recursive: true });
  let received: StreamResult & { fields: Record<string, string> };
  if (type.startsWith('multipart/form-data')) {
    received = await receiveMultipart(req, options);
  } else if (type.startsWith('image/') || type.startsWith('application/octet-stream')) {
    if (declared > options.maxBytes) {
      await drain(req);
      throw problems.tooLarge(options.maxBytes, 'the image');
    }
    received = { ...(await receiveStream(req, options, true)), fields: {} };
  } else {
    await drain(req);
    throw problems.unsupportedMediaType(
      `send the image as the raw body with an image/* Content-Type, or as multipart/form-data (got ${JSON.stringify(type || 'no Content-Type')})`,
    );
  }
  const format = sniffImage(received.head);
  if (!format) {
    await unlink(received.tempPath).catch(() => {});
    throw problems.unsupportedMediaType(
      `the upload is not a recognised image (expected ${ACCEPTED_FORMATS})`,
    );
  }
  return {
    tempPath: received.tempPath,
    bytes: received.bytes,
    sha256: received.sha256,
    fields: received.fields,
    format,
  };
}

interface StreamResult {
  tempPath: string;
  bytes: number;
  sha256: string;
  head: Buffer;
}

/**
 * Copies a stream into a new temp file. Over maxBytes, stops writing, deletes the file and
 * (when `drainRest`) keeps reading to the end before rejecting with a 413.
 */
function receiveStream(source: Readable, options: UploadOptions, drainRest: boolean): Promise<StreamResult> {
  const tempPath = join(options.tempDir, `${randomUUID()}.upload`);
  const hash = createHash('sha256');
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  let bytes = 0;
  let tooLarge = false;
  const out: WriteStream = createWriteStream(tempPath);
  let file: WriteStream | undefined = out;

  return new Promise<StreamResult>((resolve, reject) => {
    let failed: Error | undefined;
    const fail = (error: Error) => {
      if (failed) return;
      failed = error;
      file?.destroy();
      file = undefined;
      unlink(tempPath).catch(() => {});
      if (!drainRest || tooLarge === false) reject(error);
    };
    out.on('error', (error) => {
      fail(error);
      source.resume();
    });
    source.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (tooLarge) return;
      if (bytes > options.maxBytes) {
        tooLarge = true;
        fail(problems.tooLarge(options.maxBytes, 'the image'));
        return;
      }
      if (headBytes < SNIFF_BYTES) {
        headChunks.push(chunk.subarray(0, SNIFF_BYTES - headBytes));
        headBytes += Math.min(chunk.length, SNIFF_BYTES - headBytes);
      }
      hash.update(chunk);
      if (file && !file.write(chunk)) {
        source.pause();
        file.once('drain', () => source.resume());
      }
    });
    source.on('error', (error) => fail(error));
    source.on('end', () => {
      if (failed) {
        if (tooLarge) reject(failed);
        return;
      }
      const done = file!;
      done.end(() =>
        resolve({ tempPath, bytes, sha256: hash.digest('hex'), head: Buffer.concat(headChunks) }),
      );
    });
  });
}

function receiveMultipart(
  req: Request,
  options: UploadOptions,
): Promise<StreamResult & { fields: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // +1 so "exactly maxBytes" passes and "one more" trips the limit event.
        limits: { files: 1, fields: 20, fieldSize: 64 * 1024, fileSize: options.maxBytes + 1, parts: 25 },
      });
    } catch (error) {
      drain(req).finally(() =>
        reject(problems.unsupportedMediaType(`bad multipart request: ${(error as Error).message}`)),
      );
      return;
    }
    const fields: Record<string, string> = {};
    let file: Promise<StreamResult> | undefined;
    let problem: Error | undefined;
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('file', (_name, stream) => {
      if (file) {
        stream.resume();
        return;
      }
      file = receiveStream(stream, options, true);
      file.catch(() => {});
    });
    parser.on('filesLimit', () => {
      problem ??= new HttpProblem(422, 'validation-error', 'send exactly one file part');
    });
    parser.on('error', (error: Error) => {
      problem ??= problems.unsupportedMediaType(`bad multipart request: ${error.message}`);
      drain(req).finally(() => settle());
    });
    parser.on('close', () => settle());
    // pipe() does not pass on the end of a request that never finished (the client went away
    // mid-file): without this busboy waits for the rest forever, and the temp file stays on
    // disk with its descriptor open. Destroying the parser destroys the file part's stream,
    // which deletes the temp file and rejects.
    const aborted = () => {
      if (req.complete) return;
      req.unpipe(parser);
      parser.destroy(
        new HttpProblem(400, 'upload-aborted', 'the client closed the connection before the upload ended'),
      );
    };
    req.on('error', aborted);
    req.on('close', aborted);
    let settled = false;
    const settle = async () => {
      if (settled) return;
      settled = true;
      if (!file)
        return reject(
          problem ?? problems.validation([{ field: 'file', pointer: '/file', message: 'no file part' }]),
        );
      try {
        const result = await file;
        if (problem) {
          await unlink(result.tempPath).catch(() => {});
          return reject(problem);
        }
        resolve({ ...result, fields });
      } catch (error) {
        reject(error);
      }
    };
    req.pipe(parser);
  });
}

/** Reads and discards the rest of a request, so an early error reaches the client cleanly. */
export function drain(req: Readable): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}
