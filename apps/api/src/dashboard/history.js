// The overview's charts: per queue, jobs completed and failed per minute, and the longest a job
// waited before a worker took it, over the last 24 hours (GET /v1/queues/:q/history). Inline
// SVG, no library; each chart has a title and a description for screen readers, and a table
// of the same numbers under "Show as a table". Refreshed every 10 seconds while on screen.
import { currentLang, t } from '/dashboard/i18n.js';
import { api, h } from '/dashboard/ui.js';

export const HISTORY_POLL_MS = 10_000;
const HOURS = 24;
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 560;
const HEIGHT = 120;
const PAD = { left: 44, right: 8, top: 8, bottom: 20 };

/** An SVG element: s('line', {x1: 0}). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child);
  return el;
}

/** Seconds, minutes or hours, in the page's language. */
export function formatWait(ms) {
  if (ms === null || ms === undefined) return t('none');
  const format = (n, unit) => `${n.toLocaleString(currentLang(), { maximumFractionDigits: 1 })} ${t(unit)}`;
  if (ms < 60_000) return format(ms / 1000, 'unit.s');
  if (ms < 3_600_000) return format(ms / 60_000, 'unit.min');
  return format(ms / 3_600_000, 'unit.h');
}

const perMinute = (n, stepMinutes) => n / stepMinutes;
const timeOf = (iso) =>
  new Date(iso).toLocaleTimeString(currentLang(), { hour: '2-digit', minute: '2-digit' });

/**
 * One line chart: series [{name, tone, values: (number|null)[]}] over the points' times; null
 * breaks the line. The y axis starts at 0 and is labelled with its top.
 */
