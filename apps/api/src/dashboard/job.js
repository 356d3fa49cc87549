// A job's page (#/job/<id>): GET /v1/jobs/:id, polled every 2 s until the job has finished.
// Its record, progress, payload (as kept by the API, up to 16 KiB of JSON), result (an email's headers as a list, an image's variants as thumbnails
// served by GET /v1/images/:id/:variant), every attempt (start, end, worker, duration, outcome,
// error with its stack) and the actions: retry now (a dead job) and cancel (an unfinished one).
import { currentLang, t } from '/dashboard/i18n.js';
import { act, api, formatTime, h, json, poll, statusBadge, view } from '/dashboard/ui.js';

const FINAL = new Set(['succeeded', 'dead', 'cancelled']);

export async function jobPage(id) {
  const input = h('input', {
    id: 'job-id',
    name: 'id',
    value: id ?? '',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const out = h('div', { id: 'job' });
  const form = h(
    'form',
    { class: 'row', role: 'search' },
    h('label', { for: 'job-id' }, t('jobId')),
    input,
    h('button', { type: 'submit' }, t('lookupButton')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) location.assign(`#/job/${encodeURIComponent(value)}`);
  });
  view.replaceChildren(h('h2', {}, t('lookupTitle')), form, out);
  if (!id) return input.focus();
  const path = `/v1/jobs/${encodeURIComponent(id)}`;

  async function show() {
    let job;
    try {
      job = await api(path);
    } catch (error) {
      poll.stop();
      const message = error.status === 404 ? t('notFound', { id }) : t('error', { message: error.message });
      return out.replaceChildren(h('p', { class: 'error', id: 'job-error' }, message));
    }
    // A poll redraws the page: the stacks a reader opened stay open.
    const opened = new Set([...out.querySelectorAll('details[open]')].map((d) => d.dataset.key));
    out.replaceChildren(
      h(
        'dl',
        { class: 'job' },
        item('jobId', h('code', {}, job.id)),
        item('type', job.type),
        item('queue', job.queue),
        item('status', h('span', { id: 'job-status' }, statusBadge(job.status))),
        item('attempts', String(job.attempts)),
        item('job.progress', job.progress ? progressOf(job.progress) : t('none')),
        item('lastError', job.lastError ? h('pre', {}, job.lastError) : t('none')),
        item('createdAt', formatTime(job.createdAt)),
        item('updatedAtLabel', formatTime(job.updatedAt)),
      ),
      actions(job),
      h('h3', { id: 'payload-h' }, t('job.payloadTitle')),
      payloadOf(job),
      h('h3', { id: 'result-h' }, t('result')),
      resultOf(job),
      h('h3', { id: 'attempts-h' }, t('job.attemptsTitle')),
      attemptTable(job.attemptHistory ?? []),
    );
    for (const details of out.querySelectorAll('details'))
      if (opened.has(details.dataset.key)) details.open = true;
    if (FINAL.has(job.status)) poll.stop();
  }

  function actions(job) {
    const retry = h('button', { type: 'button', id: 'retry' }, t('retry'));
    retry.addEventListener('click', () =>
      act(retry, async () => {
        await api(`${path}/retry`, { method: 'POST' });
        await show();
        follow();
        return t('retried', { id });
      }),
    );
    const cancel = h('button', { type: 'button', class: 'secondary', id: 'cancel' }, t('job.cancel'));
    cancel.addEventListener('click', () =>
      act(cancel, async () => {
        await api(path, { method: 'DELETE' });
        await show();
        return t('job.cancelled', { id });
      }),
    );
    return h(
      'div',
      { class: 'row' },
      job.status === 'dead' ? retry : '',
      FINAL.has(job.status) ? '' : cancel,
    );
  }

  /** Polls while the job is not finished, so a redriven job is seen to succeed. */
  const follow = () => poll.every(show);
  follow();
  await show();
}

const item = (key, value) => [h('dt', {}, t(key)), h('dd', {}, value)];

function progressOf(progress) {
  const percent = Math.round(progress.percent);
  return h(
    'span',
    { class: 'row', id: 'job-progress' },
    h('progress', { max: '100', value: String(percent), 'aria-label': t('job.progress') }),
    `${percent}%`,
    progress.message ? ` ${progress.message}` : '',
  );
}

/** The payload the job was created with, as indented JSON, or why there is none to show. */
function payloadOf(job) {
  if (job.payload !== undefined)
    return h(
      'pre',
      { id: 'job-payload', 'aria-labelledby': 'payload-h' },
      JSON.stringify(job.payload, null, 2),
    );
  const why = job.payloadTruncated ? t('job.payloadTooLarge') : t('job.payloadNone');
  return h('p', { class: 'muted', id: 'job-payload-missing' }, why);
}

/** An email's headers, an image's thumbnails, or the result as JSON. */
function resultOf(job) {
  const result = job.result;
  if (result === undefined || result === null) return h('p', { class: 'muted' }, t('none'));
  if (job.type === 'send_email' && typeof result.messageId === 'string') return emailResult(result);
  if (Array.isArray(result.variants) && result.variants.every((v) => v.url)) return imageResult(result);
  return json(result);
}

function emailResult(sent) {
  const list = (values) => (values?.length ? values.join(', ') : t('none'));
  const rows = [
    ['job.messageId', h('code', {}, sent.messageId)],
    ['job.from', sent.from ?? t('none')],
    ['job.to', list(sent.to)],
    ['job.subject', sent.subject ?? t('none')],
    ['job.envelopeFrom', sent.envelope?.from || t('none')],
    ['job.envelopeTo', list(sent.envelope?.to)],
    ['job.accepted', list(sent.accepted)],
    ['job.rejected', list(sent.rejected)],
    ['job.transport', sent.transport ?? t('none')],
  ];
  if (sent.response) rows.push(['job.response', h('code', {}, sent.response)]);
  if (sent.file) rows.push(['job.file', h('code', {}, sent.file)]);
  return h(
    'dl',
    { class: 'job', id: 'email-headers' },
    rows.flatMap(([key, value]) => item(key, value)),
  );
}

function imageResult(result) {
  return h(
    'ul',
    { class: 'thumbnails', id: 'image-variants' },
    result.variants.map((v) =>
      h(
        'li',
        { 'data-variant': v.name },
        h(
          'figure',
          {},
          h(
            'a',
            { href: v.url },
            h('img', { src: v.url, alt: t('job.variant', { name: v.name }), loading: 'lazy' }),
          ),
          h(
            'figcaption',
            {},
            h('strong', {}, v.name),
            ` ${v.width}×${v.height} ${v.format ?? ''}`,
            v.bytes ? ` · ${kib(v.bytes)}` : '',
          ),
        ),
      ),
    ),
  );
}

const kib = (bytes) => `${(bytes / 1024).toLocaleString(currentLang(), { maximumFractionDigits: 1 })} KiB`;

function attemptTable(attempts) {
  if (attempts.length === 0) return h('p', { class: 'muted', id: 'attempts-empty' }, t('job.noAttempts'));
  const columns = [
    'job.attempt',
    'job.started',
    'job.ended',
    'job.duration',
    'job.worker',
    'job.outcome',
    'job.error',
  ];
  return h(
    'table',
    { id: 'attempts', 'aria-labelledby': 'attempts-h' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((k) => h('th', { scope: 'col' }, t(k))),
      ),
    ),
    h(
      'tbody',
      {},
      attempts.map((a) =>
        h(
          'tr',
          { 'data-attempt': String(a.attempt), 'data-outcome': a.outcome ?? 'running' },
          h('td', { class: 'num' }, String(a.attempt)),
          h('td', {}, formatTime(a.startedAt)),
          h('td', {}, a.endedAt ? formatTime(a.endedAt) : t('job.notEnded')),
          h('td', { class: 'num' }, a.durationMs === undefined ? t('none') : duration(a.durationMs)),
          h('td', {}, a.worker ? h('code', {}, a.worker) : t('none')),
          h('td', {}, a.outcome ? statusBadge(a.outcome) : t('job.running')),
          h('td', { class: 'error-text' }, errorOf(a)),
        ),
      ),
    ),
  );
}

function errorOf(attempt) {
  if (!attempt.error) return t('none');
  if (!attempt.stack) return h('pre', {}, attempt.error);
  return h(
    'details',
    { 'data-key': `${attempt.startedAt}#${attempt.attempt}` },
    h('summary', {}, attempt.error),
    h('pre', { class: 'stack' }, attempt.stack),
  );
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toLocaleString(currentLang(), { maximumFractionDigits: 2 })} s`;
}
