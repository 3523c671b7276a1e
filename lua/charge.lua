-- All-or-nothing charge of several credit pools of one account, in one round
-- trip: plan allowance first, then top-up grants (earliest expiry first);
-- capacity releases; threshold alerts decided in the same atomic step.
-- Every key shares the account's hash tag, so this runs on one Cluster slot.
--
-- KEYS[1]            the account's key index (a set of every key written)
-- KEYS[2]            the idempotency record of this request, a hash: s = state
--                    ("pending" | "done"), f = fingerprint, c = the claim that
--                    holds it, r = the first response (unused without a key)
-- KEYS[3]            the account's live idempotency records (zset key -> expiry)
-- per pool i (base b = 3 + 4(i-1)):
--   KEYS[b+1]        used-from-plan counter for the cycle (or for all time: capacity)
--   KEYS[b+2]        grants of the credit type: hash id -> JSON {a=amount,u=used,x=expiresAt,c=createdAt}
--   KEYS[b+3]        grant expiry index: zset id -> expiresAt (ms)
--   KEYS[b+4]        alert marks of the cycle: hash threshold -> 1
--
-- ARGV[1]            now (epoch ms)
-- ARGV[2]            the request's fingerprint when it carries an idempotency key
--                    (KEYS[2]); "" without one
-- ARGV[3]            how long a claimed key stays "pending" unless renewed (ms)
-- ARGV[4]            the claim: who holds the key once claimed
-- ARGV[5]            m, the number of alert thresholds; ARGV[6..5+m] the thresholds (fractions)
-- per pool i (base c = 5 + m + 7(i-1)):
--   ARGV[c+1]        op: "c" charge, "r" release (capacity: give back, never below 0)
--   ARGV[c+2]        amount (integer >= 0)
--   ARGV[c+3]        plan limit this cycle; -1 = unlimited; 0 = not in the plan
--                    (grants only; refused, even for 0, without an active grant)
--   ARGV[c+4]        expire-at of the cycle's keys (epoch ms); 0 = never
--   ARGV[c+5]        "1" if top-ups and alerts apply to this pool (consumables), else "0"
--   ARGV[c+6]        "1" in shadow mode: never refuse; what does not fit is still
--                    counted (as plan usage beyond the limit) and reported
--   ARGV[c+7]        the least amount that will do (a hold takes what remains
--                    down to this); equal to the amount for a plain charge
--
-- Returns { 2, state, fingerprint, response or nil } when the idempotency key
-- was already claimed (state: "pending" while the first request runs, "done"
-- after it), charging nothing: the caller compares fingerprints.
-- Otherwise { ok, pool_1 ..., pool_n } flattened, each pool as
--   planUsed, grantTotal, grantUsed, flags, charged, planDelta, firedCount, fired...,
--   drawCount, (grantId, amount)...
-- charged: the amount taken (less than asked for a hold that took what remained);
-- planDelta: how the plan counter moved (negative for a release).
-- flags: 1 = shadow pool that would have been refused, 2 = this charge emptied
-- the pool (first time this cycle). ok = 1: the counts after the charge;
-- ok = 0: as found, nothing written.

-- Grants are written with integer formatting, never cjson.encode: cjson keeps
-- 14 significant digits (%.14g), which would round an expiry after the year
-- 5138 (and amounts above 10^14). Every field is a whole number below 2^53,
-- which Lua's doubles and %d hold exactly. The same in charge, topup, refund.
local function grantJson(g)
  return string.format('{"a":%d,"u":%d,"x":%d,"c":%d}', g.a, g.u, g.x, g.c)
end

