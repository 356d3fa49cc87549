/**
 * Stand-in for axllent/mailpit, for machines with no image registry (scripts/compose/).
 * An SMTP sink on 1025 (any sender, any recipient, no auth, no TLS), every message kept in
 * memory, and on 8025 the part of Mailpit's HTTP API that polyqueue's compose e2e test and docs
 * use, with Mailpit's JSON field names:
 *   GET    /api/v1/messages?limit=&start=   newest first: { total, count, messages_count, start, messages: [summary] }
 *   GET    /api/v1/search?query=            the same, messages whose subject, addresses or text contain query
 *   GET    /api/v1/message/:id              { ID, MessageID, From, To, Cc, Subject, Date, Text, HTML, Size, ... }
 *   GET    /api/v1/message/:id/raw          the message as received
 *   DELETE /api/v1/messages                 delete all
 *   GET    /livez, /readyz                  200
 *   GET    /                                a plain HTML list of the messages
 * `mailpit readyz` (the compose healthcheck) asks /readyz and exits 0 or 1, as Mailpit's does.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const SMTP_PORT = Number(process.env.MP_SMTP_BIND_PORT ?? 1025);
const HTTP_PORT = Number(process.env.MP_UI_BIND_PORT ?? 8025);
const MAX_MESSAGES = Number(process.env.MP_MAX_MESSAGES ?? 500);

if (process.argv[2] === 'readyz') {
  try {
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/readyz`, { signal: AbortSignal.timeout(2_000) });
    process.exit(res.ok ? 0 : 1);
  } catch {
    process.exit(1);
  }
}

/** Newest last; the API lists newest first, as Mailpit does. */
const messages = [];

const addresses = (field) =>
  (field?.value ?? []).map((a) => ({ Name: a.name ?? '', Address: a.address ?? '' }));

async function store(raw, envelope) {
  const parsed = await simpleParser(raw);
  const from = addresses(parsed.from)[0] ?? { Name: '', Address: envelope.mailFrom?.address ?? '' };
  const text = parsed.text ?? '';
  messages.push({
    ID: randomUUID(),
    MessageID: (parsed.messageId ?? '').replace(/^<|>$/g, ''),
    Read: false,
    From: from,
    To: addresses(parsed.to),
    Cc: addresses(parsed.cc),
    Bcc: [],
    ReplyTo: addresses(parsed.replyTo),
    ReturnPath: envelope.mailFrom?.address ?? '',
    Subject: parsed.subject ?? '',
    Date: (parsed.date ?? new Date()).toISOString(),
    Created: new Date().toISOString(),
    Tags: [],
    Size: raw.length,
    Attachments: parsed.attachments?.length ?? 0,
    Text: text,
    HTML: typeof parsed.html === 'string' ? parsed.html : '',
    Snippet: text.replace(/\s+/g, ' ').trim().slice(0, 250),
    raw,
  });
  if (messages.length > MAX_MESSAGES) messages.splice(0, messages.length - MAX_MESSAGES);
}

const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
      store(Buffer.concat(chunks), session.envelope).then(
        () => callback(null, 'Ok: queued'),
        (error) => callback(error),
      );
    });
  },
});
smtp.on('error', (error) => console.error('smtp:', error.message));

const summary = ({ Text: _t, HTML: _h, raw: _r, ReturnPath: _p, Date: _d, ...rest }) => rest;

function listing(url, list) {
  const start = Number(url.searchParams.get('start') ?? 0);
  const limit = Number(url.searchParams.get('limit') ?? 50);
  const newestFirst = [...list].reverse();
  const page = newestFirst.slice(start, start + limit).map(summary);
  return {
    total: messages.length,
    unread: messages.filter((m) => !m.Read).length,
    count: page.length,
    messages_count: list.length,
    start,
    tags: [],
    messages: page,
  };
}

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const json = (status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  };
  const path = url.pathname;
  if (path === '/livez' || path === '/readyz') return res.writeHead(200).end('ok');
  if (path === '/api/v1/messages' && req.method === 'GET') return json(200, listing(url, messages));
  if (path === '/api/v1/messages' && req.method === 'DELETE') {
    messages.length = 0;
    return res.writeHead(200).end('ok');
  }
  if (path === '/api/v1/search' && req.method === 'GET') {
    const q = (url.searchParams.get('query') ?? '').toLowerCase();
    const hit = (m) =>
      [m.Subject, m.Text, m.From.Address, ...m.To.map((t) => t.Address)].some((s) =>
        s.toLowerCase().includes(q),
      );
    return json(200, listing(url, messages.filter(hit)));
  }
  const one = /^\/api\/v1\/message\/([\w-]+)(\/raw)?$/.exec(path);
  if (one && req.method === 'GET') {
    const m = messages.find((x) => x.ID === one[1]);
    if (!m) return res.writeHead(404).end('message not found');
    if (one[2]) return res.writeHead(200, { 'Content-Type': 'message/rfc822' }).end(m.raw);
    m.Read = true;
    const { raw: _r, Snippet: _s, Created: _c, Read: _x, ...full } = m;
    return json(200, { ...full, Inline: [], Attachments: [] });
  }
  if (path === '/' && req.method === 'GET') {
    const rows = [...messages]
      .reverse()
      .map(
        (m) =>
          `<tr><td>${escapeHtml(m.Created)}</td><td>${escapeHtml(m.From.Address)}</td>` +
          `<td>${escapeHtml(m.To.map((t) => t.Address).join(', '))}</td><td>${escapeHtml(m.Subject)}</td>` +
          `<td><a href="/api/v1/message/${m.ID}">json</a> <a href="/api/v1/message/${m.ID}/raw">raw</a></td></tr>`,
      )
      .join('\n');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    return res.end(
      `<!doctype html><title>Mail (Mailpit stand-in)</title><h1>${messages.length} messages</h1>` +
        `<p>A stand-in for Mailpit on a machine without an image registry.</p>` +
        `<table border="1" cellpadding="4"><tr><th>received</th><th>from</th><th>to</th><th>subject</th><th></th></tr>${rows}</table>`,
    );
  }
  return json(404, { error: `no route ${req.method} ${path}` });
});

smtp.listen(SMTP_PORT, '0.0.0.0', () => console.log(`[mailpit stand-in] SMTP on :${SMTP_PORT}`));
http.listen(HTTP_PORT, '0.0.0.0', () => console.log(`[mailpit stand-in] HTTP on :${HTTP_PORT}`));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    http.close();
    smtp.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
