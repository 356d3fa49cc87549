/**
 * Where an end-to-end run's CPU goes: each service's user + system time from /proc/<pid>/stat,
 * this process's own (the HTTP clients and the outbox polling), and the whole machine's busy
 * time from /proc/stat. Divided by the emails delivered, that is CPU per email, and the cores
 * divided by the total is the most emails per second the run's code could do on this machine,
 * however it were scheduled: the ceiling a throughput target is compared with.
 *
 * Also the outbox's own ceiling on this disk: the email worker's file calls (write a temporary
 * file, rename it to <job id>.eml) in a bare loop, with what that costs in CPU per file. Creating
 * files costs the kernel far more CPU on some machines and minutes than on others (0.25–1.75 ms
 * per file here, docs/benchmarks.md), so the figure is taken in the same run as what it bounds.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** Linux's USER_HZ: /proc's CPU times are in these ticks on every architecture node runs on. */
const TICKS_PER_SECOND = 100;

/** User + system CPU a process has used so far, in ms; undefined once it has exited. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The machine's busy and total CPU time so far (all cores), in ms. */
function machineCpuMs(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...; guest time is already inside user.
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = cpu[3]! + cpu[4]!;
  return { busy: ((total - idle) * 1000) / TICKS_PER_SECOND, total: (total * 1000) / TICKS_PER_SECOND };
}

export interface CpuBudget {
  /** CPU ms per email for each named process, this process last. */
  perEmailMs: { name: string; ms: number }[];
  totalPerEmailMs: number;
  cores: number;
  /** cores × 1000 ÷ total: the emails/s this CPU cost allows on this machine. */
  ceilingPerSec: number;
  /** Share of all cores' time busy between start and end (anything running counts). */
  machineBusy: number;
}

/** Reads every process's CPU now; `finish(emails)` reads again and divides. */
export function startCpuBudget(processes: { name: string; pid: number }[]) {
  const before = processes.map((p) => processCpuMs(p.pid) ?? 0);
  const self = process.cpuUsage();
  const machine = machineCpuMs();
  return {
    finish(emails: number): CpuBudget {
      const perEmailMs = processes.map((p, i) => ({
        name: p.name,
        ms: ((processCpuMs(p.pid) ?? before[i]!) - before[i]!) / emails,
      }));
      const own = process.cpuUsage(self);
      perEmailMs.push({
        name: 'bench process (HTTP clients, outbox polling)',
        ms: (own.user + own.system) / 1000 / emails,
      });
      const totalPerEmailMs = perEmailMs.reduce((sum, p) => sum + p.ms, 0);
      const cores = availableParallelism();
      const now = machineCpuMs();
      return {
        perEmailMs,
        totalPerEmailMs,
        cores,
        ceilingPerSec: (cores * 1000) / totalPerEmailMs,
        machineBusy: (now.busy - machine.busy) / (now.total - machine.total),
      };
    },
  };
}

export interface OutboxCeiling {
  filesPerSec: number;
  /** This process's user + system CPU (its thread pool's file calls included) per file. */
  cpuMsPerFile: number;
}

/**
 * `count` files of `bytes` each written as the outbox writes them (a temporary name, then
 * renamed), `inFlight` at once (the thread pool's 4 by default), into a new folder under `dir`.
 */
export async function outboxCeiling(
  dir: string,
  count: number,
  bytes: number,
  inFlight = 4,
): Promise<OutboxCeiling> {
  const folder = join(dir, `raw-outbox-${randomUUID()}`);
  await mkdir(folder);
  const content = Buffer.alloc(bytes, 'x');
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const lane = async () => {
    while (next < count) {
      const file = join(folder, `${next++}.eml`);
      const temp = `${file}.${randomUUID()}.tmp`;
      await writeFile(temp, content);
      await rename(temp, file);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await rm(folder, { recursive: true, force: true });
  return { filesPerSec: (count / ms) * 1000, cpuMsPerFile: (used.user + used.system) / 1000 / count };
}
