"""A minimal local S3/DynamoDB/SQS endpoint for benchmarks: answers as fast as it can.

The emulator (moto) needs about 1.8 ms of its own CPU per PutItem, which would hide the
processors' cost. This sink does the least that keeps the SDKs (boto3, aws-sdk-rust) content:

- S3 GetObject / HeadObject (path-style `GET /<bucket>/<key>`): serves files of a directory
  (the key's last path element is the file name), with Content-Length, Last-Modified, ETag and
  x-amz-version-id; the body is sent with sendfile.
- DynamoDB (`X-Amz-Target: DynamoDB_20120810.<Op>`): `{}` for every operation (every
  conditional PutItem "succeeds"); nothing is stored.
- SQS JSON protocol (`X-Amz-Target: AmazonSQS.SendMessageBatch` / `SendMessage`): every entry
  is Successful, with the MD5 of its body; the bodies are counted, not kept.

HTTP/1.1 keep-alive on 127.0.0.1 only; several worker processes share the port
(SO_REUSEPORT). Counters are written to `--stats` on SIGTERM.

    python bench/sink.py --dir DATA --port-file PORTFILE [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import uuid
from pathlib import Path

LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.puts = 0
        self.messages = 0
        self.gets = 0


def _response(status: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


JSON_10 = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "sink"}


def _sqs(op: str, body: bytes, counters: Counters) -> bytes:
    doc = json.loads(body or b"{}")
    if op == "SendMessageBatch":
        ok = []
        for entry in doc.get("Entries", []):
            text = entry.get("MessageBody", "")
            ok.append(
                {
                    "Id": entry.get("Id"),
                    "MessageId": str(uuid.uuid4()),
                    "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest(),
                }
            )
        counters.messages += len(ok)
        return _response("200 OK", json.dumps({"Successful": ok, "Failed": []}).encode(), JSON_10)
    if op == "SendMessage":
        counters.messages += 1
        text = doc.get("MessageBody", "")
        out = {
            "MessageId": str(uuid.uuid4()),
            "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest(),
        }
        return _response("200 OK", json.dumps(out).encode(), JSON_10)
    return _response("200 OK", b"{}", JSON_10)


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    data_dir: Path,
    counters: Counters,
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            counters.requests += 1
            amz_target = headers.get("x-amz-target", "")
            if amz_target.startswith("DynamoDB_20120810."):
                counters.puts += 1
                writer.write(_response("200 OK", b"{}", JSON_10))
            elif amz_target.startswith("AmazonSQS."):
                writer.write(_sqs(amz_target.split(".", 1)[1], body, counters))
            elif method in ("GET", "HEAD"):
                path = target.split("?", 1)[0]
                name = path.rsplit("/", 1)[-1]
                file = data_dir / name
                if not name or not file.is_file():
                    xml = b"<Error><Code>NoSuchKey</Code><Message>not found</Message></Error>"
                    writer.write(_response("404 Not Found", xml, {"Content-Type": "text/xml"}))
                else:
                    size = file.stat().st_size
                    headers_out = {
                        "Content-Type": "application/octet-stream",
                        "Last-Modified": LAST_MODIFIED,
                        "ETag": '"bench"',
                        "x-amz-version-id": "bench-v1",
                    }
                    head_bytes = _response("200 OK", b"", headers_out)
                    # _response wrote Content-Length 0: replace it with the real size.
                    head_bytes = head_bytes.replace(
                        b"Content-Length: 0", f"Content-Length: {size}".encode(), 1
                    )
                    writer.write(head_bytes)
                    if method == "GET":
                        counters.gets += 1
                        await writer.drain()
                        with file.open("rb") as f:
                            await asyncio.get_running_loop().sendfile(writer.transport, f)
            else:
                writer.write(_response("400 Bad Request", b"{}", JSON_10))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def _worker(sock: socket.socket, data_dir: Path, stats: Path | None) -> None:
    counters = Counters()

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, data_dir, counters), sock=sock, limit=1 << 20
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())
    if stats is not None:
        line = json.dumps({"pid": os.getpid(), **counters.__dict__}, separators=(",", ":"))
        with stats.open("a") as f:
            f.write(line + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stats", type=Path)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    procs = [
        multiprocessing.Process(target=_worker, args=(sock, args.dir, args.stats), daemon=True)
        for _ in range(args.workers)
    ]
    for p in procs:
        p.start()
    args.port_file.write_text(str(sock.getsockname()[1]))

    def stop(*_: object) -> None:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid or 0, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for p in procs:
        p.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
