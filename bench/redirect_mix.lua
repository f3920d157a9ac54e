-- wrk script for bench/redirect_bench.py: a realistic mix of short-link visits.
--
-- Usage: wrk ... -s redirect_mix.lua URL -- <duration_s> <drain_s>
--
-- * Paths: the demo links of `siyu init` (coffee, coffee/q, get-app, ab-test); every one answers
--   2xx/3xx for every UA below (no QQ UA: get-app blocks QQ; no wx-only: it refuses non-WeChat).
-- * User agents: several hundred distinct WeChat (iOS/Android), mobile browsers, HarmonyOS,
--   desktop and link-preview bots, weighted towards WeChat as for a Chinese private-domain shop.
-- * Half the visits carry a returning visitor's sy_vid cookie, the rest are new visitors.
-- * For the last <drain_s> seconds every request goes to /zz-bench-drain, an unknown slug: a 404
--   that records no click. So when wrk stops, no link request is left in flight, and
--   "link responses" (2xx/3xx) = link requests sent = clicks the server must record, exactly.
--   done() prints the per-run counters on one line starting with SIYU_BENCH.

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

local ios_versions = { "15_8", "16_6", "16_7_8", "17_1_2", "17_4_1", "17_5", "17_6_1", "18_0", "18_1_1", "18_3" }
local android_models = {
  "V2227A Build/TP1A.220624.014", "PJD110 Build/UKQ1.230924.001", "ALN-AL00 Build/HUAWEIALN-AL00",
  "M2012K11AC Build/TKQ1.220829.002", "SM-S9180 Build/UP1A.231005.007", "PGT-AN10 Build/HONORPGT-AN10",
  "RMX3562 Build/TP1A.220905.001", "23049RAD8C Build/TKQ1.221114.001", "V2309A Build/UP1A.231005.007",
  "LE2120 Build/RKQ1.201105.002", "2201122C Build/TKQ1.220807.001", "NOH-AN00 Build/HUAWEINOH-AN00",
}
local android_versions = { "10", "11", "12", "13", "14" }
local wechat_versions = {
  "8.0.44(0x18002c2d)", "8.0.47(0x18002f2c)", "8.0.49(0x18003129)", "8.0.50(0x1800323c)", "8.0.53(0x18003531)",
}
local chrome_versions = { "116.0.5845.163", "120.0.6099.230", "124.0.6367.118", "126.0.6478.127", "131.0.6778.86" }

local function pick(list)
  return list[math.random(#list)]
end

local function user_agent()
  local r = math.random(100)
  if r <= 28 then -- WeChat on iPhone
    return "Mozilla/5.0 (iPhone; CPU iPhone OS " .. pick(ios_versions) ..
        " like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/" ..
        pick(wechat_versions) .. " NetType/WIFI Language/zh_CN"
  elseif r <= 50 then -- WeChat on Android (XWEB)
    return "Mozilla/5.0 (Linux; Android " .. pick(android_versions) .. "; " .. pick(android_models) ..
        "; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/" .. pick(chrome_versions) ..
        " Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2585 MicroMessenger/8.0.47.2560(0x28002F30)" ..
        " WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
  elseif r <= 63 then -- Safari on iPhone
    local v = pick(ios_versions)
    return "Mozilla/5.0 (iPhone; CPU iPhone OS " .. v ..
        " like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
  elseif r <= 73 then -- Chrome on Android
    return "Mozilla/5.0 (Linux; Android " .. pick(android_versions) .. "; " .. pick(android_models) ..
        ") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" .. pick(chrome_versions) .. " Mobile Safari/537.36"
  elseif r <= 77 then -- HarmonyOS NEXT browser
    return "Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0" ..
        " Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300"
  elseif r <= 91 then -- desktop Chrome / Edge on Windows
    return "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" ..
        pick(chrome_versions) .. " Safari/537.36"
  elseif r <= 96 then -- Safari on a Mac
    return "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)" ..
        " Version/17.4.1 Safari/605.1.15"
  elseif r <= 98 then
    return "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
  else
    return "WhatsApp/2.23.20.0 A"
  end
end

local paths = { "/coffee", "/coffee", "/coffee", "/coffee/q", "/get-app", "/get-app", "/ab-test", "/ab-test" }
local pool_size = 4096
local requests = {}
local drain_request
local deadline
local idx = 0
link_sent = 0
drain_sent = 0
link_seconds = 0

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  local duration = tonumber(args[1] or "10")
  local drain = tonumber(args[2] or "0.5")
  local started = now()
  deadline = started + duration - drain
  link_seconds = duration - drain
  math.randomseed(12345)
  local visitors = {}
  for i = 1, 500 do
    visitors[i] = string.format("bench%011d", i)
  end
  for i = 1, pool_size do
    local headers = {
      ["User-Agent"] = user_agent(),
      ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
      ["Accept-Language"] = (math.random(10) <= 7) and "zh-CN,zh;q=0.9,en;q=0.8" or "en-US,en;q=0.9",
    }
    if math.random(2) == 1 then
      headers["Cookie"] = "sy_vid=" .. pick(visitors)
    end
    if math.random(4) == 1 then
      headers["Referer"] = "https://mp.weixin.qq.com/s/abcdef"
    end
    requests[i] = wrk.format("GET", pick(paths), headers)
  end
  drain_request = wrk.format("GET", "/zz-bench-drain", { ["User-Agent"] = "siyu-bench-drain" })
end

function request()
  if now() < deadline then
    idx = idx % pool_size + 1
    link_sent = link_sent + 1
    return requests[idx]
  end
  drain_sent = drain_sent + 1
  return drain_request
end

function done(summary, latency, requests_)
  local links, drains, seconds = 0, 0, 0
  for _, t in ipairs(threads) do
    links = links + t:get("link_sent")
    drains = drains + t:get("drain_sent")
    seconds = math.max(seconds, t:get("link_seconds"))
  end
  io.write(string.format("SIYU_BENCH link_sent=%d drain_sent=%d link_seconds=%.3f\n", links, drains, seconds))
end
