import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BrokerAdmin } from './broker';

/**
 * The runtime's Prometheus metrics, registered on an injected registry (never the global one).
 * ops/prometheus/alerts.yml is written against these names.
 */
export interface RuntimeMetrics {
  processed: Counter<'queue' | 'type' | 'outcome'>;
  duration: Histogram<'queue' | 'type'>;
  inFlight: Gauge<'queue'>;
  consumers: Gauge<'queue'>;
}

export function createRuntimeMetrics(registry: Registry): RuntimeMetrics {
  return {
    processed: new Counter({
      name: 'polyqueue_jobs_processed_total',
      help: 'Jobs handled by a worker, by outcome (succeeded, retrying, dead, skipped_duplicate, cancelled)',
      labelNames: ['queue', 'type', 'outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'polyqueue_job_duration_seconds',
      help: 'Time a handler took, success or failure',
      labelNames: ['queue', 'type'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'polyqueue_jobs_in_flight',
      help: 'Handlers running now',
      labelNames: ['queue'],
      registers: [registry],
    }),
    consumers: new Gauge({
      name: 'polyqueue_consumers_active',
      help: 'Consumers attached to a queue in this process',
      labelNames: ['queue'],
      registers: [registry],
    }),
  };
}

/**
 * polyqueue_queue_depth{queue,state}: the broker's stats, read at scrape time. A broker that
 * cannot be reached leaves the gauge empty for that scrape, which the alert rules treat as absent.
 */
export function registerQueueDepthGauge(
  registry: Registry,
  broker: Pick<BrokerAdmin, 'stats'>,
  queues: readonly string[],
): Gauge<'queue' | 'state'> {
  return new Gauge({
    name: 'polyqueue_queue_depth',
    help: 'Messages in a queue by state (ready, in_flight, delayed, dead)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of queues) {
        try {
          const s = await broker.stats(queue);
          this.set({ queue, state: 'ready' }, s.ready);
          this.set({ queue, state: 'in_flight' }, s.inFlight);
          this.set({ queue, state: 'delayed' }, s.delayed);
          this.set({ queue, state: 'dead' }, s.dead);
        } catch {
          // Unreachable broker: no sample this scrape; /readyz reports the outage.
        }
      }
    },
  });
}
