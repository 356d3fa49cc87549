// "Retry all matching" / "Cancel all matching" under the job search: a dry run of
// POST /v1/jobs/bulk counts the matches first, and nothing changes until the operator confirms
// that count. The API acts on at most 10,000 jobs a call ("capped" says more match).
import { t } from '/dashboard/i18n.js';
import { act, api, h } from '/dashboard/ui.js';

/** The buttons and their confirmation for a search's filter; onDone reloads the results. */
export function bulkActions(filter, onDone) {
  const question = h('p', { id: 'bulk-question' });
  const yes = h('button', { type: 'button', class: 'danger', id: 'bulk-confirm' }, t('bulk.confirm'));
  const no = h('button', { type: 'button', class: 'secondary', id: 'bulk-keep' }, t('bulk.keep'));
  const confirm = h(
    'div',
    { class: 'bulk-confirm', role: 'group', 'aria-labelledby': 'bulk-question', hidden: true },
    question,
    h('div', { class: 'row' }, yes, no),
  );
  let pending;
  const start = (action, button) =>
    act(button, async () => {
      const dry = await api('/v1/jobs/bulk', { method: 'POST', body: { action, filter, dryRun: true } });
      pending = action;
      question.textContent = t(`bulk.${action}Question`, { count: dry.matched, more: dry.capped ? '+' : '' });
      confirm.hidden = false;
      yes.disabled = dry.matched === 0;
      (dry.matched === 0 ? no : yes).focus();
      return '';
    });
  const retry = h('button', { type: 'button', class: 'secondary', id: 'bulk-retry' }, t('bulk.retry'));
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'bulk-cancel' }, t('bulk.cancel'));
  retry.addEventListener('click', () => start('retry', retry));
  cancel.addEventListener('click', () => start('cancel', cancel));
  no.addEventListener('click', () => {
    confirm.hidden = true;
    pending = undefined;
  });
  yes.addEventListener('click', () =>
    act(yes, async () => {
      const res = await api('/v1/jobs/bulk', { method: 'POST', body: { action: pending, filter } });
      confirm.hidden = true;
      await onDone();
      return t(`bulk.${pending}Done`, { done: res.done, matched: res.matched, skipped: res.skipped.length });
    }),
  );
  return h(
    'section',
    { class: 'bulk', 'aria-label': t('bulk.title') },
    h('div', { class: 'row' }, retry, cancel),
    confirm,
  );
}
