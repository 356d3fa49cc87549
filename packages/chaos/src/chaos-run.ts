/**
 * One chaos run on one broker: the API and two email workers as separate processes, a real
 * SMTP server, a client posting N emails with Idempotency-Keys while four faults land under
 * load, in this order:
 *
 *   1. SIGKILL email worker 1 (restarted at once)   at ~20 % of the jobs accepted
 *   2. SIGKILL the API (restarted after 1 s)         at ~40 %
 *   3. restart the broker (stop, start)              at ~60 %  (sqlite: none, it is embedded;
 *      --redis-cluster: SIGKILL the master serving the queue's slot, its replica takes over,
 *      the killed node rejoins as a replica)
 *   4. SIGKILL email worker 2 (restarted at once)   at ~80 %
 *
 * A fault also fires when its share of the posting time has passed plus 10 s, so a stalled run
 * still gets all four. And no fault fires before 2 leases have passed since the previous one
 * completed (the worker or API restarted and ready, the broker accepting connections again): each
 * fires at the later of its mark and that, so one fault's recovery is measured on its own. Then the run waits for every accepted job's email, bounded by the last
 * fault + 3 leases + settle time, lingers two leases more to catch late resends, stops every
 * service with SIGTERM (timing the drain), and hands the facts to the report.
 *
 * Flow control stays on meanwhile: a schedule (schedule-probe.ts) fires an email every second
 * from before the first request until the client and the faults are done, each tick counted;
 * with --rate-limit, the email queue's rate limit (rate-limit-probe.ts) is set for the whole run.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@polyqueue/testkit/net';
import { type BrokerName, type BrokerServer, openBroker, type RunTraces } from './broker-servers';
import { faultInjector, faultPlan, runFaults } from './faults';
import { LoadClient, type PostedJob } from './load-client';
import { Service, sleep } from './processes';
import { peakInWindow, setRateLimit } from './rate-limit-probe';
import { type FaultRecord, MESSAGE_ID_DOMAIN, type RunFacts, withJobIds } from './report';
import { collectScheduleFacts, type ScheduleFacts, startScheduleProbe } from './schedule-probe';
import { type SmtpSink, startSmtpSink } from './smtp-sink';

export interface ChaosOptions {
  broker: BrokerName;
  /** Jobs to post. */
  n: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Jobs posted per second, so that the faults land while the client is still posting. */
  ratePerS: number;
  /** How long the SMTP sink takes to accept each message. */
  smtpDelayMs: number;
  /** Lease asked of the broker (SQLITE_LEASE_MS, REDIS_LEASE_MS, MYSQL_LEASE_MS, SQS visibility). */
  leaseMs: number;
  workerConcurrency: number;
  /** Extra seconds to wait for missing emails after the last fault + 3 leases. */
  settleS: number;
  requestTimeoutMs: number;
  drainTimeoutMs: number;
  /** STATE_URL for the services; default a sqlite file in the run's temp dir. */
  stateUrl?: string;
  /** Where the services' code is (a checkout); default this repo. */
  repoRoot: string;
  /** Keep the temp dir (service logs, sink log) after the run. */
  keep: boolean;
  /** Skip the faults: a baseline run. */
  noFaults: boolean;
  /** A schedule (an email a second) active from the first request to the last fault; counted per tick. */
  schedule: boolean;
  /** A rate limit (jobs/s) on the email queue for the whole run, through PUT /v1/queues/email/limits. */
  rateLimitPerS?: number;
  /**
   * redis-reliable, redis-streams: run on the local Redis Cluster (scripts/services/redis-cluster),
   * the state store there too unless stateUrl says otherwise; the broker restart is a master failover.
   */
  redisCluster?: boolean;
}

export interface ChaosHandle {
  /** Stops whatever this run started, as fast as possible (Ctrl-C, failure). */
  abort(): Promise<void>;
  emergencyStop(): void;
}

