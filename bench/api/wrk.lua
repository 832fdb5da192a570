-- wrk script for bench/api.sh.
--   wrk ... -s bench/api/wrk.lua <url> -- post '<json body>'   POST the body as JSON
--   wrk ... -s bench/api/wrk.lua <url>                         GET (method from wrk)
-- Authentication headers (X-Tenant-ID, Authorization) are passed with wrk -H.
-- At the end it prints one machine-readable line, "BENCH_RESULT {...}", with the
-- request count, duration, error counts and latency percentiles (microseconds), the
-- same figures wrk's --latency report shows.

function init(args)
  if args[1] == "post" then
    wrk.method = "POST"
    wrk.body = args[2]
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "rps": %.2f, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx_3xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
