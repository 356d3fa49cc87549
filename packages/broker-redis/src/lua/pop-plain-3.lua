--[[
  redis-list: pops one job (main list first, then low) and records it as in flight, in one
  step, so stats never see a job that is neither ready nor in flight. The job has left Redis:
  the record only feeds stats.inFlight and expires unless the live consumer refreshes it.

  KEYS[1] main list
  KEYS[2] low-priority list
  KEYS[3] in-flight sorted set: token -> expiry (ms)

  ARGV[1] token
  ARGV[2] expiry (ms)

  Returns the body, or false when both lists are empty.
]]
local body = redis.call('LPOP', KEYS[1])
if not body then body = redis.call('LPOP', KEYS[2]) end
if body then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
return body
