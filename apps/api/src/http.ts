import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpProblem, problems } from './problem';

/** The dashboard's session cookie (routes-dashboard.ts sets it after a sign-in with the token). */
export const SESSION_COOKIE = 'polyqueue_session';

/**
 * The session cookie's value for a token: an HMAC of it, so the cookie never holds the token
 * itself, and a new API_TOKEN signs every session out.
 */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('polyqueue dashboard session v1').digest('base64url');
}

/** What the header helpers read: an Express request, or node's own (direct-routes.ts). */
export interface WithHeaders {
  headers: IncomingHttpHeaders;
}

/** The named cookie of a request (no cookie parser: this one cookie is all the API reads). */
export function cookieOf(req: WithHeaders, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time equality of two strings (hashed first: timingSafeEqual needs equal lengths). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * True when the request carries the dashboard's session cookie for this token. The cookie is
 * SameSite=Strict: a page of another site cannot make the browser send it, so it stands in for
 * the Bearer header on the same routes without opening them to cross-site requests.
 */
export function hasSession(req: WithHeaders, token: string): boolean {
  const cookie = cookieOf(req, SESSION_COOKIE);
  return cookie !== undefined && sameSecret(cookie, sessionValue(token));
}

/** Whether a request would pass bearerAuth: every request when no token is configured. */
export function isAuthorized(req: WithHeaders, token: string | undefined): boolean {
  if (!token) return true;
  const header = req.headers.authorization;
  if (header === undefined) return hasSession(req, token);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match !== null && sameSecret(match[1]!, token);
}

/**
 * Requires `Authorization: Bearer <token>` when a token is configured, or the dashboard's
 * session cookie; compares in constant time. A Bearer header, when present, decides alone: a
 * wrong one is a 401 even with a valid cookie beside it.
 */
export function bearerAuth(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  return (req, _res, next) => next(authProblem(req, token));
}

/** bearerAuth's verdict: the 401 to answer, or undefined when the request may pass. */
export function authProblem(req: WithHeaders, token: string | undefined): HttpProblem | undefined {
  if (!token) return undefined;
  const header = req.headers.authorization;
  if (header === undefined && hasSession(req, token)) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match)
    return problems.unauthorized('this endpoint requires an Authorization: Bearer <API_TOKEN> header');
  if (!sameSecret(match[1]!, token)) return problems.unauthorized('the bearer token is not valid');
  return undefined;
}

/** The Idempotency-Key header (IETF draft-ietf-httpapi-idempotency-key-header), if any. */
export function idempotencyKeyOf(req: WithHeaders): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !/^[\x21-\x7e][\x20-\x7e]{0,199}$/.test(key)) {
    throw new HttpProblem(
      400,
      'invalid-idempotency-key',
      'Idempotency-Key must be 1 to 200 printable ASCII characters',
    );
  }
  return key;
}

/** A W3C traceparent header worth carrying into the envelope. */
export function traceparentOf(req: WithHeaders): string | undefined {
  const value = req.headers.traceparent;
  return typeof value === 'string' && /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/.test(value)
    ? value
    : undefined;
}

/** Maps body-parser / express errors (which carry `type` and `status`) to problems. */
export function toProblem(error: unknown, limits: { jsonBytes: number }): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  const e = error as { type?: string; status?: number; statusCode?: number; message?: string };
  switch (e?.type) {
    case 'entity.parse.failed':
      return problems.malformedJson(e.message ?? 'parse error');
    case 'entity.too.large':
      return problems.tooLarge(limits.jsonBytes, 'the JSON body');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return problems.unsupportedMediaType(e.message ?? 'unsupported encoding');
  }
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpProblem(status, 'bad-request', e.message ?? 'bad request');
  }
  return undefined;
}

export type AsyncHandler = (req: Request, res: Response, next: NextFunction) => Promise<void>;
