// Every string the dashboard shows, one dictionary per language. Elements carry
// data-i18n="key" (text) or data-i18n-attr="attribute:key"; scripts call t(key, vars).

const en = {
  title: 'polyqueue dashboard',
  skip: 'Skip to content',
  language: 'Language',
  signOut: 'Sign out',
  navMain: 'Sections',
  navOverview: 'Overview',
  navDead: 'Dead letters',
  navJobs: 'Jobs',
  navJob: 'Job lookup',
  signInTitle: 'Sign in',
  signInIntro: 'Enter the API token (API_TOKEN) of this service.',
  tokenLabel: 'API token',
  signInButton: 'Sign in',
  signInError: 'That token is not valid. Nothing was changed.',
  broker: 'Broker',
  capabilities: 'Capabilities',
  queues: 'Queues',
  refreshNote: 'Refreshed every 2 seconds.',
  updatedAt: 'Updated {time}',
  queue: 'Queue',
  ready: 'Ready',
  inFlight: 'In flight',
  delayed: 'Delayed',
  dead: 'Dead',
  state: 'State',
  actions: 'Actions',
  paused: 'Paused',
  running: 'Running',
  unknown: 'Unknown',
  pause: 'Pause',
  resume: 'Resume',
  pauseQueue: 'Pause {queue}',
  resumeQueue: 'Resume {queue}',
  viewDead: 'Dead letters of {queue}',
  pausedDone: '{queue} is paused: workers stop fetching from it.',
  resumedDone: '{queue} is running again.',
  noPauseFlags: 'Pause flags are not available (no STATE_URL).',
  deadOf: 'Dead letters of {queue}',
  chooseQueue: 'Queue',
  select: 'Select',
  selectAll: 'Select all on this page',
  selectLetter: 'Select {id}',
  jobId: 'Job id',
  type: 'Type',
  reason: 'Reason',
  attempts: 'Attempts',
  deadAt: 'Dead since',
  payload: 'Payload',
  noDead: 'No dead letters in this queue.',
  loadMore: 'Load more',
  redriveSelected: 'Redrive selected',
  redriveAll: 'Redrive all',
  redriven: '{count} job(s) sent back to {queue}.',
  nothingSelected: 'Select at least one dead letter first.',
  purgeTitle: 'Purge',
  purgeHelp: 'Deletes every dead letter of this queue for good. Type the queue name to confirm.',
  purgeConfirm: 'Queue name',
  purgeButton: 'Purge dead letters',
  purged: '{count} dead letter(s) of {queue} deleted.',
  lookupTitle: 'Job lookup',
  lookupButton: 'Look up',
  notFound: 'No job with id {id}.',
  status: 'Status',
  lastError: 'Last error',
  result: 'Result',
  createdAt: 'Created',
  updatedAtLabel: 'Updated',
  retry: 'Retry now',
  retried: 'Job {id} is queued again.',
  none: '—',
  error: 'Error: {message}',
  'search.title': 'Jobs',
  'search.help':
    'Newest first. The text matches a job id or an idempotency key exactly, or a part of the last error.',
  'search.status': 'Status',
  'search.type': 'Type',
  'search.queue': 'Queue',
  'search.q': 'Id, key or error text',
  'search.any': 'Any',
  'search.button': 'Search',
  'search.none': 'No job matches.',
  'status.pending': 'pending',
  'status.processing': 'processing',
  'status.retrying': 'retrying',
  'status.queued': 'queued',
  'status.running': 'running',
  'status.succeeded': 'succeeded',
  'status.failed': 'failed',
  'status.dead': 'dead',
  'status.cancelled': 'cancelled',
  'cap.delayedDelivery': 'Delayed delivery',
  'cap.priority': 'Priority',
  'cap.redeliveryAfterCrash': 'Redelivery after a crash',
  'cap.ordering': 'Ordering',
  'cap.pubsub': 'Pub/sub',
  'cap.leaseExtension': 'Lease extension',
  'cap.delivery': 'Delivery',
  'cap.ackDurable': 'Ack durable',
  'cap.crossProcess': 'Across processes',
  'val.native': 'native',
  'val.emulated': 'emulated',
  'val.none': 'none',
  'val.true': 'yes',
  'val.false': 'no',
  'val.lease': 'lease',
  'val.connection': 'on disconnect',
  'val.per-key': 'per key',
  'val.fifo': 'FIFO',
  'val.at-least-once': 'at least once',
  'val.at-most-once': 'at most once',
  'val.on-resolve': 'on resolve',
  'val.eventually': 'shortly after',
};

