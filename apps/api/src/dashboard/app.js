// The dashboard page: hash routes over the admin API (docs/admin-api.md), no framework.
//   #/overview        broker, capabilities, every queue's counts (polled every 2 s), pause/resume,
//                     limits (limits-editor.js),
//                     and per queue charts of the last 24 h (history.js, every 10 s)
//   #/dead/<queue>    dead letters: select + redrive, redrive all, purge with the queue's name typed
//   #/jobs/<query>    job search (jobs.js): status, type, queue, free text; newest first
//   #/workers         live worker processes (workers.js), from their heartbeats
//   #/job/<id>        a job's page (job.js): record, result, attempts; retry, cancel
// The session cookie rides along with every fetch (same origin); a 401 goes back to sign in.
import { deadLetters } from '/dashboard/dead-letters.js';
import { historySection } from '/dashboard/history.js';
import { currentLang, initLanguage, t } from '/dashboard/i18n.js';
import { jobPage } from '/dashboard/job.js';
import { jobSearch } from '/dashboard/jobs.js';
import { limitsCell } from '/dashboard/limits-editor.js';
import { act, api, count, h, poll, say, stateBadge, view } from '/dashboard/ui.js';
import { workers as workersPage } from '/dashboard/workers.js';

// ---- Overview ----

async function overview() {
  const brokerBox = h('section', { 'aria-labelledby': 'broker-h' });
  const tbody = h('tbody');
  const updated = h('p', { class: 'muted', id: 'updated' });
  const warnings = h('div', { id: 'worker-warnings' });
  view.replaceChildren(
    brokerBox,
    warnings,
    h(
      'section',
      { 'aria-labelledby': 'queues-h' },
      h('h2', { id: 'queues-h' }, t('queues')),
      h('p', { class: 'muted' }, t('refreshNote')),
      h(
        'table',
        { id: 'queues' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('queue')),
            ['ready', 'inFlight', 'delayed', 'dead'].map((k) =>
              h('th', { scope: 'col', class: 'num' }, t(k)),
            ),
            h('th', { scope: 'col' }, t('state')),
            h('th', { scope: 'col' }, t('limits')),
            h('th', { scope: 'col' }, t('actions')),
          ),
        ),
        tbody,
      ),
      updated,
    ),
    // Throughput and waits over 24 h, per queue (history.js polls on its own, every 10 s).
    historySection(),
  );
  try {
    const broker = await api('/v1/broker');
    const caps = Object.entries(broker.capabilities ?? {});
    brokerBox.replaceChildren(
      h('h2', { id: 'broker-h' }, `${t('broker')}: `, h('span', { id: 'broker-name' }, broker.name)),
      h('h3', { id: 'caps-h' }, t('capabilities')),
      h(
        'ul',
        { class: 'badges', 'aria-labelledby': 'caps-h' },
        caps.map(([name, value]) =>
          h(
            'li',
            {
              class: `badge ${value === 'none' || value === false ? 'bad' : value === 'emulated' ? 'warn' : 'info'}`,
            },
            `${t(`cap.${name}`)}: ${t(`val.${value}`)}`,
          ),
        ),
      ),
    );
  } catch (error) {
    brokerBox.replaceChildren(h('p', { class: 'error' }, t('error', { message: error.message })));
  }
  /** One row per queue, kept across polls: a refresh updates cells, never the focused button. */
  const rows = new Map();
  async function refresh() {
    let queues;
    try {
      queues = await api('/v1/queues');
    } catch (error) {
      updated.textContent = t('error', { message: error.message });
      return;
    }
    for (const q of queues) {
      let row = rows.get(q.name);
      if (!row) {
        row = makeQueueRow(q.name, refresh);
        rows.set(q.name, row);
        tbody.append(row.tr);
      }
      for (const key of ['ready', 'inFlight', 'delayed', 'dead']) row.cells[key].textContent = count(q[key]);
      row.state.replaceChildren(stateBadge(q.paused));
      row.limits.show(q.limits);
      row.tr.dataset.paused = String(q.paused);
      row.toggle.textContent = q.paused ? t('resume') : t('pause');
      row.toggle.setAttribute('aria-label', t(q.paused ? 'resumeQueue' : 'pauseQueue', { queue: q.name }));
      row.toggle.dataset.action = q.paused ? 'resume' : 'pause';
      row.toggle.hidden = q.paused === null;
      row.toggle.title = q.paused === null ? t('noPauseFlags') : '';
    }
    await warnIdle(queues);
    updated.textContent = t('updatedAt', { time: new Date().toLocaleTimeString(currentLang()) });
  }
  /** A queue with ready jobs and no live worker: nothing will run them. Unknown: no warning. */
  async function warnIdle(queues) {
    const live = await api('/v1/workers').catch(() => null);
    if (!live) return warnings.replaceChildren();
    const served = new Set(live.map((w) => w.queue));
    warnings.replaceChildren(
      ...queues
        .filter((q) => q.ready > 0 && !served.has(q.name))
        .map((q) =>
          h(
            'p',
            { class: 'warning', 'data-queue': q.name },
            t('noWorkers', { queue: q.name, count: q.ready }),
          ),
        ),
    );
  }
  await refresh();
  poll.every(refresh);
}

function makeQueueRow(name, refresh) {
  const cells = {};
  for (const key of ['ready', 'inFlight', 'delayed', 'dead'])
    cells[key] = h('td', { class: 'num', 'data-col': key });
  const state = h('td', { 'data-col': 'state' });
  const limits = limitsCell(name, refresh);
  const toggle = h('button', { type: 'button', class: 'secondary', 'data-queue': name });
  toggle.addEventListener('click', () =>
    act(toggle, async () => {
      const action = toggle.dataset.action;
      await api(`/v1/queues/${encodeURIComponent(name)}/${action}`, { method: 'POST' });
      await refresh();
      return t(action === 'pause' ? 'pausedDone' : 'resumedDone', { queue: name });
    }),
  );
  const link = h('a', { href: `#/dead/${encodeURIComponent(name)}` }, t('viewDead', { queue: name }));
  const tr = h(
    'tr',
    { 'data-queue': name },
    h('th', { scope: 'row' }, name),
    Object.values(cells),
    state,
    limits.td,
    h('td', {}, h('div', { class: 'row' }, toggle, link)),
  );
  return { tr, cells, state, limits, toggle };
}

// ---- Routing ----

async function route() {
  poll.stop();
  const [, page = 'overview', arg] = location.hash.split('/').map(decodeURIComponent);
  for (const link of document.querySelectorAll('[data-route]'))
    link.toggleAttribute('aria-current', link.dataset.route === page);
  for (const link of document.querySelectorAll('[aria-current]')) link.setAttribute('aria-current', 'page');
  try {
    if (page === 'dead') await deadLetters(arg);
    else if (page === 'job') await jobPage(arg);
    // The raw query: its values stay percent-encoded for URLSearchParams.
    else if (page === 'workers') await workersPage();
    else if (page === 'jobs') await jobSearch(location.hash.slice('#/jobs/'.length));
    else await overview();
  } catch (error) {
    if (error.status !== 401)
      view.replaceChildren(h('p', { class: 'error' }, t('error', { message: error.message })));
  }
}

window.addEventListener('hashchange', () => {
  say('');
  route();
});
initLanguage(route);
route();
