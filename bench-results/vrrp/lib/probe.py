#!/usr/bin/env python3
"""probe.py HOST PORT DURATION_S [INTERVAL_S=0.01] [TIMEOUT_S=0.2]

The client prober (from the anchor scripts). Every INTERVAL starts an independent attempt
(attempts overlap, so the time resolution is INTERVAL whatever TIMEOUT is): a new TCP
connection, an HTTP/1.0 GET, the body (the responder answers its box name). One line per
attempt:
  <t_start_epoch> <t_end_epoch> <ok|refused|timeout|error:...> <node|->
Starts no new attempt after DURATION seconds (hard bound: DURATION + TIMEOUT + 1)."""
import asyncio, sys, time

host, port, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
tmo = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
REQ = b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n"


async def attempt():
    t0 = time.time()
    res, node = "ok", "-"
    w = None
    try:
        async def go():
            nonlocal w
            r, w = await asyncio.open_connection(host, port)
            w.write(REQ)
            return await r.read()
        data = await asyncio.wait_for(go(), tmo)
        body = data.split(b"\r\n\r\n", 1)[-1].strip().decode(errors="replace")
        node = body or "-"
        if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\r\n", 1)[0] + b" ":
            res = "error:badreply"
    except ConnectionRefusedError:
        res = "refused"
    except asyncio.TimeoutError:
        res = "timeout"
    except OSError as e:
        res = "error:" + (e.strerror or str(e)).replace(" ", "_")
    finally:
        if w is not None:
            w.close()
    sys.stdout.write(f"{t0:.6f} {time.time():.6f} {res} {node}\n")
    sys.stdout.flush()


async def main():
    end = time.time() + dur
    tasks = set()
    nxt = time.time()
    while time.time() < end:
        t = asyncio.create_task(attempt())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        nxt += interval
        await asyncio.sleep(max(0.0, nxt - time.time()))
    if tasks:
        await asyncio.wait(tasks, timeout=tmo + 1)
    sys.stdout.flush()

asyncio.run(main())
