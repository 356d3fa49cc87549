// Live worker processes (#/workers): GET /v1/workers, polled every 2 s. A worker beats every
// 5 s and drops out of the list 15 s after its last beat.
import { currentLang, t } from '/dashboard/i18n.js';
import { api, formatTime, h, poll, view } from '/dashboard/ui.js';

const COLUMNS = [
  'id',
  'queue',
  'host',
  'pid',
  'concurrency',
  'inFlight',
  'version',
  'startedAt',
  'lastHeartbeat',
];
const NUMERIC = new Set(['pid', 'concurrency', 'inFlight']);

export async function workers() {
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted', id: 'workers-empty', hidden: true }, t('workers.none'));
  const updated = h('p', { class: 'muted' });
  view.replaceChildren(
    h('h2', {}, t('workers.title')),
    h('p', { class: 'muted' }, t('workers.help')),
    h(
      'table',
      { id: 'workers' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          COLUMNS.map((k) =>
            h(
              'th',
              { scope: 'col', class: NUMERIC.has(k) ? 'num' : undefined },
              t(k === 'queue' ? 'queue' : `workers.${k}`),
            ),
          ),
        ),
      ),
      tbody,
    ),
    empty,
    updated,
  );
  async function refresh() {
    let live;
    try {
      live = await api('/v1/workers');
    } catch (error) {
      updated.textContent = t('error', { message: error.message });
      return;
    }
    tbody.replaceChildren(...live.map(workerRow));
    empty.hidden = live.length > 0;
    updated.textContent = t('updatedAt', { time: new Date().toLocaleTimeString(currentLang()) });
  }
  await refresh();
  poll.every(refresh);
}

function workerRow(w) {
  const cell = (k) => {
    if (k === 'id') return h('th', { scope: 'row' }, h('code', {}, w.id));
    if (k === 'startedAt' || k === 'lastHeartbeat') return h('td', {}, formatTime(w[k]));
    return h('td', { class: NUMERIC.has(k) ? 'num' : undefined }, String(w[k]));
  };
  return h('tr', { 'data-id': w.id, 'data-queue': w.queue }, COLUMNS.map(cell));
}
