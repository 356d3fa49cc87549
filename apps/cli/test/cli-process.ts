/**
 * A child process for the migrate tests, with its output split into lines and awaitable:
 * `proc.line(match, what)` resolves with the first matching line, past or future, and rejects
 * on a timeout or when the process exits first. Every process started is in `children`, so a
 * test's afterAll kills whatever is left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The source through tsx, as in development: these tests are about the command's behaviour.
// (The bundle, apps/cli/dist/main.js, is what `npm run polyqueue` runs.)
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const CWD = fileURLToPath(new URL('..', import.meta.url));

export const children: ChildProcess[] = [];

export function killAll(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (stdout or stderr, past or future) that matches. */
  line(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
}

export function start(command: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, command, {
    cwd: CWD,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const listeners = new Set<(line: string) => void>();
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    lines: [],
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    line(match, what, timeoutMs = 30_000) {
      const seen = proc.lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(
            new Error(`no line ${what} within ${timeoutMs} ms; output:\n${proc.lines.slice(-20).join('\n')}`),
          );
        }, timeoutMs);
        const listener = (line: string) => {
          if (!match(line)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(line);
        };
        listeners.add(listener);
        void proc.exit.then((how) => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(
            new Error(
              `exited (${JSON.stringify(how)}) before a line ${what}:\n${proc.lines.slice(-20).join('\n')}`,
            ),
          );
        });
      });
    },
  };
  for (const [stream, key] of [
    [child.stdout!, 'stdout'],
    [child.stderr!, 'stderr'],
  ] as const) {
    let partial = '';
    stream.on('data', (chunk) => {
      proc[key] += chunk;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        proc.lines.push(line);
        for (const listener of [...listeners]) listener(line);
      }
    });
  }
  return proc;
}

/** `polyqueue migrate ...` as a child process. */
export const migrate = (args: string[], env: Record<string, string>) =>
  start(['--import', 'tsx', MAIN, 'migrate', ...args], env);

/** The `published N` count of a progress line, -1 when it has none. */
export const published = (line: string) => Number(/published (\d+)/.exec(line)?.[1] ?? -1);
