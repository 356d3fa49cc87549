--[[
  Extends the leases of the slots of jobs still running (QueueLimits.renew), from the server's
  clock as admit-limited does; a slot already freed (its lease ran out) is not taken again.

  KEYS[1] the queue's slots: sorted set, holder -> lease end (ms)

  ARGV[1] lease (ms)
  ARGV[2..] holders

  Returns how many were renewed.
]]
local time = redis.call('TIME')
local until_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', until_ms, ARGV[i])
end
return renewed
