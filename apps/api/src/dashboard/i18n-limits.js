// The overview's limits strings (app.js, limits-editor.js), one dictionary per language; i18n.js
// merges them into its own.
export const limitStrings = {
  en: {
    limits: 'Limits',
    'limit.rate': '{n}/s',
    'limit.concurrency': '{n} at once',
    'limit.perKey': '{n} per key',
    'limit.none': 'None',
    'limit.edit': 'Edit',
    'limit.editQueue': 'Edit the limits of {queue}',
    'limit.field.rate': 'Jobs per second',
    'limit.field.concurrency': 'At once',
    'limit.field.perKey': 'At once per key',
    'limit.save': 'Save limits',
    'limit.cancel': 'Cancel',
    'limit.saved': 'Limits of {queue} saved; every worker follows them within a second.',
  },
  ja: {
    limits: '制限',
    'limit.rate': '毎秒 {n} 件',
    'limit.concurrency': '同時 {n} 件',
    'limit.perKey': 'キーごと {n} 件',
    'limit.none': 'なし',
    'limit.edit': '変更',
    'limit.editQueue': '{queue} の制限を変更',
    'limit.field.rate': '毎秒の件数',
    'limit.field.concurrency': '同時実行数',
    'limit.field.perKey': 'キーごとの同時実行数',
    'limit.save': '制限を保存',
    'limit.cancel': 'やめる',
    'limit.saved': '{queue} の制限を保存しました。1 秒ほどで全ワーカーに反映されます。',
  },
};
