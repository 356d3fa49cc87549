--[[
  Claims for this consumer the stream entries whose consumer went quiet for longer than the
  lease (XAUTOCLAIM), and moves to the dead-letter stream those delivered more often than the
  limit (a job that keeps killing its worker). XAUTOCLAIM is atomic, so two workers reclaiming
  at once never get the same entry.

  KEYS[1] stream
  KEYS[2] dead-letter stream

  ARGV[1] consumer group
  ARGV[2] this consumer
  ARGV[3] min idle time (ms): the lease
  ARGV[4] most entries to claim
  ARGV[5] delivery-count limit
  ARGV[6] now (ISO), for the dead-letter record

  Returns the claimed entries as { id, fields, delivery count } triples, flattened.
]]
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  local fields = entry[2]
  if fields then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local count = pending[1] and tonumber(pending[1][4]) or 1
    if count > tonumber(ARGV[5]) then
      local body
      local envelope, jobType, payload
      for i = 1, #fields, 2 do
        if fields[i] == 'envelope' then envelope = fields[i + 1] end
        if fields[i] == 'type' then jobType = fields[i + 1] end
        if fields[i] == 'payload' then payload = fields[i + 1] end
      end
      if envelope then
        body = envelope
      elseif jobType and payload then
        -- The classic producer shape, as the consumer would have built it (payload is JSON text).
        body = '{"type":' .. cjson.encode(jobType) .. ',"payload":' .. payload .. '}'
      else
        -- Flat fields (XADD Q * type send_email to a@example.com): one JSON object, as entryBody.
        local record = {}
        for i = 1, #fields, 2 do record[fields[i]] = fields[i + 1] end
        body = cjson.encode(record)
      end
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('XDEL', KEYS[1], id)
      redis.call('XADD', KEYS[2], '*', 'id', id, 'body', body, 'reason',
        'delivered ' .. count .. ' times without being settled (limit ' .. ARGV[5] .. ')', 'deadAt', ARGV[6])
    else
      out[#out + 1] = id
      out[#out + 1] = fields
      out[#out + 1] = count
    end
  end
end
return out
