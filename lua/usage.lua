-- Reads pools of one account as a billing tab shows them: used-from-plan,
-- and every active grant (expiry strictly after now), earliest expiry first.
--
-- ARGV[1]  now (epoch ms)
-- per pool i (base b = 3(i-1)): KEYS[b+1] used counter, KEYS[b+2] grants hash, KEYS[b+3] grant expiry zset
--
-- Returns per pool: planUsed, grantCount, (id, grantJSON)...

local out = {}
for i = 1, #KEYS / 3 do
  local b = 3 * (i - 1)
  table.insert(out, tonumber(redis.call('GET', KEYS[b + 1]) or '0'))
  local ids = redis.call('ZRANGEBYSCORE', KEYS[b + 3], '(' .. ARGV[1], '+inf')
  local grants = {}
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', KEYS[b + 2], id)
    if raw then
      table.insert(grants, id)
      table.insert(grants, raw)
    end
  end
  table.insert(out, #grants / 2)
  for _, v in ipairs(grants) do table.insert(out, v) end
end
return out
