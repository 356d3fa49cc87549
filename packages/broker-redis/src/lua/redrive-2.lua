--[[
  Puts dead letters back on their queue as new first attempts. Each entry is deleted from the
  dead-letter stream first; only when that delete succeeds is the job queued, so two operators
  redriving at once cannot queue it twice.

  KEYS[1] dead-letter stream
  KEYS[2] target: the main list (redis-list, redis-reliable) or the stream (redis-streams)

  ARGV[1] 'list' | 'stream'
  ARGV[2..] pairs: dead-letter entry id, body to queue

  Returns how many were queued.
]]
local queued = 0
for i = 2, #ARGV, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    if ARGV[1] == 'stream' then
      redis.call('XADD', KEYS[2], '*', 'envelope', ARGV[i + 1])
    else
      redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    end
    queued = queued + 1
  end
end
return queued
