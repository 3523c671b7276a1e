-- All-or-nothing check-and-charge of several credit pools of one account,
-- in one round trip. Every key shares the account's hash tag, so this runs on
-- one Redis Cluster slot.
--
-- KEYS[i]            usage counter of pool i for the current cycle
-- ARGV[3i-2]         amount to charge pool i (integer >= 0)
-- ARGV[3i-1]         limit of pool i this cycle; -1 = unlimited
-- ARGV[3i]           expire-at of pool i's counter, epoch ms; 0 = never
--                    (capacity pools count connected things and never reset)
--
-- Returns { ok, used_1, ..., used_n }: ok = 1 with the counts after charging,
-- or ok = 0 with the counts as found (nothing written).

local n = #KEYS
local used = {}
local fits = true

-- Pass 1: read every pool; decide before writing anything.
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  used[i] = current
  if limit >= 0 and current + amount > limit then
    fits = false
  end
end

if not fits then
  return { 0, unpack(used) }
end

-- Pass 2: charge every pool. The TTL is (re)set on every write so a counter
-- never outlives its cycle, whoever created it.
for i = 1, n do
  used[i] = redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  if ARGV[3 * i] ~= '0' then
    redis.call('PEXPIREAT', KEYS[i], ARGV[3 * i])
  end
end

return { 1, unpack(used) }
