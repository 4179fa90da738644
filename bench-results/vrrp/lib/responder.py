#!/usr/bin/env python3
"""responder.py HOST PORT NAME [MAX_SECONDS=7200]

Tiny HTTP/1.1 server answering every request `200` with body NAME (keep-alive honoured,
Connection: close and HTTP/1.0 close). The data plane of a Keepalived box (0.0.0.0:80) or
the local server behind halb (127.0.0.1:PORT). Exits by itself after MAX_SECONDS."""
import asyncio, sys

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
max_s = float(sys.argv[4]) if len(sys.argv) > 4 else 7200.0


async def handle(r, w):
    try:
        while True:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
            low = head.lower()
            close = b"connection: close" in low or head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0")
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (len(name), b"Connection: close\r\n" if close else b"", name))
            await w.drain()
            if close:
                break
    except Exception:
        pass
    finally:
        w.close()


async def main():
    srv = await asyncio.start_server(handle, host, port, reuse_address=True, backlog=1024)
    async with srv:
        await asyncio.sleep(max_s)

asyncio.run(main())
