#!/usr/bin/env python3
"""OTLP trace receiver for the collector's tests.

Runs oteltest's GrpcSink or HttpSink (PyPI oteltest 0.49.0) on 127.0.0.1:PORT
and appends every received ExportTraceServiceRequest to OUT as one JSON line:

  {"headers": {...}, "resourceSpans": [{"resource": {"service.name": "..."},
    "scopes": [{"name": ..., "version": ..., "spans": [{"traceId": hex,
    "spanId": hex, "parentSpanId": hex or "", "flags": int, "traceState": str,
    "name": str, "kind": int, "startTimeUnixNano": int, "endTimeUnixNano": int,
    "attributes": {key: {"string"|"int"|"bool"|"array": value}},
    "events": [...], "status": {"code": int, "message": str}}]}]}]}

Ids are lowercase hex and timestamps integers (not the base64 and strings of
protobuf's JSON mapping), so the Rust test compares them directly.
Prints "READY" on stdout once the port accepts connections; runs until
killed or until its stdin closes.

Usage: otlp_sink.py --protocol grpc|http --port PORT --out FILE
"""

import argparse
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import RequestHandler


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return {"string": v.string_value}
    if kind == "int_value":
        return {"int": v.int_value}
    if kind == "bool_value":
        return {"bool": v.bool_value}
    if kind == "double_value":
        return {"double": v.double_value}
    if kind == "array_value":
        return {"array": [any_value(x) for x in v.array_value.values]}
    return {kind or "empty": None}


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def span_json(s):
    return {
        "traceId": s.trace_id.hex(),
        "spanId": s.span_id.hex(),
        "parentSpanId": s.parent_span_id.hex(),
        "flags": s.flags,
        "traceState": s.trace_state,
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": s.start_time_unix_nano,
        "endTimeUnixNano": s.end_time_unix_nano,
        "attributes": attrs(s.attributes),
        "events": [
            {"name": e.name, "timeUnixNano": e.time_unix_nano, "attributes": attrs(e.attributes)}
            for e in s.events
        ],
        "status": {"code": s.status.code, "message": s.status.message},
    }


class FileHandler(RequestHandler):
    def __init__(self, path):
        self.lock = threading.Lock()
        self.out = open(path, "a", encoding="utf-8")

    def handle_trace(self, request, headers):
        line = {
            "headers": {str(k).lower(): str(v) for k, v in dict(headers).items()},
            "resourceSpans": [
                {
                    "resource": attrs(rs.resource.attributes),
                    "scopes": [
                        {
                            "name": ss.scope.name,
                            "version": ss.scope.version,
                            "spans": [span_json(s) for s in ss.spans],
                        }
                        for ss in rs.scope_spans
                    ],
                }
                for rs in request.resource_spans
            ],
        }
        with self.lock:
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()

    def handle_metrics(self, request, headers):
        pass

    def handle_logs(self, request, headers):
        pass


def main():
    # HttpSink's handler logs every request on stderr: keep test output readable.
    BaseHTTPRequestHandler.log_message = lambda *args, **kwargs: None
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    logger = logging.getLogger("otlp_sink")
    handler = FileHandler(a.out)
    if a.protocol == "grpc":
        sink = GrpcSink(handler, logger, port=a.port)
    else:
        sink = HttpSink(handler, logger, port=a.port)
    sink.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", a.port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        print("NOT READY", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    # Run until killed or stdin closes (read in small pieces: bounded memory).
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    sink.stop()


if __name__ == "__main__":
    main()
