/**
 * Process control for the chaos run: each service (the API, an email worker) is a real child
 * process started as `npm run start:*` does (`node apps/<app>/dist/main.js`, see serviceCommand),
 * that can be SIGKILLed, restarted and stopped. A service that dies on its own is counted and
 * restarted after a second, as a process supervisor (compose `restart: unless-stopped`) would,
 * a bounded number of times. Every child ever started is in one registry so that Ctrl-C, a failure or
 * the end of the run kills whatever is left.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();

/** SIGKILLs every child still running. Synchronous, so it also works from process.on('exit'). */
export function killAllChildren(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Spawns a child that the registry tracks until it exits. */
export function spawnTracked(command: string, args: string[], options: Parameters<typeof spawn>[2]) {
  const child = spawn(command, args, options);
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

const built = new Set<string>();

/**
 * Node's arguments for a service entry (apps/<app>/src/main.ts): its compiled bundle, as users
 * run it, built once per tree and run (scripts/build.mjs --if-stale, well under a second).
 * A tree without scripts/build.mjs (`--rev` of a commit from before the services were compiled)
 * runs the source through tsx, as it did then.
 */
export function serviceCommand(repoRoot: string, entry: string): string[] {
  const buildScript = join(repoRoot, 'scripts', 'build.mjs');
  const app = /^apps\/([\w-]+)\/src\/main\.ts$/.exec(entry)?.[1];
  if (!app || !existsSync(buildScript)) return ['--import', 'tsx', join(repoRoot, entry)];
  const key = `${repoRoot}:${app}`;
  if (!built.has(key)) {
    execFileSync(process.execPath, [buildScript, '--if-stale', app], { cwd: repoRoot, stdio: 'inherit' });
    built.add(key);
  }
  return [join(repoRoot, 'apps', app, 'dist', 'main.js')];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface ServiceSpec {
  name: string;
  /** Entry file, relative to the repo root. */
  entry: string;
  env: Record<string, string>;
  /** A log line that says the service is up. */
  ready: RegExp;
  /** Its /metrics port, if it serves one. */
  metricsPort?: number;
}

export interface Exit {
  /** ms on the run's clock. */
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last log lines of the process that died. */
  tail: string[];
}

export interface StopResult {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** It did not exit within the bound and was SIGKILLed. */
  forced: boolean;
}

const READY_TIMEOUT_MS = 90_000;
const MAX_RESTARTS = 10;

export class Service {
  /** Exits nobody asked for (the process crashed or gave up). */
  readonly unexpectedExits: Exit[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lines: string[] = [];
  private expectingExit = false;
  private stopping = false;
  private restarts = 0;

  constructor(
    readonly spec: ServiceSpec,
    private readonly repoRoot: string,
    private readonly logDir: string,
    private readonly now: () => number,
    private readonly say: (line: string) => void,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the process and resolves when its ready line appears (rejects if it exits first). */
  start(): Promise<void> {
    const { name, entry, env, ready } = this.spec;
    const logFile = join(this.logDir, `${name}.log`);
    appendFileSync(logFile, `\n===== ${this.now()} ms: start ${name} =====\n`);
    this.expectingExit = false;
    this.lines = [];
    const child = spawnTracked(process.execPath, serviceCommand(this.repoRoot, entry), {
      cwd: this.repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let onReady: () => void = () => {};
    const readyOrExit = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      const timer = setTimeout(
        () => reject(new Error(`${name} not ready after ${READY_TIMEOUT_MS / 1000} s; log: ${logFile}`)),
        READY_TIMEOUT_MS,
      );
      timer.unref();
      child.once('exit', (code, signal) =>
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready; log: ${logFile}`)),
      );
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        appendFileSync(logFile, `${line}\n`);
        this.lines.push(line);
        if (this.lines.length > 40) this.lines.shift();
        if (ready.test(line)) onReady();
      });
    }
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        if (!this.expectingExit)
          this.onUnexpectedExit({ at: this.now(), code, signal, tail: [...this.lines] });
        resolve();
      }),
    );
    return readyOrExit;
  }

  /** SIGKILL, as an OOM killer or a lost host would; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.expectingExit = true;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after timeoutMs; what an orchestrator does on a rolling update. */
  async stop(timeoutMs: number): Promise<StopResult> {
    this.stopping = true;
    this.expectingExit = true;
    const child = this.child;
    const started = Date.now();
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return { name: this.name, code: child?.exitCode ?? null, signal: null, ms: 0, forced: false };
    }
    child.kill('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return {
      name: this.name,
      code: child.exitCode,
      signal: child.signalCode,
      ms: Date.now() - started,
      forced,
    };
  }

  /** Sum of the worker's polyqueue_jobs_in_flight gauge, or undefined if /metrics does not answer. */
  async jobsInFlight(): Promise<number | undefined> {
    if (!this.spec.metricsPort) return undefined;
    try {
      // Generous: a loaded host answers slowly, and a missing number is worth more than a fast one.
      const res = await fetch(`http://127.0.0.1:${this.spec.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(3_000),
      });
      const text = await res.text();
      let sum = 0;
      for (const match of text.matchAll(/^polyqueue_jobs_in_flight(?:\{[^}]*\})? (\S+)$/gm)) {
        sum += Number(match[1]);
      }
      return sum;
    } catch {
      return undefined;
    }
  }

  private onUnexpectedExit(exit: Exit): void {
    this.unexpectedExits.push(exit);
    this.say(
      `${this.name} exited by itself (${exit.code ?? exit.signal}); last lines:\n    ${exit.tail.slice(-5).join('\n    ')}`,
    );
    if (this.stopping || this.restarts >= MAX_RESTARTS) return;
    this.restarts++;
    setTimeout(() => {
      if (this.stopping) return;
      this.say(`restarting ${this.name} (supervisor)`);
      this.start().catch((error) => this.say(`${this.name}: ${(error as Error).message}`));
    }, 1_000);
  }
}
