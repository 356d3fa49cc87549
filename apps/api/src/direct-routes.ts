/**
 * The job POSTs (POST /v1/emails, POST /v1/jobs), served on node's request and response before
 * Express sees them. These are the API's busiest requests, and Express' own work for each
 * (the app's and the router's layers, the prototypes it swaps onto req and res) cost more CPU
 * than the rest of the request: without it the API answered 1.6x the requests per second on
 * the default stack (docs/benchmarks.md). Everything else a request goes through is the same
 * code as in Express: the request metrics, the bearer check, the JSON body reader, the route's
 * handler (routes-jobs.ts jobPosts) and the error answer. Only the exact paths are taken here;
 * what else Express would match (a trailing slash, another letter case) still goes to Express,
 * which serves these routes too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from './context';
import { authProblem } from './http';
import { jsonBodyReader } from './json-body';
import { type JobPost, jobPosts } from './routes-jobs';

export interface DirectRouteHooks {
  /** Counts the request and times it under its route (the metrics Express' routes get). */
  observe(req: IncomingMessage, res: ServerResponse, route: string): void;
  /** Answers a failed request as Express' error handler does. */
  answerError(error: unknown, req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** Returns a listener that serves a job POST and says true, or says false for anything else. */
export function directJobRoutes(
  ctx: ApiContext,
  hooks: DirectRouteHooks,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const posts = new Map<string, JobPost>(Object.entries(jobPosts(ctx)));
  const readJson = jsonBodyReader(ctx.limits.jsonBytes);

  const serve = async (post: JobPost, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const denied = authProblem(req, ctx.apiToken);
    if (denied) throw denied;
    await post(await readJson(req, res), req, res);
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const post = posts.get(path);
    if (!post) return false;
    hooks.observe(req, res, path);
    serve(post, req, res).catch((error: unknown) => hooks.answerError(error, req, res));
    return true;
  };
}
