#!/usr/bin/env python3
"""judgeproxy: a loopback stand-in for a live proxy on the internet, for mubeng's check mode.

mubeng --check always fetches https://ipinfo.io/json through each proxy (CONNECT ipinfo.io:443)
and does not verify the certificate. The lab's proxies refuse every target that is not a
loopback address, by design (they never resolve a name), so through them every proxy is dead.
This one accepts exactly `CONNECT ipinfo.io:443` and tunnels it to the lab's TLS judge, which
answers any path with a JSON page; every other request gets 403. It never resolves a name and
only ever connects to the judge, a loopback address: nothing leaves the machine.

    python3 judgeproxy.py --judge-file LABDIR/judge.txt [--listen 127.0.0.1:0] [--url-file FILE]

With port 0 (the default) the kernel picks a free port: nobody can take it between a pick and
the bind. The proxy's URL (http://127.0.0.1:PORT) is written to --url-file, through a temporary
file renamed into place, before "judgeproxy ready" is logged. SIGTERM/SIGINT stop it (exit 0).
"""
import argparse
import asyncio
import ipaddress
import os
import signal
import sys
import urllib.parse

TARGET = "ipinfo.io:443"


def judge_addr(path):
    with open(path) as f:
        lines = f.read().split()
    u = urllib.parse.urlsplit(lines[1])  # line 2: the TLS judge
    if u.scheme != "https" or not ipaddress.ip_address(u.hostname).is_loopback:
        raise SystemExit("judgeproxy: %s: want an https URL on a loopback address, got %r" % (path, lines[1]))
    return u.hostname, u.port


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            w.write_eof()
        except (OSError, RuntimeError):
            pass


async def handle(judge, reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        method, target = (head.split(b"\r\n", 1)[0].decode("latin-1").split(" ") + ["", ""])[:2]
        if method != "CONNECT" or target.lower() != TARGET:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        ur, uw = await asyncio.wait_for(asyncio.open_connection(*judge), 10)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))
        uw.close()
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen, judge, url_file):
    host, port = listen.rsplit(":", 1)
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("judgeproxy: --listen %s: loopback addresses only" % listen)
    server = await asyncio.start_server(lambda r, w: handle(judge, r, w), host, int(port))
    listen = "%s:%d" % server.sockets[0].getsockname()[:2]
    if url_file:
        tmp = url_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("http://%s\n" % listen)
        os.replace(tmp, url_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print("judgeproxy ready listen=%s %s->%s:%d" % (listen, TARGET, judge[0], judge[1]), flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    print("judgeproxy stopped", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0", help="loopback address (port 0: any free port)")
    p.add_argument("--judge-file", required=True, help="the lab's judge.txt")
    p.add_argument("--url-file", help="write the proxy's URL here once listening")
    a = p.parse_args()
    asyncio.run(serve(a.listen, judge_addr(a.judge_file), a.url_file))


if __name__ == "__main__":
    sys.exit(main())
