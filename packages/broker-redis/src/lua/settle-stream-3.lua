--[[
  Settles one redis-streams delivery: ack, retry or dead-letter. XACK tells whether this
  consumer group still had the entry pending; when it did not (already settled), nothing else
  happens, so a late retry cannot duplicate the job.

  KEYS[1] stream
  KEYS[2] delayed sorted set
  KEYS[3] dead-letter stream

  ARGV[1] consumer group
  ARGV[2] entry id
  ARGV[3] 'ack' | 'retry' | 'dead'
  retry: ARGV[4] due time (ms, 0 = now), ARGV[5] delayed member or body to add now
  dead:  ARGV[4] dead-letter id, ARGV[5] body, ARGV[6] reason, ARGV[7] deadAt (ISO)

  Returns 1 when the entry was pending, 0 otherwise.
]]
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == 'retry' then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  else
    redis.call('XADD', KEYS[1], '*', 'envelope', ARGV[5])
  end
elseif ARGV[3] == 'dead' then
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[4], 'body', ARGV[5], 'reason', ARGV[6], 'deadAt', ARGV[7])
end
return 1
