#!/usr/bin/env python3
"""loadgen.py HOST PORT DURATION_S [CONNECTIONS=64]

Fallback load generator when wrk is not installed (apt-get install wrk): CONNECTIONS
keep-alive connections each sending GET / back to back for DURATION seconds (reconnecting
after an error, bounded). Prints `requests N errors E seconds S`."""
import asyncio, sys, time

host, port, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conns = int(sys.argv[4]) if len(sys.argv) > 4 else 64
REQ = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"
stats = {"ok": 0, "err": 0}


async def worker(end):
    while time.time() < end:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 1)
            while time.time() < end:
                w.write(REQ)
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":", 1)[1])
                await asyncio.wait_for(r.readexactly(n), 2)
                stats["ok"] += 1
            w.close()
        except Exception:
            stats["err"] += 1
            await asyncio.sleep(0.01)


async def main():
    t0 = time.time()
    end = t0 + dur
    await asyncio.wait_for(asyncio.gather(*(worker(end) for _ in range(conns))), dur + 10)
    print(f"requests {stats['ok']} errors {stats['err']} seconds {time.time() - t0:.1f}")

asyncio.run(main())
