--[[
  Moves delayed jobs that are due into the stream (redis-streams).

  KEYS[1] delayed sorted set: member = <priority char><16 hex id><body>, score = due time (ms)
  KEYS[2] stream

  ARGV[1] now (ms)
  ARGV[2] most members to move in one call

  Returns { moved, next due time (ms) or -1 }.
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'envelope', string.sub(member, 18))
  redis.call('ZREM', KEYS[1], member)
end
local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nextDue[2] then return { #due, tonumber(nextDue[2]) } end
return { #due, -1 }
