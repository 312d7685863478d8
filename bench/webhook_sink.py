"""A webhook receiver on loopback that answers 200 at once and notes when each delivery came.

    python -m bench.webhook_sink PORT     # prints "ready" once listening

Raw HTTP/1.1 on asyncio (keep-alive; only what the deliverer sends: POST with Content-Length),
so the receiver adds as little as it can to the latency it measures. `GET /arrivals` answers
[[arrival unix time, webhook-id, type, message timestamp], …] for every POST so far.
"""

from __future__ import annotations

import asyncio
import sys
import time

import msgspec
import uvloop

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class _Message(msgspec.Struct):
    type: str
    timestamp: str


_DECODE = msgspec.json.Decoder(_Message).decode
arrivals: list[tuple[float, str, str, str]] = []


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            arrived = time.time()
            lines = head.decode("latin-1").split("\r\n")
            fields = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            body = await reader.readexactly(int(fields.get("content-length", "0")))
            if lines[0].startswith("GET /arrivals"):
                out = msgspec.json.encode(arrivals)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(out) + out)
            else:
                writer.write(_OK)
                message = _DECODE(body)
                arrivals.append((arrived, fields["webhook-id"], message.type, message.timestamp))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
