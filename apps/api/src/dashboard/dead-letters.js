// Dead letters of one queue (#/dead/<queue>): reason, attempts, payload; select + redrive,
// redrive all, and purge once the queue's name is typed (the API's ?confirm=<queue>).
import { t } from '/dashboard/i18n.js';
import { act, api, formatTime, h, json, view } from '/dashboard/ui.js';

export async function deadLetters(queue) {
  const queueNames = (await api('/v1/queues')).map((q) => q.name);
  queue = queue && queueNames.includes(queue) ? queue : queueNames[0];
  const picker = h(
    'select',
    { id: 'dead-queue', onchange: (e) => location.assign(`#/dead/${encodeURIComponent(e.target.value)}`) },
    queueNames.map((name) => h('option', { value: name, selected: name === queue }, name)),
  );
  const tbody = h('tbody');
  const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': t('selectAll') });
  selectAll.addEventListener('change', () => {
    for (const box of tbody.querySelectorAll('input[type=checkbox]')) box.checked = selectAll.checked;
  });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('loadMore'));
  const empty = h('p', { class: 'muted', hidden: true }, t('noDead'));
  const redriveSelected = h('button', { type: 'button', id: 'redrive-selected' }, t('redriveSelected'));
  const redriveAll = h('button', { type: 'button', id: 'redrive-all', class: 'secondary' }, t('redriveAll'));
  const confirmInput = h('input', { id: 'purge-confirm', autocomplete: 'off', spellcheck: 'false' });
  const purge = h(
    'button',
    { type: 'submit', class: 'danger', id: 'purge', disabled: true },
    t('purgeButton'),
  );
  confirmInput.addEventListener('input', () => {
    purge.disabled = confirmInput.value !== queue;
  });
  let cursor = null;

  async function load(reset) {
    if (reset) {
      tbody.replaceChildren();
      cursor = null;
      selectAll.checked = false;
    }
    const page = await api(
      `/v1/queues/${encodeURIComponent(queue)}/dead?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    for (const d of page.items) tbody.append(deadRow(d));
    cursor = page.nextCursor;
    more.hidden = !cursor;
    empty.hidden = tbody.children.length > 0;
  }
  more.addEventListener('click', () =>
    act(more, async () => {
      await load(false);
      return '';
    }),
  );
  redriveSelected.addEventListener('click', () =>
    act(redriveSelected, async () => {
      const ids = [...tbody.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value);
      if (ids.length === 0) throw new Error(t('nothingSelected'));
      const res = await api(`/v1/queues/${encodeURIComponent(queue)}/dead/redrive`, {
        method: 'POST',
        body: { ids },
      });
      await load(true);
      return t('redriven', { count: res.redriven, queue });
    }),
  );
  redriveAll.addEventListener('click', () =>
    act(redriveAll, async () => {
      const res = await api(`/v1/queues/${encodeURIComponent(queue)}/dead/redrive`, {
        method: 'POST',
        body: { all: true },
      });
      await load(true);
      return t('redriven', { count: res.redriven, queue });
    }),
  );
  const purgeForm = h(
    'form',
    { class: 'purge', 'aria-labelledby': 'purge-h' },
    h('h3', { id: 'purge-h' }, t('purgeTitle')),
    h('p', { id: 'purge-help' }, t('purgeHelp')),
    h('div', { class: 'row' }, h('label', { for: 'purge-confirm' }, t('purgeConfirm')), confirmInput, purge),
  );
  confirmInput.setAttribute('aria-describedby', 'purge-help');
  purgeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    act(purge, async () => {
      const res = await api(
        `/v1/queues/${encodeURIComponent(queue)}/dead?confirm=${encodeURIComponent(confirmInput.value)}`,
        { method: 'DELETE' },
      );
      confirmInput.value = '';
      await load(true);
      return t('purged', { count: res.purged, queue });
    }).finally(() => {
      purge.disabled = confirmInput.value !== queue;
    });
  });

  view.replaceChildren(
    h('h2', {}, t('deadOf', { queue })),
    h('div', { class: 'row' }, h('label', { for: 'dead-queue' }, t('chooseQueue')), picker),
    h('div', { class: 'row' }, redriveSelected, redriveAll),
    h(
      'table',
      { id: 'dead-letters' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, selectAll),
          ['jobId', 'type', 'reason', 'attempts', 'deadAt', 'payload'].map((k) =>
            h('th', { scope: 'col', class: k === 'attempts' ? 'num' : undefined }, t(k)),
          ),
        ),
      ),
      tbody,
    ),
    empty,
    more,
    purgeForm,
  );
  await load(true);
}

function deadRow(d) {
  return h(
    'tr',
    { 'data-id': d.id },
    h('td', {}, h('input', { type: 'checkbox', value: d.id, 'aria-label': t('selectLetter', { id: d.id }) })),
    h('td', {}, h('a', { href: `#/job/${encodeURIComponent(d.id)}` }, h('code', {}, d.id))),
    h('td', {}, d.type ?? t('none')),
    h('td', {}, d.reason ?? t('none')),
    h('td', { class: 'num' }, String(d.attempt ?? t('none'))),
    h('td', {}, formatTime(d.deadAt)),
    h('td', {}, json(d.payload)),
  );
}
