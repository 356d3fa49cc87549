--[[
  Admits a job of a limited queue (QueueLimits.admit), atomically against the limits stored
  now: frees the slots whose lease ran out, checks the queue's and the job key's running
  counts, takes a token from the bucket, and takes a slot. The bucket step is core's
  takeToken (queue-limits.ts) in Lua: change both together. Time is the server's, so workers
  on hosts with skewed clocks share one bucket.

  KEYS[1] limits: hash, queue -> JSON {ratePerSec?, concurrency?, perKeyConcurrency?}
  KEYS[2] the queue's bucket: hash {tokens, updatedAt (ms)}
  KEYS[3] the queue's slots: sorted set, holder -> lease end (ms)
  KEYS[4] the queue's slot keys: hash, holder -> job key ('' for none)

  ARGV[1] queue
  ARGV[2] holder
  ARGV[3] job key, '' for none
  ARGV[4] lease (ms)
  ARGV[5] how long a job refused a slot waits (ms)

  Returns {1, 1} granted with a slot, {1, 0} granted without one, {0, ms} refused: wait ms.
]]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {1, 0} end
local limits = cjson.decode(raw)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #expired > 0 then
  redis.call('ZREM', KEYS[3], unpack(expired))
  redis.call('HDEL', KEYS[4], unpack(expired))
end

local key = ARGV[3]
local perKey = nil
if key ~= '' then perKey = limits.perKeyConcurrency end
if limits.concurrency and redis.call('ZCARD', KEYS[3]) >= limits.concurrency then
  return {0, tonumber(ARGV[5])}
end
if perKey then
  local same = 0
  for _, held in ipairs(redis.call('HVALS', KEYS[4])) do
    if held == key then same = same + 1 end
  end
  if same >= perKey then return {0, tonumber(ARGV[5])} end
end

if limits.ratePerSec then
  local rate = limits.ratePerSec
  local capacity = math.max(1, math.min(rate, 2), rate / 20)
  local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'updatedAt')
  local tokens = 1
  if bucket[1] and bucket[2] then
    tokens = tonumber(bucket[1]) + math.max(0, now - tonumber(bucket[2])) * rate / 1000
  end
  tokens = math.min(capacity, tokens)
  local taken = tokens >= 1
  if taken then tokens = tokens - 1 end
  redis.call('HSET', KEYS[2], 'tokens', string.format('%.17g', tokens), 'updatedAt', now)
  if not taken then return {0, math.max(1, math.ceil((1 - tokens) * 1000 / rate))} end
end

if not limits.concurrency and not perKey then return {1, 0} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], key)
return {1, 1}