local now = tonumber(ARGV[1])
local fingerprint = ARGV[2]
local idempotent = fingerprint ~= ''
local m = tonumber(ARGV[5])
local thresholds = {}
for t = 1, m do thresholds[t] = ARGV[5 + t] end
local n = (#KEYS - 3) / 4

-- A repeated idempotency key is decided before anything is read or written:
-- the same request is never charged twice, even while the first is in flight.
if idempotent then
  local seen = redis.call('HMGET', KEYS[2], 's', 'f', 'r')
  if seen[1] then return { 2, seen[1], seen[2] or '', seen[3] } end
end

local pools = {}
local fits = true

-- Pass 1: read everything and plan each pool's draw; write nothing.
for i = 1, n do
  local b = 3 + 4 * (i - 1)
  local c = 5 + m + 7 * (i - 1)
  local p = {
    op = ARGV[c + 1],
    amount = tonumber(ARGV[c + 2]),
    limit = tonumber(ARGV[c + 3]),
    expireAt = ARGV[c + 4],
    extras = ARGV[c + 5] == '1',
    shadow = ARGV[c + 6] == '1',
    minAmount = tonumber(ARGV[c + 7]),
    charged = 0,
    planDelta = 0,
    wouldRefuse = false,
    emptied = false,
    planUsed = 0,
    exists = false,
    grants = {},
    grantTotal = 0,
    grantUsed = 0,
    fromPlan = 0,
    draws = {},
    fired = {},
  }
  local raw = redis.call('GET', KEYS[b + 1])
  if raw then
    p.planUsed = tonumber(raw)
    p.exists = true
  end
  if p.extras then
    -- Active grants only (expiry strictly after now), earliest expiry first.
    local ids = redis.call('ZRANGEBYSCORE', KEYS[b + 3], '(' .. now, '+inf')
    for _, id in ipairs(ids) do
      local raw = redis.call('HGET', KEYS[b + 2], id)
      if raw then
        local g = cjson.decode(raw)
        g.id = id
        table.insert(p.grants, g)
        p.grantTotal = p.grantTotal + g.a
        p.grantUsed = p.grantUsed + g.u
      end
    end
  end
  if p.op == 'c' then
    p.charged = p.amount
    if p.limit < 0 then
      p.fromPlan = p.amount
    else
      local room = math.max(0, p.limit - p.planUsed)
      p.fromPlan = math.min(p.amount, room)
      local rest = p.amount - p.fromPlan
      for _, g in ipairs(p.grants) do
        if rest == 0 then break end
        local take = math.min(rest, g.a - g.u)
        if take > 0 then
          table.insert(p.draws, { g, take })
          rest = rest - take
        end
      end
      -- Limit 0 is a pool outside the plan: only grants fill it, and
      -- without an active grant it refuses any charge, even of 0.
      local notInPlan = p.limit == 0 and #p.grants == 0
      if rest > 0 or notInPlan then
        if p.shadow then
          p.fromPlan = p.fromPlan + rest
          p.wouldRefuse = true
        elseif not notInPlan and p.amount - rest >= p.minAmount and p.minAmount < p.amount then
          p.charged = p.amount - rest
        else
          fits = false
        end
      end
    end
  end
  pools[i] = p
end

local function encode(out, p)
  table.insert(out, p.planUsed)
  table.insert(out, p.grantTotal)
  table.insert(out, p.grantUsed)
  table.insert(out, (p.wouldRefuse and 1 or 0) + (p.emptied and 2 or 0))
  table.insert(out, p.charged)
  table.insert(out, p.planDelta)
  table.insert(out, #p.fired)
  for _, f in ipairs(p.fired) do table.insert(out, f) end
  table.insert(out, #p.draws)
  for _, d in ipairs(p.draws) do
    table.insert(out, d[1].id)
    table.insert(out, d[2])
  end
end

if not fits then
  local out = { 0 }
  for i = 1, n do
    pools[i].draws = {}
    pools[i].wouldRefuse = false
    pools[i].charged = 0
    encode(out, pools[i])
  end
  return out
end

-- Pass 2: apply. Counters get their expiry on every write; a key written
-- for the first time joins the account's key index, which is how DELETE
-- finds an account's keys without a SCAN. The index lives as long as its
-- longest-lived key (forever once it holds a capacity counter).
local function index(key, expireAt)
  local before = redis.call('PEXPIRETIME', KEYS[1])
  redis.call('SADD', KEYS[1], key)
  if expireAt == '0' then
    redis.call('PERSIST', KEYS[1])
  elseif before == -2 or (before > 0 and before < tonumber(expireAt)) then
    redis.call('PEXPIREAT', KEYS[1], expireAt)
  end
end

-- Claimed only when the charge succeeds: a refused request leaves the key
-- free for a retry; a refund releases it again (refund.lua). Listed with its
-- expiry, so that DELETE of the account finds it; expired entries are pruned
-- here, so the list holds live records only.
if idempotent then
  local expireAt = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 's', 'pending', 'f', fingerprint, 'c', ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], expireAt, KEYS[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('PEXPIRETIME', KEYS[3]) < expireAt then redis.call('PEXPIREAT', KEYS[3], string.format('%d', expireAt)) end
end

local out = { 1 }
for i = 1, n do
  local b = 3 + 4 * (i - 1)
  local p = pools[i]
  if p.op == 'r' then
    local give = math.min(p.amount, p.planUsed)
    p.charged = give
    if give > 0 then
      p.planUsed = redis.call('DECRBY', KEYS[b + 1], give)
      p.planDelta = -give
    end
  else
    if p.fromPlan > 0 then
      p.planUsed = redis.call('INCRBY', KEYS[b + 1], p.fromPlan)
      p.planDelta = p.fromPlan
      if p.expireAt ~= '0' then redis.call('PEXPIREAT', KEYS[b + 1], p.expireAt) end
      if not p.exists then index(KEYS[b + 1], p.expireAt) end
    end
    for _, d in ipairs(p.draws) do
      local g = d[1]
      g.u = g.u + d[2]
      p.grantUsed = p.grantUsed + d[2]
      redis.call('HSET', KEYS[b + 2], g.id, grantJson(g))
    end
    -- Alerts: a threshold fires the first time usage reaches it in a cycle,
    -- however many requests reach it at once and whatever the allowance did.
    if p.extras and p.limit >= 0 then
      local allowance = p.limit + p.grantTotal
      local used = p.planUsed + p.grantUsed
      if allowance > 0 then
        local marked = false
        for _, t in ipairs(thresholds) do
          if used >= tonumber(t) * allowance and redis.call('HSETNX', KEYS[b + 4], t, now) == 1 then
            table.insert(p.fired, t)
            marked = true
          end
        end
        -- "emptied" is tracked apart from the configured thresholds: it feeds
        -- the accounts-exhausted gauge whatever alerts are configured.
        if used >= allowance and redis.call('HSETNX', KEYS[b + 4], 'empty', now) == 1 then
          p.emptied = true
          marked = true
        end
        if marked then
          redis.call('PEXPIREAT', KEYS[b + 4], p.expireAt)
          index(KEYS[b + 4], p.expireAt)
        end
      end
    end
  end
  encode(out, p)
end
return out
