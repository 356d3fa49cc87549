/**
 * Where an end-to-end run's CPU goes: each service's user + system time from /proc/<pid>/stat,
 * this process's own (the HTTP clients and the outbox polling), and the whole machine's busy
 * time from /proc/stat. Divided by the emails delivered, that is CPU per email, and the cores
 * divided by the total is the most emails per second the run's code could do on this machine,
 * however it were scheduled: the ceiling a throughput target is compared with.
 *
 * Also the outbox's own ceiling on this disk: the email worker's file calls (write a temporary
 * file, rename it to <job id>.eml) in a bare loop, with what that costs in CPU per file. Creating
 * a file costs the kernel about 0.05 ms on a quiet disk here and up to 0.9 ms for a few minutes
 * after many files were deleted (outboxCeiling), so the figure is taken in the same run as what
 * it bounds.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** Linux's USER_HZ: /proc's CPU times are in these ticks on every architecture node runs on. */
const TICKS_PER_SECOND = 100;

/** User + system CPU a process has used so far, in ms; undefined once it has exited. */
export function processCpuMs(pid: number): number | undefined {
  const split = processCpuSplitMs(pid);
  return split && split.user + split.system;
}

/** A process's user and system (kernel) CPU so far, in ms; undefined once it has exited. */
function processCpuSplitMs(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND,
      system: (Number(fields[12]) * 1000) / TICKS_PER_SECOND,
    };
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
  /** CPU ms per email for each named process, this process last; systemMs the kernel's part of ms. */
  perEmailMs: { name: string; ms: number; systemMs: number }[];
  totalPerEmailMs: number;
  cores: number;
  /** cores × 1000 ÷ total: the emails/s this CPU cost allows on this machine. */
  ceilingPerSec: number;
  /** Share of all cores' time busy between start and end (anything running counts). */
  machineBusy: number;
}

/** Reads every process's CPU now; `finish(emails)` reads again and divides. */
export function startCpuBudget(processes: { name: string; pid: number }[]) {
  const before = processes.map((p) => processCpuSplitMs(p.pid) ?? { user: 0, system: 0 });
  const self = process.cpuUsage();
  const machine = machineCpuMs();
  return {
    finish(emails: number): CpuBudget {
      const perEmailMs = processes.map((p, i) => {
        const now = processCpuSplitMs(p.pid) ?? before[i]!;
        const user = now.user - before[i]!.user;
        const system = now.system - before[i]!.system;
        return { name: p.name, ms: (user + system) / emails, systemMs: system / emails };
      });
      const own = process.cpuUsage(self);
      perEmailMs.push({
        name: 'bench process (HTTP clients, outbox polling)',
        ms: (own.user + own.system) / 1000 / emails,
        systemMs: own.system / 1000 / emails,
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
  /** This process's user + system CPU per file. */
  cpuMsPerFile: number;
}

/**
 * CPU per file of the raw outbox loop above which the disk is not quiet: about 0.05 ms is what a
 * create costs here with nothing deleted in the last minutes, 0.3-0.9 ms what it costs after.
 */
export const NOT_QUIET_MS_PER_FILE = 0.2;

/**
 * `count` files of `bytes` each written as the outbox writes them (a temporary name, then
 * renamed, with synchronous calls one after another: apps/email-worker's transport.ts), into a
 * new folder under `dir`.
 *
 * The files stay until the caller removes `dir`, after everything it times. On ext4 without a
 * journal (this project's CI machines), creating a file walks past every inode deleted in the
 * last 60 s (360 s while the inode's block is dirty) that comes before the first free one the
 * allocator may take: deleting these files here made the .eml files the worker then wrote cost
 * up to 0.9 ms of kernel time each instead of about 0.05 (docs/benchmarks.md, "Issue 15: a
 * bench that slowed what it measured").
 */
export function outboxCeiling(dir: string, count: number, bytes: number): OutboxCeiling {
  const folder = join(dir, `raw-outbox-${randomUUID()}`);
  mkdirSync(folder);
  const content = Buffer.alloc(bytes, 'x');
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const file = join(folder, `${i}.eml`);
    const temp = `${file}.${randomUUID()}.tmp`;
    writeFileSync(temp, content);
    renameSync(temp, file);
  }
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { filesPerSec: (count / ms) * 1000, cpuMsPerFile: (used.user + used.system) / 1000 / count };
}
