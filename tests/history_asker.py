"""A consumer process for the history tests: asks its history requests on one REQ socket, fetches
the pending ones by ticket until all are answered, and prints what happened as one JSON line.

python -m tests.history_asker REP_ENDPOINT REQUESTS_JSON
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import msgpack
import zmq


def main(endpoint: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)

    def ask(body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        t = time.monotonic()
        sock.send(msgpack.packb(body))
        return msgpack.unpackb(sock.recv()), time.monotonic() - t

    began = time.monotonic()
    results: list[dict[str, Any]] = []
    waiting: dict[str, dict[str, Any]] = {}  # ticket -> its result record
    for request in requests:
        reply, took = ask(request)
        record = {"request": request, "first_reply_s": took, "pending": bool(reply.get("pending"))}
        record |= {"eta_s": reply.get("eta_s"), "position": reply.get("position"), "message": reply.get("message")}
        results.append(record)
        if reply.get("pending"):
            waiting[reply["ticket"]] = record
        else:
            record["reply"] = reply
    while waiting:
        time.sleep(0.2)
        for ticket, record in list(waiting.items()):
            reply, _ = ask({"op": record["request"]["op"], "ticket": ticket})
            if not reply.get("pending"):
                record["reply"] = reply
                del waiting[ticket]
    done = time.monotonic() - began
    for record in results:
        reply = record.pop("reply")
        record |= {"ok": reply.get("ok"), "code": reply.get("code"), "error": reply.get("error"),
                   "bars": len(reply.get("bars", [])), "cached": reply.get("cached")}  # fmt: skip
    return {"seconds": done, "results": results}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
