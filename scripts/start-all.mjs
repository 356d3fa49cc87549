#!/usr/bin/env node
/**
 * `npm start`: runs the API and both workers as three processes with the same environment
 * (BROKER, STATE_URL, the broker's URL variable ...; the embedded sqlite default needs none),
 * prints each one's log lines under its name, and once the API answers prints its URL and a
 * curl example. Ctrl-C (or SIGTERM) stops all three cleanly: each gets one SIGTERM and drains;
 * a second Ctrl-C makes them exit at once. If one exits on its own, the others are stopped too,
 * and the exit code is 1.
 *
 * Environment of its own: LOG_FORMAT=json passes the services' JSON log lines through as they
 * are (for a log shipper); the default is one readable line per entry.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The services run compiled, with plain node: apps/<app>/dist/main.js, which `npm start`'s
// prestart (scripts/build.mjs --if-stale) builds when missing or older than the sources.
const missing = ['api', 'email-worker', 'image-worker'].filter(
  (app) => !existsSync(join(root, 'apps', app, 'dist', 'main.js')),
);
if (missing.length > 0) {
  process.stderr.write(`not built: ${missing.join(', ')}; run \`npm run build\` (npm start does it first)\n`);
  process.exit(1);
}
const env = { ...process.env };
if (env.BROKER === 'memory') {
  // Each process would get its own private queues: the workers would never see the API's jobs.
  process.stderr.write(
    'BROKER=memory lives inside one process; npm start runs three. Use sqlite (the default) or a server.\n',
  );
  process.exit(1);
}
const port = env.PORT || '3000';
const colors = { api: 36, 'email-worker': 35, 'image-worker': 33 };
const levels = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const tty = process.stdout.isTTY;
const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

// libuv reads UV_THREADPOOL_SIZE once, at the pool's first use, which can come before the
// image worker's own code runs; so it is set here, in the environment it starts with.
const imageEnv = { ...env };
if (!imageEnv.UV_THREADPOOL_SIZE) {
  const concurrency = Number.parseInt(env.WORKER_CONCURRENCY ?? '', 10);
  imageEnv.UV_THREADPOOL_SIZE = String(Math.max(4, (Number.isFinite(concurrency) ? concurrency : 2) + 2));
}

const services = [
  { name: 'api', entry: 'apps/api/dist/main.js', env },
  { name: 'email-worker', entry: 'apps/email-worker/dist/main.js', env },
  { name: 'image-worker', entry: 'apps/image-worker/dist/main.js', env: imageEnv },
];

let stopping = false;
let exitCode = 0;
const running = new Map();

for (const service of services) {
  const child = spawn(process.execPath, [join(root, service.entry)], {
    cwd: root,
    env: service.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: Ctrl-C reaches only this script, which sends exactly one SIGTERM.
    // (The runtime treats a second signal as "exit now, without draining".)
    detached: true,
  });
  running.set(service.name, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => print(service.name, line));
  }
  child.on('exit', (code, signal) => {
    running.delete(service.name);
    if (!stopping) {
      print(service.name, `exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
      exitCode = 1;
      stop('SIGTERM');
    } else if (code !== 0 && code !== null) {
      exitCode = exitCode || code;
    }
    if (running.size === 0) process.exit(exitCode);
  });
}

let signals = 0;
for (const name of ['SIGINT', 'SIGTERM']) {
  process.on(name, () => {
    signals += 1;
    if (signals === 1)
      process.stdout.write('\nstopping: the services finish their in-flight work (Ctrl-C again to force)\n');
    stop('SIGTERM');
  });
}
// If this script dies unexpectedly, take the children with it.
process.on('exit', () => {
  for (const child of running.values()) child.kill('SIGKILL');
});

function stop(signal) {
  stopping = true;
  for (const child of running.values()) child.kill(signal);
}

waitForApi().then(printBanner, () => {});

async function waitForApi() {
  const deadline = Date.now() + 120_000;
  while (!stopping && Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('the API did not answer');
}

function printBanner() {
  if (stopping) return;
  const url = `http://localhost:${port}`;
  const auth = env.API_TOKEN ? ` -H "Authorization: Bearer $API_TOKEN"` : '';
  const outbox = env.SMTP_URL
    ? `sent through ${env.SMTP_URL.replace(/\/\/([^:/@]+):([^@/]+)@/, '//$1:***@')}`
    : `${env.OUTBOX_DIR || './var/outbox'}/<job id>.eml`;
  const storage = env.STORAGE_ROOT || './var/storage';
  const lines = [
    '',
    `polyqueue is running on broker ${env.BROKER || 'sqlite'} — API at ${paint(1, url)}`,
    '',
    '  Send an email:',
    `    curl -i -X POST ${url}/v1/emails${auth} -H 'Content-Type: application/json' \\`,
    `      -d '{"to":"ada@example.com","subject":"Welcome","template":"welcome","vars":{"name":"Ada"}}'`,
    '  Resize an image:',
    `    curl -i -X POST ${url}/v1/images${auth} -H 'Content-Type: image/jpeg' --data-binary @photo.jpg`,
    '  Then follow the Location header:',
    `    curl ${url}/v1/jobs/<job id>`,
    '',
    `  Emails:  ${outbox}`,
    `  Images:  ${storage}/uploads/<job id>/ and ${storage}/variants/<job id>/ (GET /v1/images/<job id>/thumbnail)`,
    '  Ctrl-C stops all three.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function print(name, line) {
  const tag = paint(colors[name] ?? 0, name.padEnd(12));
  if (env.LOG_FORMAT === 'json') return process.stdout.write(`${line}\n`);
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return process.stdout.write(`${tag} ${line}\n`);
  }
  if (typeof entry !== 'object' || entry === null || !('msg' in entry))
    return process.stdout.write(`${tag} ${line}\n`);
  const { level, time, pid, hostname, name: _name, msg, err, ...rest } = entry;
  const extras = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const label = levels[level] ?? String(level);
  const coloured = level >= 50 ? paint(31, label) : level >= 40 ? paint(33, label) : label;
  process.stdout.write(`${tag} ${coloured.padEnd(5)} ${msg}${extras ? `  ${paint(2, extras)}` : ''}\n`);
  if (err?.stack) process.stdout.write(`${tag} ${err.stack}\n`);
}
