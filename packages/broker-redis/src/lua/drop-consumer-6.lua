--[[
  Removes one redis-reliable consumer and returns everything in its processing list to the
  head of the queue: a consumer whose heartbeat stopped (crashed, even between BLMOVE and
  taking the lease), or one shutting down cleanly (ARGV[3] = 1). The heartbeat is checked
  again inside the script, so a consumer that is alive, or already dropped by another
  worker, is left alone.

  KEYS[1] consumers sorted set: consumer id -> heartbeat deadline (ms)
  KEYS[2] the consumer's processing list
  KEYS[3] the consumer's token set
  KEYS[4] leases sorted set
  KEYS[5] leased hash
  KEYS[6] main list

  ARGV[1] consumer id
  ARGV[2] now (ms)
  ARGV[3] 1 to drop regardless of the heartbeat (own clean shutdown)

  Returns how many jobs went back, or -1 when the consumer was left alone.
]]
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and (not deadline or tonumber(deadline) > tonumber(ARGV[2])) then return -1 end
local tokens = redis.call('SMEMBERS', KEYS[3])
for _, token in ipairs(tokens) do
  redis.call('ZREM', KEYS[4], token)
  redis.call('HDEL', KEYS[5], token)
end
local moved = 0
while redis.call('LMOVE', KEYS[2], KEYS[6], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return moved
