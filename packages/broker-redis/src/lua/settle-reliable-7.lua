--[[
  Settles a batch of one redis-reliable consumer's deliveries: ack, retry or dead-letter each.
  Only a consumer that still holds the job acts: when the job is no longer in its processing
  list (its lease expired and recovery handed it to someone else) nothing is queued again for
  it, so a late retry cannot duplicate it. The retry or dead-letter write comes before the
  removal, so a write that fails leaves the job held, to come back when its lease runs out. Each job is settled on its own: a command failing for
  one job (pcall) leaves the others as they are.

  KEYS[1] the consumer's processing list
  KEYS[2] leases sorted set
  KEYS[3] leased hash
  KEYS[4] the consumer's token set
  KEYS[5] delayed sorted set
  KEYS[6] main list
  KEYS[7] dead-letter stream

  per job: token, body as delivered (removed from the processing list by value),
  'ack' | 'retry' | 'dead', and that action's own ARGV:
  retry: due time (ms, 0 = now), delayed member or body to push now
  dead:  dead-letter id, reason, deadAt (ISO)
  (one job is the former single-job call: token, body, action, ...)

  Returns one entry per job, in order: 1 when this consumer still held the job, 0 when it had
  lost it, or the error text of a command that failed for that job.
]]
local extra = { ack = 0, retry = 2, dead = 3 }

-- Tokens whose lease bookkeeping goes: dropped by three variadic commands once every job is
-- settled (still inside this script, so no one sees a job gone and its lease left).
local finished = {}

local function forget()
  if #finished == 0 then return end
  redis.call('ZREM', KEYS[2], unpack(finished))
  redis.call('HDEL', KEYS[3], unpack(finished))
  redis.call('SREM', KEYS[4], unpack(finished))
end

local function settle(i, action)
  local token, body = ARGV[i], ARGV[i + 1]
  if action == 'ack' then
    -- LREM answers 0 when the job is no longer held: the check and the removal in one command.
    local removed = redis.call('LREM', KEYS[1], 1, body)
    finished[#finished + 1] = token
    return removed > 0 and 1 or 0
  end
  -- Does this consumer still hold the job? Lost (recovery gave it to another): do nothing
  -- but drop this token's lease bookkeeping.
  if not redis.call('LPOS', KEYS[1], body) then
    finished[#finished + 1] = token
    return 0
  end
  -- The write first, the removal after: a write that fails (a wrong key type, maxmemory)
  -- raises before the job leaves the processing list, so its lease runs out and recovery
  -- brings it back instead of losing it.
  if action == 'retry' then
    if tonumber(ARGV[i + 3]) > 0 then
      redis.call('ZADD', KEYS[5], ARGV[i + 3], ARGV[i + 4])
    else
      redis.call('RPUSH', KEYS[6], ARGV[i + 4])
    end
  elseif action == 'dead' then
    redis.call('XADD', KEYS[7], '*', 'id', ARGV[i + 3], 'body', body, 'reason', ARGV[i + 4],
      'deadAt', ARGV[i + 5])
  end
  redis.call('LREM', KEYS[1], 1, body)
  finished[#finished + 1] = token
  return 1
end

local results = {}
local i = 1
while i <= #ARGV do
  local action = ARGV[i + 2]
  local n = extra[action]
  if n == nil then
    forget()
    return redis.error_reply('settle-reliable: unknown action ' .. tostring(action))
  end
  local ok, result = pcall(settle, i, action)
  if ok then
    results[#results + 1] = result
  else
    -- Redis 7.0 raises a command's error as a string, later versions as a table with err.
    results[#results + 1] = type(result) == 'table' and (result.err or tostring(result)) or tostring(result)
  end
  i = i + 3 + n
end
forget()
return results
