/**
 * Redis key names. Every key of one queue hashes to the same Redis Cluster slot, so each
 * multi-key Lua script and MULTI is valid on a cluster:
 *
 * - the main key is `polyqueue:Q` exactly as DESIGN.md names it (a classic producer's
 *   `RPUSH polyqueue:email ...` or `XADD polyqueue:email * type ... payload ...` still works);
 *   a key without braces hashes on its whole name, `polyqueue:Q`;
 * - every other key is `{polyqueue:Q}:<part>`, whose hash tag is that same `polyqueue:Q`.
 *
 * Pub/sub groups live under the topic's tag, `{polyqueue:topic:T}`, so publishing one event to
 * every group is one MULTI on one slot.
 */
export interface QueueKeys {
  /** The list (redis-list, redis-reliable: normal priority, high pushed to its head) or the stream. */
  main: string;
  /** Low-priority list, taken only when the main list is empty. */
  low: string;
  /** Sorted set of delayed jobs (delayed publish and retry backoff), scored by due time. */
  delayed: string;
  /** Stream of dead letters: fields id, body, reason, deadAt. */
  dead: string;
  /** redis-reliable: sorted set consumer id -> heartbeat deadline. */
  consumers: string;
  /** redis-reliable: sorted set delivery token -> lease deadline; redis-list: what is in flight. */
  leases: string;
  /** redis-reliable: hash delivery token -> body. */
  leased: string;
  /** redis-reliable: one consumer's processing list. */
  processing(consumerId: string): string;
  /** redis-reliable: one consumer's delivery tokens. */
  tokens(consumerId: string): string;
}

const FORBIDDEN = /[{}\s]/;

function checkName(what: string, name: string): void {
  if (name.length === 0 || FORBIDDEN.test(name)) {
    throw new Error(
      `${what} "${name}" must be non-empty, without braces or whitespace (they would break Redis hash tags)`,
    );
  }
}

function keySet(main: string, aux: string): QueueKeys {
  return {
    main,
    low: `${aux}:low`,
    delayed: `${aux}:delayed`,
    dead: `${aux}:dead`,
    consumers: `${aux}:consumers`,
    leases: `${aux}:leases`,
    leased: `${aux}:leased`,
    processing: (consumerId) => `${aux}:processing:${consumerId}`,
    tokens: (consumerId) => `${aux}:tokens:${consumerId}`,
  };
}

/** Keys of logical queue Q: main `prefix:Q`, the rest `{prefix:Q}:...`. */
export function queueKeys(prefix: string, queue: string): QueueKeys {
  checkName('prefix', prefix);
  checkName('queue', queue);
  const main = `${prefix}:${queue}`;
  return keySet(main, `{${main}}`);
}

/** The set of groups subscribed to a topic. */
export function topicGroupsKey(prefix: string, topic: string): string {
  checkName('prefix', prefix);
  checkName('topic', topic);
  return `{${prefix}:topic:${topic}}:groups`;
}

/** Keys of one subscriber group's private queue, in the topic's slot. */
export function groupKeys(prefix: string, topic: string, group: string): QueueKeys {
  checkName('group', group);
  const main = `${topicGroupsKey(prefix, topic).replace(/:groups$/, '')}:group:${group}`;
  return keySet(main, main);
}

/** The sorted-set member of a delayed job: priority char, 16 hex chars of uniqueness, body. */
export function delayedMember(priority: 'high' | 'normal' | 'low' | undefined, body: string): string {
  const p = priority === 'high' ? 'h' : priority === 'low' ? 'l' : 'n';
  const unique = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('');
  return `${p}${unique}${body}`;
}
