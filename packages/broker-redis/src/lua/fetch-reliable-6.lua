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
local out, scores, fields, tokens = {}, {}, {}, {}
for i = 2, #ARGV do
  local body = redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT')
  if not body then body = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT') end
  if not body then break end
  scores[#scores + 1] = ARGV[1]
  scores[#scores + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = body
  tokens[#tokens + 1] = ARGV[i]
  out[#out + 1] = ARGV[i]
  out[#out + 1] = body
end
-- Every job's lease in three variadic commands, not three per job (same script, so atomic).
if #tokens > 0 then
  redis.call('ZADD', KEYS[4], unpack(scores))
  redis.call('HSET', KEYS[5], unpack(fields))
  redis.call('SADD', KEYS[6], unpack(tokens))
end
return out
