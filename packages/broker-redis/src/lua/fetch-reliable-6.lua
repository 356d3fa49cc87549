--[[
  Takes up to N ready jobs for one redis-reliable consumer, without blocking: each is moved
  into the consumer's processing list and leased in the same atomic step.

  KEYS[1] main list (normal, with high at its head)
  KEYS[2] low-priority list
  KEYS[3] this consumer's processing list
  KEYS[4] leases sorted set: token -> lease deadline (ms)
  KEYS[5] leased hash: token -> body
  KEYS[6] this consumer's token set

  ARGV[1] lease deadline (ms)
  ARGV[2..] one fresh token per job wanted

  Returns a flat array { token1, body1, token2, body2, ... }.
]]
local out = {}
for i = 2, #ARGV do
  local body = redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT')
  if not body then body = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT') end
  if not body then break end
  redis.call('ZADD', KEYS[4], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], body)
  redis.call('SADD', KEYS[6], ARGV[i])
  out[#out + 1] = ARGV[i]
  out[#out + 1] = body
end
return out
