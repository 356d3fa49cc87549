// Job search (#/jobs?status=&type=&queue=&q=): GET /v1/jobs, newest first, 50 a page with
// "Load more"; a row's id opens the job lookup. The form's fields live in the hash, so a search
// can be bookmarked and Back returns to it.

import { bulkActions } from '/dashboard/bulk-actions.js';
import { t } from '/dashboard/i18n.js';
import { act, api, formatTime, h, statusBadge, view } from '/dashboard/ui.js';

const STATUSES = ['pending', 'queued', 'processing', 'retrying', 'succeeded', 'dead', 'cancelled'];
const FIELDS = ['status', 'type', 'queue', 'q'];

export async function jobSearch(query) {
  const params = new URLSearchParams(query ?? '');
  const queueNames = (await api('/v1/queues')).map((q) => q.name);
  const field = (name, control) =>
    h('div', { class: 'field' }, h('label', { for: `search-${name}` }, t(`search.${name}`)), control);
  const select = (name, values, label) =>
    h(
      'select',
      { id: `search-${name}`, name },
      h('option', { value: '' }, t('search.any')),
      values.map((v) => h('option', { value: v, selected: params.get(name) === v }, label(v))),
    );
  const text = (name) =>
    h('input', {
      id: `search-${name}`,
      name,
      value: params.get(name) ?? '',
      autocomplete: 'off',
      spellcheck: 'false',
    });
  const form = h(
    'form',
    { class: 'row search', role: 'search', id: 'job-search' },
    field(
      'status',
      select('status', STATUSES, (s) => t(`status.${s}`)),
    ),
    field('type', text('type')),
    field(
      'queue',
      select('queue', queueNames, (q) => q),
    ),
    field('q', text('q')),
    h('button', { type: 'submit' }, t('search.button')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of FIELDS) {
      const value = form.elements[name].value.trim();
      if (value) next.set(name, value);
    }
    location.assign(`#/jobs/${next.toString()}`);
  });
  const tbody = h('tbody');
  const more = h(
    'button',
    { type: 'button', class: 'secondary', id: 'jobs-more', hidden: true },
    t('loadMore'),
  );
  const empty = h('p', { class: 'muted', id: 'jobs-empty', hidden: true }, t('search.none'));
  // Bulk actions only for a filtered search: the API refuses to act on every job at once.
  const filter = Object.fromEntries(
    FIELDS.filter((name) => params.get(name)).map((name) => [name, params.get(name)]),
  );
  const bulk =
    Object.keys(filter).length > 0
      ? bulkActions(filter, async () => {
          tbody.replaceChildren();
          cursor = null;
          await load();
        })
      : undefined;
  view.replaceChildren(
    h('h2', {}, t('search.title')),
    h('p', { class: 'muted' }, t('search.help')),
    form,
    bulk,
    h(
      'table',
      // data-search names the search this table answers and aria-busy says whether its rows are
      // still loading: after a new search, the previous view stays on screen until this one
      // replaces it, so a reader (or a test) waits for both to match.
      { id: 'jobs', 'data-search': params.toString(), 'aria-busy': 'true' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['jobId', 'type', 'queue', 'status', 'attempts', 'lastError', 'createdAt'].map((k) =>
            h('th', { scope: 'col', class: k === 'attempts' ? 'num' : undefined }, t(k)),
          ),
        ),
      ),
      tbody,
    ),
    empty,
    more,
  );

  const table = view.querySelector('#jobs');
  let cursor = null;
  async function load() {
    table.setAttribute('aria-busy', 'true');
    const page = new URLSearchParams({ limit: '50' });
    for (const name of FIELDS) if (params.get(name)) page.set(name, params.get(name));
    if (cursor) page.set('cursor', cursor);
    const found = await api(`/v1/jobs?${page.toString()}`);
    for (const job of found.jobs) tbody.append(jobRow(job));
    cursor = found.nextCursor ?? null;
    more.hidden = !cursor;
    empty.hidden = tbody.children.length > 0;
    table.setAttribute('aria-busy', 'false');
  }
  more.addEventListener('click', () =>
    act(more, async () => {
      await load();
      return '';
    }),
  );
  await load();
}

function jobRow(job) {
  return h(
    'tr',
    { 'data-id': job.id },
    h('td', {}, h('a', { href: `#/job/${encodeURIComponent(job.id)}` }, h('code', {}, job.id))),
    h('td', {}, job.type),
    h('td', {}, job.queue),
    h('td', {}, statusBadge(job.status)),
    h('td', { class: 'num' }, String(job.attempts)),
    h('td', { class: 'error-text' }, job.lastError ?? t('none')),
    h('td', {}, formatTime(job.createdAt)),
  );
}
