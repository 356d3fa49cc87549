// A queue's cluster-wide limits in the overview's table: what they are, and a small form that
// changes them with PUT /v1/queues/:q/limits (the same as `polyqueue limits`). An empty field is
// no limit. The form is filled when it opens, so the overview's 2 s refresh updates the text
// beside it and never what is being typed.
import { t } from '/dashboard/i18n.js';
import { act, api, h } from '/dashboard/ui.js';

const FIELDS = [
  ['ratePerSec', 'limit.field.rate', { min: '0', step: 'any' }],
  ['concurrency', 'limit.field.concurrency', { min: '1', step: '1' }],
  ['perKeyConcurrency', 'limit.field.perKey', { min: '1', step: '1' }],
];

/** The limits cell of one queue's row: `show(limits)` on every refresh. */
export function limitsCell(queue, refresh) {
  const text = h('span', { 'data-limits': queue });
  const inputs = {};
  const fields = FIELDS.map(([name, label, bounds]) => {
    const id = `limit-${name}-${queue}`;
    inputs[name] = h('input', { id, name, type: 'number', inputmode: 'decimal', ...bounds });
    return h('div', { class: 'field' }, h('label', { for: id }, t(label)), inputs[name]);
  });
  const save = h('button', { type: 'submit' }, t('limit.save'));
  const cancel = h('button', { type: 'button', class: 'secondary' }, t('limit.cancel'));
  const form = h(
    'form',
    // novalidate: the API's 400 names the field and its rule, one source of the rules.
    {
      class: 'limits-form',
      'data-queue': queue,
      hidden: true,
      novalidate: true,
      'aria-label': t('limit.editQueue', { queue }),
    },
    fields,
    h('div', { class: 'row' }, save, cancel),
  );
  const edit = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'data-edit-limits': queue,
      'aria-label': t('limit.editQueue', { queue }),
    },
    t('limit.edit'),
  );
  let current = null;

  edit.addEventListener('click', () => {
    for (const [name] of FIELDS) inputs[name].value = current?.[name] ?? '';
    form.hidden = false;
    edit.hidden = true;
    inputs.ratePerSec.focus();
  });
  const close = () => {
    form.hidden = true;
    edit.hidden = false;
    edit.focus();
  };
  cancel.addEventListener('click', close);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(save, async () => {
      const body = {};
      for (const [name] of FIELDS) {
        const value = inputs[name].value.trim();
        body[name] = value === '' ? null : Number(value);
      }
      // A 400 names the bad field; the form stays open to correct it.
      await api(`/v1/queues/${encodeURIComponent(queue)}/limits`, { method: 'PUT', body });
      close();
      await refresh();
      return t('limit.saved', { queue });
    });
  });

  const td = h('td', { 'data-col': 'limits' }, text, edit, form);
  return {
    td,
    show(limits) {
      current = limits;
      text.textContent = describeLimits(limits);
      // Without a limits store the API serves no limits route: nothing to edit.
      edit.hidden = !limits || !form.hidden;
    },
  };
}

function describeLimits(limits) {
  if (!limits) return t('unknown');
  const parts = [];
  if (limits.ratePerSec !== null) parts.push(t('limit.rate', { n: limits.ratePerSec }));
  if (limits.concurrency !== null) parts.push(t('limit.concurrency', { n: limits.concurrency }));
  if (limits.perKeyConcurrency !== null) parts.push(t('limit.perKey', { n: limits.perKeyConcurrency }));
  return parts.length > 0 ? parts.join(' · ') : t('limit.none');
}
