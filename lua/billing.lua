-- Applies one billing event to an account at most once and in order: the
-- dedupe, the ordering check and the write are one step, so replicas that
-- receive the same delivery (or two deliveries at once) cannot both apply it.
--
-- KEYS[1]  the account record (JSON)
-- KEYS[2]  the `created` (epoch s) of the last billing event applied
-- KEYS[3]  this event's id marker
-- KEYS[4]  the account's live idempotency records and markers (zset key -> expiry ms), for DELETE
-- ARGV[1]  the event's `created` (epoch s)
-- ARGV[2]  now (epoch ms)
-- ARGV[3]  how long the id and the last `created` are remembered (ms)
-- ARGV[4]  the record to write (JSON), or "" to remove it
--
-- Returns "applied", "duplicate" or "stale".

if redis.call('EXISTS', KEYS[3]) == 1 then return 'duplicate' end
local last = redis.call('GET', KEYS[2])
if last and tonumber(ARGV[1]) < tonumber(last) then return 'stale' end
if ARGV[4] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
local expireAt = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[4], expireAt, KEYS[2], expireAt, KEYS[3])
if redis.call('PEXPIRETIME', KEYS[4]) < expireAt then
  redis.call('PEXPIREAT', KEYS[4], string.format('%d', expireAt))
end
return 'applied'