export async function runChaos(
  options: ChaosOptions,
  say: (line: string) => void,
  handle: (h: ChaosHandle) => void,
): Promise<RunFacts> {
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const runId = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), `polyqueue-chaos-${options.broker}-`));
  const prefix = `chaos_${runId}`;
  say(`run ${runId} on ${options.broker}; logs and data in ${dir}`);

  const services: Service[] = [];
  let broker: BrokerServer | undefined;
  let sink: SmtpSink | undefined;
  // The run's records, when the state store lives on the broker's server (the cluster's): deleted at the end.
  let traces: () => RunTraces | undefined = () => undefined;
  const cleanup = async () => {
    await Promise.all(services.map((svc) => svc.stop(5_000).catch(() => {})));
    await sink?.close();
    await broker?.teardown(traces()).catch((error) => say(`broker teardown: ${error}`));
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  };
  handle({
    abort: cleanup,
    emergencyStop: () => {
      broker?.emergencyStop();
    },
  });

  try {
    broker = await openBroker(options.broker, {
      dir,
      prefix,
      leaseMs: options.leaseMs,
      repoRoot: options.repoRoot,
      say,
      ...(options.redisCluster ? { cluster: true } : {}),
    });
    const lease = broker.leaseMs;
    sink = await startSmtpSink({ delayMs: options.smtpDelayMs, now, logFile: join(dir, 'smtp-sink.jsonl') });
    const apiPort = await freePort();
    mkdirSync(join(dir, 'logs'));
    const stateUrl = options.stateUrl ?? broker.stateUrl ?? `sqlite:${join(dir, 'state.db')}`;
    const common: Record<string, string> = {
      ...broker.env,
      STATE_URL: stateUrl,
      STORAGE_ROOT: join(dir, 'storage'),
      SMTP_URL: sink.url,
      MAIL_FROM: `chaos <chaos@${MESSAGE_ID_DOMAIN}>`,
      MESSAGE_ID_DOMAIN,
      WORKER_CONCURRENCY: String(options.workerConcurrency),
      DRAIN_TIMEOUT_MS: String(options.drainTimeoutMs),
      LOG_LEVEL: 'info',
    };
    const service = (name: string, entry: string, ready: RegExp, env: Record<string, string>) => {
      const svc = new Service(
        {
          name,
          entry,
          env: { ...common, ...env },
          ready,
          ...(env.METRICS_PORT ? { metricsPort: Number(env.METRICS_PORT) } : {}),
        },
        options.repoRoot,
        join(dir, 'logs'),
        now,
        say,
      );
      services.push(svc);
      return svc;
    };
    const api = service('api', 'apps/api/src/main.ts', /"msg":"listening on /, {
      PORT: String(apiPort),
      HOST: '127.0.0.1',
    });
    const workers = [
      service('email-worker-1', 'apps/email-worker/src/main.ts', /"msg":"worker ready"/, {
        METRICS_PORT: String(await freePort()),
      }),
      service('email-worker-2', 'apps/email-worker/src/main.ts', /"msg":"worker ready"/, {
        METRICS_PORT: String(await freePort()),
      }),
    ];
    // The API first: it creates the queues some brokers need before a consumer can attach.
    await api.start();
    await Promise.all(workers.map((w) => w.start()));
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const flowNotes: string[] = [];
    if (options.rateLimitPerS !== undefined)
      flowNotes.push(await setRateLimit(apiUrl, 'email', options.rateLimitPerS));
    const probe = options.schedule ? await startScheduleProbe(apiUrl, runId) : undefined;
    if (probe)
      flowNotes.push(`schedule ${probe.name}: an email a second while the client posts and the faults land`);
    for (const note of flowNotes) say(note);
    say(
      `services up after ${(now() / 1000).toFixed(1)} s; posting ${options.n} emails at ${options.ratePerS}/s`,
    );

    const postingMs = (options.n * 1000) / options.ratePerS;
    const clientStart = now();
    const client = new LoadClient({
      baseUrl: `http://127.0.0.1:${apiPort}`,
      runId,
      count: options.n,
      concurrency: options.concurrency,
      ratePerS: options.ratePerS,
      requestTimeoutMs: options.requestTimeoutMs,
      giveUpAt: clientStart + postingMs + 180_000,
      now,
    });
    if (!options.stateUrl && broker.stateUrl) {
      traces = () => ({
        jobIds: client.jobs.filter((j) => j.jobId !== undefined).map((j) => j.jobId!),
        idempotencyKeys: client.jobs.map((j) => j.key),
      });
    }
    let clientDoneAt = 0;
    const posting = client.run().then(() => {
      clientDoneAt = now();
      say(
        `client done at t=${((clientDoneAt - clientStart) / 1000).toFixed(1)} s: ${client.accepted()} accepted`,
      );
    });

    const gapMs = 2 * lease;
    const faults: FaultRecord[] = [];
    const clock = { t0, clientStart, now };
    const inject = faultInjector({ sink, client, clock, faults, say });
    const chaos = options.noFaults
      ? Promise.resolve()
      : runFaults(faultPlan({ inject, api, workers, broker, brokerName: options.broker, client }), faults, {
          client,
          clock,
          postingMs,
          n: options.n,
          gapMs,
          say,
        });
    await Promise.all([posting, chaos]);
    await probe?.stop();

    // Wait for every accepted job's email: bounded by the last fault + 3 leases + settle time.
    const lastFault = faults.reduce((last, f) => Math.max(last, clientStart + f.backAt), 0);
    const deadline = Math.max(lastFault, clientDoneAt) + 3 * lease + options.settleS * 1000;
    const acceptedIds = () => client.jobs.filter((j) => j.jobId !== undefined).map((j) => j.jobId!);
    const allIn = () => {
      const got = new Set(sink!.deliveries.map((d) => d.jobId));
      return acceptedIds().every((id) => got.has(id));
    };
    say(`waiting for every accepted job's email (at most ${((deadline - now()) / 1000).toFixed(0)} s)`);
    const complete = await sink.waitUntil(allIn, Math.max(0, deadline - now()));
    const endAt = now();
    if (complete) {
      // Copies left queued (a lease that ran out under a live handler) come back within a lease or two.
      const linger = 2 * lease + 2_000;
      say(`all in; lingering ${(linger / 1000).toFixed(0)} s for late resends`);
      await sleep(linger);
    } else {
      say('deadline reached with jobs missing');
    }

    const statuses = await jobStatuses(`http://127.0.0.1:${apiPort}`, client.jobs);
    const endNotes = (await broker.endNotes?.().catch((error) => [`end notes: ${error}`])) ?? [];
    const shutdown = [];
    for (const svc of services) shutdown.push(await svc.stop(options.drainTimeoutMs + 15_000));
    let deliveries = sink.deliveries.map((d) => ({
      ...d,
      at: d.at - clientStart,
      ...(d.rcptAt !== undefined ? { rcptAt: d.rcptAt - clientStart } : {}),
    }));
    if (options.rateLimitPerS !== undefined) {
      // Every email of the queue, the schedule's too: the limit is the queue's.
      const peak = peakInWindow(
        deliveries.map((d) => d.at),
        10_000,
      );
      flowNotes.push(
        `at most ${peak} emails in any 10 s (the limit allows ${options.rateLimitPerS * 10} and a burst)`,
      );
    }
    let schedule: ScheduleFacts | undefined;
    if (probe) {
      try {
        const counted = await collectScheduleFacts({
          stateUrl,
          env: common,
          probe,
          deliveries,
          clientJobIds: new Set(acceptedIds()),
          toReportClock: (wallMs) => wallMs - t0 - clientStart,
        });
        schedule = counted.facts;
        // The schedule's emails are counted per tick, not as the client's orphans or resends.
        deliveries = deliveries.filter((d) => !counted.scheduled.has(d.jobId));
      } catch (error) {
        flowNotes.push(`schedule ticks not counted: ${(error as Error).message}`);
      }
    }
    const facts: RunFacts = {
      broker: options.broker,
      atLeastOnce: broker.atLeastOnce,
      leaseMs: lease,
      leaseIs: broker.leaseIs,
      commit: commitOf(options.repoRoot),
      n: options.n,
      jobs: client.jobs.map((j) =>
        j.acceptedAt === undefined ? j : { ...j, acceptedAt: j.acceptedAt - clientStart },
      ),
      deliveries,
      ...(schedule ? { schedule } : {}),
      faults: faults.map((f) => withJobIds(f, client.jobs)),
      clientDoneAt: clientDoneAt - clientStart,
      endAt: endAt - clientStart,
      unexpectedExits: Object.fromEntries(
        services
          .filter((svc) => svc.unexpectedExits.length > 0)
          .map((svc) => [svc.name, svc.unexpectedExits.map((e) => ({ ...e, at: e.at - clientStart }))]),
      ),
      shutdown,
      statuses,
      notes: [
        ...broker.notes,
        ...endNotes,
        ...(options.noFaults
          ? []
          : [
              `faults spaced: each at the later of its mark and 2 leases (${(gapMs / 1000).toFixed(0)} s) after the previous fault was done`,
            ]),
        `2 email workers x ${options.workerConcurrency}, SMTP delay ${options.smtpDelayMs} ms, ${options.ratePerS} posts/s, ${options.concurrency} at a time`,
        stateUrl.startsWith('sqlite:')
          ? 'state store: sqlite file'
          : `STATE_URL ${stateUrl}${options.redisCluster && !options.stateUrl ? ' on the cluster (REDIS_CLUSTER_NODES)' : ''}`,
        ...(options.noFaults ? ['no faults (baseline)'] : []),
        ...flowNotes,
      ],
      elapsedS: (Date.now() - t0) / 1000,
      options: { ...options },
    };
    return facts;
  } finally {
    await cleanup();
  }
}

/** `abc1234` or `abc1234+dirty` when the services' tree has uncommitted changes. */
export function commitOf(repoRoot: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'apps', 'packages');
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/**
 * Job id -> status of every accepted job, as GET /v1/jobs/:id tells it at the end of the run.
 * A job whose email arrived but whose status is not `succeeded` is still queued somewhere (a
 * claim held by a dead worker, a copy put back) or its outcome was never recorded.
 */
async function jobStatuses(baseUrl: string, jobs: PostedJob[]): Promise<Record<string, string>> {
  const statuses: Record<string, string> = {};
  const ids = jobs.filter((j) => j.jobId !== undefined).map((j) => j.jobId!);
  let next = 0;
  const lane = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      let status = 'unknown';
      try {
        const res = await fetch(`${baseUrl}/v1/jobs/${encodeURIComponent(id)}`, {
          signal: AbortSignal.timeout(3_000),
        });
        status = res.ok ? ((await res.json()) as { status: string }).status : `http ${res.status}`;
      } catch {
        status = 'no answer';
      }
      statuses[id] = status;
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return statuses;
}
