-- wrk: the soak's mixed requests (bench/soak.sh). Run with one connection per thread
-- (-tN -cN) so each thread's subject create / get / patch / enroll / delete stay in order.
-- FG_BENCH_KEY: an admin key; FG_BENCH_IMAGE: a JPEG with one face; FG_BENCH_PROBE: a JSON body
-- {"embedding": [...], "model_id": "..."} of the gallery's model; FG_BENCH_STREAM: a stream id.
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local image, probe, stream, auth
s2, s4, s5, n = 0, 0, 0, 0
local step = 0

function init(args)
  image = slurp(os.getenv("FG_BENCH_IMAGE"))
  probe = slurp(os.getenv("FG_BENCH_PROBE"))
  stream = os.getenv("FG_BENCH_STREAM") or "cam1"
  auth = "Bearer " .. os.getenv("FG_BENCH_KEY")
end

local function req(method, path, ctype, body)
  local h = {["Authorization"] = auth}
  if ctype then h["Content-Type"] = ctype end
  return wrk.format(method, path, h, body)
end

function request()
  step = step % 12 + 1
  local id = "soak-" .. tid .. "-" .. n
  if step == 1 then return req("POST", "/v1/identify", "image/jpeg", image)
  elseif step == 2 then return req("POST", "/v1/identify", "application/json", probe)
  elseif step == 3 then return req("POST", "/v1/detect", "image/jpeg", image)
  elseif step == 4 then return req("POST", "/v1/subjects", "application/json", '{"id": "' .. id .. '"}')
  elseif step == 5 then return req("GET", "/v1/subjects/" .. id)
  elseif step == 6 then return req("PATCH", "/v1/subjects/" .. id, "application/json", '{"display_name": "Soak"}')
  elseif step == 7 then return req("POST", "/v1/subjects/" .. id .. "/faces?force=true", "image/jpeg", image)
  elseif step == 8 then return req("GET", "/v1/subjects?limit=5")
  elseif step == 9 then
    n = n + 1
    return req("DELETE", "/v1/subjects/" .. id)
  elseif step == 10 then return req("GET", "/v1/streams")
  elseif step == 11 then return req("GET", "/v1/streams/" .. stream .. "/frame.jpg")
  else return req("POST", "/v1/verify", "application/json",
                  '{"embedding1": ' .. probe:match('%[.-%]') .. ', "embedding2": ' .. probe:match('%[.-%]') .. '}')
  end
end

function response(status, headers, body)
  if status >= 500 then s5 = s5 + 1
  elseif status >= 400 then s4 = s4 + 1
  else s2 = s2 + 1 end
end

function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2")
    b = b + t:get("s4")
    c = c + t:get("s5")
  end
  io.write(string.format(
    "WRK_JSON {\"requests\": %d, \"rate\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"s2xx\": %d, \"s4xx\": %d, \"s5xx\": %d, \"errors\": %d}\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, a, b, c,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