const ja = {
  title: 'polyqueue ダッシュボード',
  skip: '本文へ移動',
  language: '言語',
  signOut: 'サインアウト',
  navMain: 'メニュー',
  navOverview: '概要',
  navDead: 'デッドレター',
  navJobs: 'ジョブ一覧',
  navJob: 'ジョブ照会',
  signInTitle: 'サインイン',
  signInIntro: 'このサービスの API トークン（API_TOKEN）を入力してください。',
  tokenLabel: 'API トークン',
  signInButton: 'サインイン',
  signInError: 'トークンが正しくありません。何も変更されていません。',
  broker: 'ブローカー',
  capabilities: '機能',
  queues: 'キュー',
  refreshNote: '2 秒ごとに自動更新します。',
  updatedAt: '{time} に更新',
  queue: 'キュー',
  ready: '待機中',
  inFlight: '処理中',
  delayed: '遅延',
  dead: 'デッド',
  state: '状態',
  actions: '操作',
  paused: '一時停止中',
  running: '稼働中',
  unknown: '不明',
  pause: '一時停止',
  resume: '再開',
  pauseQueue: '{queue} を一時停止',
  resumeQueue: '{queue} を再開',
  viewDead: '{queue} のデッドレター',
  pausedDone: '{queue} を一時停止しました。ワーカーは取得を止めます。',
  resumedDone: '{queue} を再開しました。',
  noPauseFlags: '一時停止フラグは使えません（STATE_URL が未設定です）。',
  deadOf: '{queue} のデッドレター',
  chooseQueue: 'キュー',
  select: '選択',
  selectAll: 'このページをすべて選択',
  selectLetter: '{id} を選択',
  jobId: 'ジョブ ID',
  type: '種類',
  reason: '理由',
  attempts: '試行回数',
  deadAt: 'デッドになった日時',
  payload: 'ペイロード',
  noDead: 'このキューにデッドレターはありません。',
  loadMore: 'さらに読み込む',
  redriveSelected: '選択したものを再投入',
  redriveAll: 'すべて再投入',
  redriven: '{count} 件のジョブを {queue} に戻しました。',
  nothingSelected: '先にデッドレターを 1 件以上選択してください。',
  purgeTitle: '削除',
  purgeHelp: 'このキューのデッドレターをすべて完全に削除します。確認のためキュー名を入力してください。',
  purgeConfirm: 'キュー名',
  purgeButton: 'デッドレターを削除',
  purged: '{queue} のデッドレターを {count} 件削除しました。',
  lookupTitle: 'ジョブ照会',
  lookupButton: '検索',
  notFound: 'ID が {id} のジョブは見つかりません。',
  status: 'ステータス',
  lastError: '最後のエラー',
  result: '結果',
  createdAt: '作成日時',
  updatedAtLabel: '更新日時',
  retry: '今すぐ再実行',
  retried: 'ジョブ {id} を再びキューに入れました。',
  none: '—',
  error: 'エラー: {message}',
  'search.title': 'ジョブ一覧',
  'search.help':
    '新しい順に表示します。テキストは、ジョブ ID または冪等性キーとの完全一致、または最後のエラーの一部で検索します。',
  'search.status': 'ステータス',
  'search.type': '種類',
  'search.queue': 'キュー',
  'search.q': 'ID・キー・エラー文',
  'search.any': 'すべて',
  'search.button': '検索',
  'search.none': '条件に合うジョブはありません。',
  'status.pending': '登録中',
  'status.processing': '処理中',
  'status.retrying': '再試行待ち',
  'status.queued': '待機中',
  'status.running': '実行中',
  'status.succeeded': '成功',
  'status.failed': '失敗',
  'status.dead': 'デッド',
  'status.cancelled': 'キャンセル済み',
  'cap.delayedDelivery': '遅延配信',
  'cap.priority': '優先度',
  'cap.redeliveryAfterCrash': 'クラッシュ後の再配信',
  'cap.ordering': '順序保証',
  'cap.pubsub': 'Pub/Sub',
  'cap.leaseExtension': 'リース延長',
  'cap.delivery': '配信保証',
  'cap.ackDurable': 'Ack の永続性',
  'cap.crossProcess': 'プロセス間共有',
  'val.native': 'ネイティブ',
  'val.emulated': 'エミュレート',
  'val.none': 'なし',
  'val.true': 'あり',
  'val.false': 'なし',
  'val.lease': 'リース',
  'val.connection': '切断時',
  'val.per-key': 'キー単位',
  'val.fifo': 'FIFO',
  'val.at-least-once': '少なくとも 1 回',
  'val.at-most-once': '最大 1 回',
  'val.on-resolve': '完了時に確定',
  'val.eventually': '少し遅れて確定',
};

export const dictionaries = { en, ja };
const STORAGE_KEY = 'polyqueue.lang';

/** The language chosen before (localStorage), else the browser's if Japanese, else English. */
export function currentLang() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && saved in dictionaries) return saved;
  return navigator.language?.startsWith('ja') ? 'ja' : 'en';
}

export function setLang(lang) {
  localStorage.setItem(STORAGE_KEY, lang);
  applyI18n(document);
}

/** The string for key in the current language, {name} placeholders filled from vars. */
export function t(key, vars = {}) {
  const dict = dictionaries[currentLang()];
  const text = dict[key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/** Sets the static texts of root (data-i18n, data-i18n-attr) and the page's lang. */
export function applyI18n(root) {
  document.documentElement.lang = currentLang();
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr, t(key));
    }
  }
  const select = document.getElementById('lang');
  if (select) select.value = currentLang();
}

/** Wires the language switch (a <select id="lang">) and applies the language once. */
export function initLanguage(onChange) {
  applyI18n(document);
  document.getElementById('lang')?.addEventListener('change', (event) => {
    setLang(event.target.value);
    onChange?.();
  });
}
