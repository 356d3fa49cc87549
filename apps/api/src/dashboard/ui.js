// What the dashboard's pages share: building elements, calling the admin API, announcing
// outcomes, the badges, and the one poll that runs for the page on screen.
import { currentLang, t } from '/dashboard/i18n.js';

export const POLL_MS = 2000;
export const view = document.getElementById('view');
const notice = document.getElementById('notice');

/** The poll of the page on screen (one at a time); a route change stops it. */
export const poll = {
  timer: undefined,
  every(run) {
    this.stop();
    this.timer = setInterval(run, POLL_MS);
  },
  stop() {
    clearInterval(this.timer);
  },
};

/** Builds an element: h('td', {class: 'num'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child);
  return el;
}

export function say(message, isError = false) {
  notice.textContent = message;
  notice.classList.toggle('error', isError);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    location.assign('/dashboard/sign-in');
    throw new ApiError(401);
  }
  const data = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Runs an action of a button, with the button disabled meanwhile and the outcome announced. */
export async function act(button, run) {
  button.disabled = true;
  try {
    say(await run());
  } catch (error) {
    if (error.status !== 401) say(t('error', { message: error.message }), true);
  } finally {
    button.disabled = false;
  }
}

export const count = (n) => (n === null || n === undefined ? t('unknown') : String(n));
export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString(currentLang()) : t('none'));
export const json = (value) => h('pre', {}, JSON.stringify(value, null, 2));

export function stateBadge(paused) {
  if (paused === null || paused === undefined) return h('span', { class: 'badge bad' }, t('unknown'));
  return paused
    ? h('span', { class: 'badge warn' }, t('paused'))
    : h('span', { class: 'badge ok' }, t('running'));
}

export function statusBadge(status) {
  const tone = status === 'succeeded' ? 'ok' : status === 'dead' || status === 'failed' ? 'bad' : 'info';
  return h('span', { class: `badge ${tone}`, 'data-status': status }, t(`status.${status}`));
}
