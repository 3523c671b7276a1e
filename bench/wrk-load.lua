-- The bench's HTTP load for wrk (bench/wrk-load.mjs starts it): POSTs to one
-- path, each for a random account out of `accounts` named `<prefix><n>`, as
-- the charged rows need; done() prints the run's figures as one JSON line.
-- Arguments after `--`: path, prefix, accounts.

local path, prefix, accounts = "/", "a", 1
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  path = args[1] or path
  prefix = args[2] or prefix
  accounts = tonumber(args[3] or accounts)
  -- Each thread its own sequence: two threads must not walk the same accounts in step.
  math.randomseed(os.time() * 1000 + seed)
end

function request()
  return wrk.format("POST", path, { ["x-account-id"] = prefix .. math.random(0, accounts - 1), ["x-task-count"] = "1" })
end

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"statusAbove399":%d,"socketErrors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
