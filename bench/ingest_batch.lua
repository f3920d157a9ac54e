-- wrk script for bench/ingest_bench.py: analytics-python-shaped batches to POST /v1/batch.
--
-- Usage: wrk ... -s ingest_batch.lua URL -- <write_key_basic_b64> <batch_size> <duration_s> <drain_s>
--
-- * Every request is a fresh batch of <batch_size> messages with unique messageIds (thread, request,
--   index), so de-duplication keeps all of them: 80 % track, 10 % identify, 10 % page, each with a
--   context (library, IP, user agent), properties or traits, a client timestamp, and a batch sentAt.
-- * Basic auth with the write key, as analytics-python 2.4 sends it.
-- * For the last <drain_s> seconds every request is an OPTIONS preflight (answered, stores nothing),
--   so when wrk stops no batch is left in flight: batches sent = batches the server answered.
-- * 429 answers (the server shedding load) are counted; their events are not stored.
-- done() prints one line starting with SIYU_INGEST.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } siyu_timespec;
int clock_gettime(int clk_id, siyu_timespec *tp);
]]
local ts = ffi.new("siyu_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local counter = 0
thread_id = 0 -- set per thread by setup()
batches_sent = 0
drain_sent = 0
shed = 0
errors = 0
local deadline, batch_size, headers, drain_request

local events = { "Order Completed", "Product Viewed", "Coupon Redeemed", "Added to Cart", "Member Joined" }
local cities = { "Shanghai", "Hangzhou", "Shenzhen", "Chengdu", "Beijing" }

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  batch_size = tonumber(args[2] or "100")
  local duration = tonumber(args[3] or "10")
  local drain = tonumber(args[4] or "0.5")
  deadline = now() + duration - drain
  headers = {
    ["Authorization"] = "Basic " .. args[1],
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "analytics-python/2.4.0",
  }
  drain_request = wrk.format("OPTIONS", "/v1/batch", { ["Origin"] = "https://bench.example" })
end

local function message(n)
  local user = n % 5000
  local kind = n % 10
  local common = string.format(
    '"messageId":"b%d-%d","anonymousId":"anon-%d","userId":"user-%d","timestamp":"2026-11-22T08:00:00.%03d+00:00",'
      .. '"context":{"library":{"name":"analytics-python","version":"2.4.0"},"ip":"10.%d.%d.%d",'
      .. '"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0.50"},"integrations":{}',
    thread_id, n, user, user, n % 1000, n % 200, n % 250, n % 199
  )
  if kind == 0 then
    return string.format('{"type":"identify",%s,"traits":{"city":"%s","level":%d}}', common, cities[n % 5 + 1], n % 7)
  elseif kind == 1 then
    return string.format(
      '{"type":"page",%s,"name":"Product","properties":{"url":"https://shop.example.com/p/%d","path":"/p/%d"}}',
      common, n % 300, n % 300
    )
  end
  return string.format(
    '{"type":"track",%s,"event":"%s","properties":{"revenue":%d.5,"currency":"CNY","sku":"SKU-%d"}}',
    common, events[n % 5 + 1], n % 500, n % 800
  )
end

function request()
  if now() >= deadline then
    drain_sent = drain_sent + 1
    return drain_request
  end
  batches_sent = batches_sent + 1
  local parts = {}
  for i = 1, batch_size do
    counter = counter + 1
    parts[i] = message(counter)
  end
  local body = '{"batch":[' .. table.concat(parts, ",") .. '],"sentAt":"2026-11-22T08:00:01.000+00:00"}'
  return wrk.format("POST", "/v1/batch", headers, body)
end

function response(status, headers_, body)
  if status == 429 then
    shed = shed + 1
  elseif status ~= 200 then
    errors = errors + 1
  end
end

function done(summary, latency, requests_)
  local sent, drains, shed_total, error_total = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("batches_sent")
    drains = drains + t:get("drain_sent")
    shed_total = shed_total + t:get("shed")
    error_total = error_total + t:get("errors")
  end
  io.write(string.format("SIYU_INGEST batches_sent=%d drain_sent=%d shed=%d errors=%d\n", sent, drains, shed_total,
    error_total))
end
