-- Marks a request idempotency record "done" and keeps its first response, so
-- that a replay is answered from it instead of reaching the upstream again.
-- A record no longer there (refunded, expired) is not brought back: a retry
-- may claim the key anew.
--
-- KEYS[1]  the account's key index (DELETE finds the record through it)
-- KEYS[2]  the request's idempotency record (hash: s, f, r)
-- ARGV[1]  how long the record is kept from now (ms)
-- ARGV[2]  now (epoch ms)
-- ARGV[3]  the response to keep; "" when none could be kept
--
-- Returns 1 when the record was completed, 0 when it was gone.

if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 's', 'done')
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'r', ARGV[3]) end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
-- The index lives as long as its longest-lived key (forever when it has no TTL).
local expireAt = tonumber(ARGV[2]) + tonumber(ARGV[1])
local before = redis.call('PEXPIRETIME', KEYS[1])
redis.call('SADD', KEYS[1], KEYS[2])
if before == -2 or (before > 0 and before < expireAt) then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', expireAt))
end
return 1
