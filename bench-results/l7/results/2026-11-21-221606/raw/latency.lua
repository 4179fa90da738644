-- wrk script: after the run, print exact latency percentiles (microseconds) from wrk's
-- own histogram, so that p99.9 is available (wrk --latency stops at 99 %) and p50/p99
-- are not rounded by wrk's human-readable formatting. Parsed by lib/record.py.
--   taskset -c 0 wrk -t1 -c50 -d10s --latency -s latency.lua http://127.0.0.1:18080/ok
done = function(summary, latency, requests)
  io.write("LAT_US")
  for _, p in ipairs({ 50, 75, 90, 99, 99.9, 99.99 }) do
    io.write(string.format(" p%s=%d", tostring(p), latency:percentile(p)))
  end
  io.write(string.format(" min=%d max=%d mean=%.1f stdev=%.1f\n",
    latency.min, latency.max, latency.mean, latency.stdev))
  local e = summary.errors
  io.write(string.format("SUMMARY requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
