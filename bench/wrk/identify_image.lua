-- wrk: POST /v1/identify with one image as the raw body (bench/service.sh).
-- FG_BENCH_IMAGE: the JPEG; FG_BENCH_KEY: an API key with scope recognize.
local f = assert(io.open(os.getenv("FG_BENCH_IMAGE"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "image/jpeg"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FG_BENCH_KEY")

done = function(summary, latency, requests)
  io.write(string.format(
    "WRK_JSON {\"requests\": %d, \"rate\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"non2xx\": %d, \"errors\": %d}\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
