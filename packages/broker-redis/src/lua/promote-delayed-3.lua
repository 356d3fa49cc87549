--[[
  Moves delayed jobs that are due into the ready lists (redis-list, redis-reliable).

  KEYS[1] delayed sorted set: member = <priority char><16 hex id><body>, score = due time (ms)
  KEYS[2] main list (normal priority; high is pushed to its head)
  KEYS[3] low-priority list

  ARGV[1] now (ms)
  ARGV[2] most members to move in one call

  Returns { moved, next due time (ms) or -1 }.
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local priority = string.sub(member, 1, 1)
  local body = string.sub(member, 18)
  if priority == 'h' then
    redis.call('LPUSH', KEYS[2], body)
  elseif priority == 'l' then
    redis.call('RPUSH', KEYS[3], body)
  else
    redis.call('RPUSH', KEYS[2], body)
  end
  redis.call('ZREM', KEYS[1], member)
end
local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nextDue[2] then return { #due, tonumber(nextDue[2]) } end
return { #due, -1 }
