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
