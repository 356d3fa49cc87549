--[[
  Settles one redis-reliable delivery: ack, retry or dead-letter. Only a consumer that still
  holds the job acts: when the job is no longer in its processing list (its lease expired and
  recovery handed it to someone else) nothing is queued again, so a late retry cannot duplicate it.

  KEYS[1] the consumer's processing list
  KEYS[2] leases sorted set
  KEYS[3] leased hash
  KEYS[4] the consumer's token set
  KEYS[5] delayed sorted set
  KEYS[6] main list
  KEYS[7] dead-letter stream

  ARGV[1] token
  ARGV[2] body as delivered (removed from the processing list by value)
  ARGV[3] 'ack' | 'retry' | 'dead'
  retry: ARGV[4] due time (ms, 0 = now), ARGV[5] delayed member or body to push now
  dead:  ARGV[4] dead-letter id, ARGV[5] reason, ARGV[6] deadAt (ISO)

  Returns 1 when this consumer still held the job, 0 when it had lost it.
]]
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('LREM', KEYS[1], 1, ARGV[2]) == 0 then return 0 end
if ARGV[3] == 'retry' then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
  else
    redis.call('RPUSH', KEYS[6], ARGV[5])
  end
elseif ARGV[3] == 'dead' then
  redis.call('XADD', KEYS[7], '*', 'id', ARGV[4], 'body', ARGV[2], 'reason', ARGV[5], 'deadAt', ARGV[6])
end
return 1
