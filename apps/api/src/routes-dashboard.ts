import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response, Router } from 'express';
import { hasSession, SESSION_COOKIE, sameSecret, sessionValue } from './http';

/**
 * The operators' dashboard (issue 17): static files (one HTML page with hash routes, a vanilla
 * JS module, CSS; no build step, no CDN) that call the admin API from the browser.
 *
 *   GET  /dashboard            the page; with API_TOKEN set and no session, a redirect to sign in
 *   GET  /dashboard/sign-in    the sign-in form
 *   POST /dashboard/session    token=<API_TOKEN> -> session cookie + 303 to /dashboard/; 401 otherwise
 *   POST /dashboard/sign-out   clears the cookie
 *   GET  /dashboard/<file>     the scripts and styles (no data in them, so served to anyone)
 *
 * The session cookie is HttpOnly (page scripts cannot read it) and SameSite=Strict (another
 * site cannot make the browser send it); bearerAuth accepts it wherever it accepts the token.
 * Without API_TOKEN the dashboard is open, as the API is.
 */
export function dashboardRoutes(apiToken: string | undefined): Router {
  const router = Router();
  const pages = { app: read('index.html'), signIn: read('sign-in.html') };
  const signedIn = (req: Request) => !apiToken || hasSession(req, apiToken);
  const sendPage = (res: Response, html: string, status = 200) =>
    res
      .status(status)
      .set({
        'Cache-Control': 'no-store',
        'Content-Security-Policy':
          "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        'X-Content-Type-Options': 'nosniff',
      })
      .type('html')
      .send(html);

  router.get(['/dashboard', '/dashboard/', '/dashboard/index.html'], (req, res) => {
    if (!signedIn(req)) return res.redirect(303, '/dashboard/sign-in');
    sendPage(res, pages.app);
  });
  router.get('/dashboard/sign-in', (req, res) => {
    if (signedIn(req)) return res.redirect(303, '/dashboard/');
    sendPage(res, pages.signIn);
  });
  router.post('/dashboard/session', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    if (!apiToken) return res.redirect(303, '/dashboard/');
    const given = typeof req.body?.token === 'string' ? req.body.token : '';
    // The same page with its error shown: a plain form post, so it works without scripts too.
    if (!sameSecret(given, apiToken))
      return sendPage(res, pages.signIn.replace('data-error hidden', 'data-error'), 401);
    res.cookie(SESSION_COOKIE, sessionValue(apiToken), {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: '/',
    });
    res.redirect(303, '/dashboard/');
  });
  router.post('/dashboard/sign-out', (_req, res) => {
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/' });
    res.redirect(303, '/dashboard/sign-in');
  });
  router.use('/dashboard', express.static(fileURLToPath(dashboardDir), { index: false, maxAge: 0 }));
  return router;
}

/**
 * The static files: src/dashboard/ next to this module when run from source (tsx, vitest),
 * dist/dashboard/ next to the bundle (scripts/build.mjs copies the folder there).
 */
const dashboardDir = new URL('./dashboard/', import.meta.url);

function read(name: string): string {
  return readFileSync(new URL(name, dashboardDir), 'utf8');
}
