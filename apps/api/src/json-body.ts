import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { problems } from './problem';

/**
 * Parses a JSON body of at most limitBytes into req.body, as express.json({ strict: false })
 * does, in one step. Another Content-Type, or no body at all, is a 415; malformed JSON a 400;
 * over the limit a 413 (the error handler reads the rest of the body before answering).
 *
 * A plain UTF-8 body, all that clients send in practice, is read and parsed here: body-parser's
 * layers (type-is twice, raw-body, iconv, on-finished) took about 7% of the API's CPU on POST
 * /v1/emails, its busiest request (docs/benchmarks.md). A compressed body
 * (Content-Encoding) or one in another UTF charset still goes through body-parser, so those rare
 * requests are decoded exactly as before.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const read = jsonBodyReader(limitBytes);
  return (req, res, next) => {
    read(req, res).then((body) => {
      req.body = body;
      next();
    }, next);
  };
}

/**
 * jsonBody's reading and parsing on node's own request and response, for the routes served
 * before Express (direct-routes.ts): resolves with the parsed body, rejects with the problem.
 */
export function jsonBodyReader(
  limitBytes: number,
): (req: IncomingMessage, res: ServerResponse) => Promise<unknown> {
  const decoding = express.json({ limit: limitBytes, type: JSON_TYPES, strict: false });
  return async (req, res) => {
    const media = mediaTypeOf(req.headers['content-type']);
    if (!hasBody(req.headers) || media === undefined || !isJsonType(media.type)) {
      const got = req.headers['content-type'] ?? 'no Content-Type';
      throw problems.unsupportedMediaType(
        `send a JSON body with Content-Type: application/json (got ${JSON.stringify(got)})`,
      );
    }
    const encoding = req.headers['content-encoding'];
    const compressed = encoding !== undefined && encoding.toLowerCase() !== 'identity';
    if (compressed || (media.charset !== undefined && media.charset !== 'utf-8')) {
      // body-parser is connect middleware: it reads node's request and leaves the body on it.
      const parsing = req as IncomingMessage & { body?: unknown };
      await new Promise<void>((resolve, reject) =>
        decoding(parsing as Request, res as Response, (error?: unknown) =>
          error ? reject(error) : resolve(),
        ),
      );
      return parsing.body;
    }
    const text = await readUtf8(req, limitBytes);
    // As body-parser: an empty body is {} (a common client mistake), a BOM is not JSON.
    if (text.length === 0) return {};
    try {
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (error) {
      throw problems.malformedJson((error as Error).message);
    }
  };
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/** application/json or application/<anything>+json, as type-is matches JSON_TYPES. */
function isJsonType(type: string): boolean {
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The media type (lower case) and charset parameter of a Content-Type, if it has a type/subtype. */
function mediaTypeOf(header: string | undefined): { type: string; charset?: string } | undefined {
  if (header === undefined) return undefined;
  const semicolon = header.indexOf(';');
  const type = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  if (!/^[\w.+-]+\/[\w.+-]+$/.test(type)) return undefined;
  if (semicolon < 0) return { type };
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(header.slice(semicolon))?.[1]?.toLowerCase();
  return charset === undefined ? { type } : { type, charset };
}

/** type-is's rule: a request has a body when it declares one, chunked or with a length. */
function hasBody(headers: IncomingHttpHeaders): boolean {
  return (
    headers['transfer-encoding'] !== undefined ||
    !Number.isNaN(Number.parseInt(headers['content-length'] ?? '', 10))
  );
}

/** The body as UTF-8 text; rejects with a 413 past limitBytes (at once when Content-Length says so). */
function readUtf8(req: IncomingMessage, limitBytes: number): Promise<string> {
  if (Number(req.headers['content-length']) > limitBytes)
    return Promise.reject(problems.tooLarge(limitBytes, 'the JSON body'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        stop();
        reject(problems.tooLarge(limitBytes, 'the JSON body'));
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8'));
    };
    // The client went away mid-body: nothing to answer, but the request must end.
    const onError = () => {
      stop();
      reject(Object.assign(new Error('the request was aborted before its body ended'), { status: 400 }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}
