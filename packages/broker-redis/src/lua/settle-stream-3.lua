--[[
  Settles a batch of redis-streams deliveries of one stream: ack, retry or dead-letter each.
  Only an entry still pending in the consumer group is settled; when it is not (already
  settled), nothing happens for it, so a late retry cannot duplicate the job. The retry or
  dead-letter write comes before the XACK, so a write that fails leaves the entry pending. Each job is
  settled on its own: a command failing for one job (pcall) leaves the others as they are.

  KEYS[1] stream
  KEYS[2] delayed sorted set
  KEYS[3] dead-letter stream

  ARGV[1] consumer group
  then per job: entry id, 'ack' | 'retry' | 'dead', and that action's own ARGV:
  retry: due time (ms, 0 = now), delayed member or body to add now
  dead:  dead-letter id, body, reason, deadAt (ISO)
  (one job is the former single-job call: group, entry id, action, ...)

  Returns one entry per job, in order: 1 when the entry was pending, 0 otherwise, or the error
  text of a command that failed for that job.
]]
local stream, delayed, dead, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local extra = { ack = 0, retry = 2, dead = 4 }

-- The entries acked, deleted by one XDEL once every job is settled (still in this script, so
-- no one sees an entry acked and not deleted).
local acked = {}

local function settle(i, action)
  if action == 'ack' then
    -- XACK answers 1 only for an entry that was pending: the check and the ack in one command.
    if redis.call('XACK', stream, group, ARGV[i]) == 0 then return 0 end
    acked[#acked + 1] = ARGV[i]
    return 1
  end
  -- Pending in the group? (XPENDING over the one id.) Not pending: already settled, do nothing.
  if #redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1) == 0 then return 0 end
  -- The write first, the ack after: a write that fails (a wrong key type, maxmemory) raises
  -- before the entry is acked, so it stays pending and comes back by XAUTOCLAIM, not lost.
  if action == 'retry' then
    if tonumber(ARGV[i + 2]) > 0 then
      redis.call('ZADD', delayed, ARGV[i + 2], ARGV[i + 3])
    else
      redis.call('XADD', stream, '*', 'envelope', ARGV[i + 3])
    end
  elseif action == 'dead' then
    redis.call('XADD', dead, '*', 'id', ARGV[i + 2], 'body', ARGV[i + 3], 'reason', ARGV[i + 4],
      'deadAt', ARGV[i + 5])
  end
  redis.call('XACK', stream, group, ARGV[i])
  acked[#acked + 1] = ARGV[i]
  return 1
end

local results = {}
local i = 2
while i <= #ARGV do
  local action = ARGV[i + 1]
  local n = extra[action]
  if n == nil then
    if #acked > 0 then redis.call('XDEL', stream, unpack(acked)) end
    return redis.error_reply('settle-stream: unknown action ' .. tostring(action))
  end
  local ok, result = pcall(settle, i, action)
  if ok then
    results[#results + 1] = result
  else
    -- Redis 7.0 raises a command's error as a string, later versions as a table with err.
    results[#results + 1] = type(result) == 'table' and (result.err or tostring(result)) or tostring(result)
  end
  i = i + 2 + n
end
if #acked > 0 then redis.call('XDEL', stream, unpack(acked)) end
return results