function lineChart({ id, title, desc, series, points, formatY, hours }) {
  const top = Math.max(0, ...series.flatMap((line) => line.values.filter((v) => v !== null)));
  const yMax = top > 0 ? top : 1;
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (points.length > 1 ? (i * innerW) / (points.length - 1) : innerW);
  const y = (v) => PAD.top + innerH - (v / yMax) * innerH;
  const lines = series.map((line) => {
    let d = '';
    let open = false;
    line.values.forEach((v, i) => {
      if (v === null) {
        open = false;
        return;
      }
      d += `${open ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    // A lone point (a single minute with jobs) is drawn as a dot, so it is seen.
    const dots = line.values
      .map((v, i) => (v !== null && v > 0 ? s('circle', { cx: x(i), cy: y(v), r: 2.5 }) : null))
      .filter(Boolean);
    return s('g', { class: `series ${line.tone}`, 'data-series': line.name }, s('path', { d }), dots);
  });
  const axis = s(
    'g',
    { class: 'axis', 'aria-hidden': 'true' },
    s('line', { x1: PAD.left, y1: PAD.top + innerH, x2: WIDTH - PAD.right, y2: PAD.top + innerH }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + innerH }),
    // An empty chart is labelled 0 once, at its foot.
    top > 0 ? s('text', { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }, formatY(top)) : null,
    s('text', { x: PAD.left - 4, y: PAD.top + innerH, 'text-anchor': 'end' }, '0'),
    s('text', { x: PAD.left, y: HEIGHT - 4 }, t('history.ago', { hours })),
    s('text', { x: WIDTH - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end' }, t('history.now')),
  );
  return s(
    'svg',
    {
      id,
      class: 'chart',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-labelledby': `${id}-title ${id}-desc`,
    },
    s('title', { id: `${id}-title` }, title),
    s('desc', { id: `${id}-desc` }, desc),
    axis,
    lines,
  );
}

/** The buckets that had anything, newest first: the table under the charts. */
function historyTable(queue, history) {
  const step = history.stepSeconds / 60;
  const rows = history.points
    .filter((p) => p.completed > 0 || p.failed > 0 || p.oldestWaitMs !== null)
    .reverse()
    .map((p) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, timeOf(p.at)),
        h('td', { class: 'num' }, String(p.completed)),
        h('td', { class: 'num' }, String(p.failed)),
        h('td', { class: 'num' }, formatWait(p.oldestWaitMs)),
      ),
    );
  return h(
    'details',
    {},
    h('summary', {}, t('history.table')),
    rows.length === 0
      ? h('p', { class: 'muted' }, t('history.empty'))
      : h(
          'table',
          { class: 'history-table', 'data-queue': queue },
          h('caption', {}, t('history.tableCaption', { queue, minutes: step })),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, t('history.from')),
              h('th', { scope: 'col', class: 'num' }, t('history.completed')),
              h('th', { scope: 'col', class: 'num' }, t('history.failed')),
              h('th', { scope: 'col', class: 'num' }, t('history.wait')),
            ),
          ),
          h('tbody', {}, rows),
        ),
  );
}

/** A queue's two charts, its totals and its table, from one history answer. */
function queueCharts(queue, history) {
  const step = history.stepSeconds / 60;
  const completed = history.points.reduce((n, p) => n + p.completed, 0);
  const failed = history.points.reduce((n, p) => n + p.failed, 0);
  const waits = history.points.map((p) => p.oldestWaitMs);
  const longest = Math.max(-1, ...waits.filter((w) => w !== null));
  const rate = (key) => history.points.map((p) => perMinute(p[key], step));
  const peak = (key) => Math.max(0, ...rate(key)).toLocaleString(currentLang(), { maximumFractionDigits: 1 });
  const safe = queue.replace(/[^A-Za-z0-9_-]/g, '_');
  return [
    h(
      'p',
      { class: 'totals', 'data-completed': completed, 'data-failed': failed },
      t('history.totals', {
        completed,
        failed,
        wait: longest >= 0 ? formatWait(longest) : t('none'),
      }),
    ),
    h(
      'div',
      { class: 'chart-pair' },
      h(
        'figure',
        {},
        lineChart({
          id: `chart-${safe}-throughput`,
          title: t('history.throughputTitle', { queue }),
          desc: t('history.throughputDesc', {
            completed,
            failed,
            completedPeak: peak('completed'),
            failedPeak: peak('failed'),
          }),
          points: history.points,
          hours: history.hours,
          series: [
            { name: 'completed', tone: 'ok', values: rate('completed') },
            { name: 'failed', tone: 'bad', values: rate('failed') },
          ],
          formatY: (v) => v.toLocaleString(currentLang(), { maximumFractionDigits: 1 }),
        }),
        h(
          'figcaption',
          {},
          t('history.throughputCaption'),
          ' ',
          h('span', { class: 'key ok' }, t('history.completed')),
          ' ',
          h('span', { class: 'key bad' }, t('history.failed')),
        ),
      ),
      h(
        'figure',
        {},
        lineChart({
          id: `chart-${safe}-wait`,
          title: t('history.waitTitle', { queue }),
          desc: t('history.waitDesc', { wait: longest >= 0 ? formatWait(longest) : t('none') }),
          points: history.points,
          hours: history.hours,
          series: [{ name: 'wait', tone: 'info', values: waits }],
          formatY: (v) => formatWait(v),
        }),
        h('figcaption', {}, t('history.waitCaption')),
      ),
    ),
    historyTable(queue, history),
  ];
}

/**
 * The overview's history section, one box per queue of GET /v1/queues. Polls every
 * HISTORY_POLL_MS until the section leaves the page (another route); a queue whose history
 * fails shows the error in its box.
 */
export function historySection() {
  const boxes = new Map();
  const list = h('div', { class: 'history-list' });
  const section = h(
    'section',
    { id: 'history', 'aria-labelledby': 'history-h' },
    h('h2', { id: 'history-h' }, t('history.title', { hours: HOURS })),
    h('p', { class: 'muted' }, t('history.help')),
    list,
  );
  async function refresh() {
    if (boxes.size === 0) {
      for (const { name } of await api('/v1/queues')) {
        const box = h('div', { class: 'queue-history', 'data-queue': name }, h('h3', {}, name));
        boxes.set(name, box);
        list.append(box);
      }
    }
    await Promise.all(
      [...boxes].map(async ([queue, box]) => {
        // A table the reader opened stays open across refreshes.
        const open = box.querySelector('details')?.open === true;
        try {
          const history = await api(`/v1/queues/${encodeURIComponent(queue)}/history?hours=${HOURS}`);
          box.replaceChildren(h('h3', {}, queue), ...queueCharts(queue, history));
        } catch (error) {
          if (error.status === 401) return;
          box.replaceChildren(
            h('h3', {}, queue),
            h('p', { class: 'error' }, t('error', { message: error.message })),
          );
        }
        const details = box.querySelector('details');
        if (details) details.open = open;
      }),
    );
  }
  const run = () =>
    refresh().catch(
      (error) =>
        error.status !== 401 &&
        list.replaceChildren(h('p', { class: 'error' }, t('error', { message: error.message }))),
    );
  const timer = setInterval(() => {
    if (section.isConnected) run();
    else clearInterval(timer);
  }, HISTORY_POLL_MS);
  run();
  return section;
}
