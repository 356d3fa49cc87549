/**
 * The rate limit active during a chaos run (--rate-limit <per s>): PUT /v1/queues/email/limits
 * {ratePerSec} once the services are up, so the workers fetch through the shared token bucket
 * while the faults land. The run's verdict does not change: a limit may slow jobs, never lose
 * one. Answers the note the report prints, including an API that does not serve limits.
 */
export async function setRateLimit(baseUrl: string, queue: string, ratePerSec: number): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/queues/${encodeURIComponent(queue)}/limits`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ratePerSec }),
  });
  if (!res.ok) {
    throw new Error(
      `PUT /v1/queues/${queue}/limits answered ${res.status} (${(await res.text()).slice(0, 200)}); run without --rate-limit`,
    );
  }
  return `rate limit ${ratePerSec}/s on queue ${queue} (PUT /v1/queues/${queue}/limits)`;
}

/**
 * The most emails the sink took in any window of windowMs (the sink's times, in ms), so the
 * report shows the limit held: a token bucket lets a burst through, so a window of 10 s says
 * more than one of 1 s.
 */
export function peakInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}
