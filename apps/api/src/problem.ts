import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { z } from 'zod';

/**
 * One invalid field: `field` in dotted form (`payload.to`) or a header's name, `pointer` as a
 * JSON Pointer (RFC 6901) into the body, absent for a header.
 */
export interface FieldError {
  field: string;
  pointer?: string;
  message: string;
}

/**
 * An error answered as application/problem+json (RFC 9457). `type` is a URN per kind of
 * problem, so a client can branch on it; `detail` is one sentence a person can act on.
 */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    readonly status: number,
    readonly kind: string,
    detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string>; [key: string]: unknown } = {},
  ) {
    super(detail);
  }
}

export const problems = {
  validation(errors: FieldError[], prefix = 'invalid request'): HttpProblem {
    const detail = `${prefix}: ${errors.map((e) => `${e.field || '(body)'}: ${e.message}`).join('; ')}`;
    return new HttpProblem(422, 'validation-error', detail, { errors });
  },
  malformedJson(message: string): HttpProblem {
    return new HttpProblem(400, 'malformed-json', `the request body is not valid JSON: ${message}`);
  },
  tooLarge(limitBytes: number, what: string): HttpProblem {
    return new HttpProblem(
      413,
      'payload-too-large',
      `${what} is larger than the limit of ${limitBytes} bytes`,
      {
        limitBytes,
      },
    );
  },
  unsupportedMediaType(detail: string): HttpProblem {
    return new HttpProblem(415, 'unsupported-media-type', detail);
  },
  notFound(detail: string): HttpProblem {
    return new HttpProblem(404, 'not-found', detail);
  },
  unauthorized(detail: string): HttpProblem {
    return new HttpProblem(401, 'unauthorized', detail, {
      headers: { 'WWW-Authenticate': 'Bearer realm="polyqueue"' },
    });
  },
  idempotencyConflict(key: string, jobId: string): HttpProblem {
    return new HttpProblem(
      409,
      'idempotency-key-reused',
      `Idempotency-Key ${JSON.stringify(key)} was already used with a different request (job ${jobId})`,
      { jobId },
    );
  },
  unavailable(detail: string): HttpProblem {
    return new HttpProblem(503, 'service-unavailable', detail, { headers: { 'Retry-After': '5' } });
  },
};

/** zod issues -> field errors; `base` prefixes each path (e.g. ['payload'] for POST /v1/jobs). */
export function fieldErrors(error: z.ZodError, base: readonly (string | number)[] = []): FieldError[] {
  return error.issues.map((issue) => {
    const path = [...base, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    return {
      field: path.join('.'),
      pointer: `/${path.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`,
      message: issue.message,
    };
  });
}

/** Writes the problem on node's response: Express' routes and the direct ones (direct-routes.ts) alike. */
export function sendProblem(
  req: { originalUrl?: string; url?: string },
  res: ServerResponse,
  problem: HttpProblem,
): void {
  const { errors, headers, ...extensions } = problem.extra;
  for (const [name, value] of Object.entries(headers ?? {})) res.setHeader(name, value);
  const body = JSON.stringify({
    type: `urn:polyqueue:problem:${problem.kind}`,
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.message,
    // Express' originalUrl; node's url on the routes served before Express (the same text).
    instance: req.originalUrl ?? req.url,
    ...(errors ? { errors } : {}),
    ...extensions,
  });
  res.statusCode = problem.status;
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
