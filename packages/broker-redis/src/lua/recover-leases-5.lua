--[[
  Returns to the head of the queue the jobs of one consumer whose lease has expired
  (redis-reliable). Each lease is checked again here, inside the script, so two workers
  recovering at once cannot both return the same job: the second finds no expired lease.

  KEYS[1] leases sorted set: token -> deadline (ms)
  KEYS[2] leased hash: token -> body
  KEYS[3] the owning consumer's processing list
  KEYS[4] the owning consumer's token set
  KEYS[5] main list

  ARGV[1] now (ms)
  ARGV[2..] tokens the caller saw expired (all of this consumer)

  Returns how many jobs went back.
]]
local moved = 0
for i = 2, #ARGV do
  local token = ARGV[i]
  local deadline = redis.call('ZSCORE', KEYS[1], token)
  if deadline and tonumber(deadline) <= tonumber(ARGV[1]) then
    local body = redis.call('HGET', KEYS[2], token)
    redis.call('ZREM', KEYS[1], token)
    redis.call('HDEL', KEYS[2], token)
    redis.call('SREM', KEYS[4], token)
    if body and redis.call('LREM', KEYS[3], 1, body) == 1 then
      redis.call('LPUSH', KEYS[5], body)
      moved = moved + 1
    end
  end
end
return moved
