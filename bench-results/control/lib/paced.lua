-- wrk script: each connection waits PACE_MS milliseconds after every response before it
-- sends its next request, so the offered load (about CONNS / (PACE_MS + latency)) stays
-- below what the load core can generate, the same with and without health checks.
local ms = tonumber(os.getenv("PACE_MS") or "1")
function delay()
  return ms
end
