#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A stand-in for model providers, for fabric/'s tests (issue 14).

Speaks OpenAI chat completions (POST <prefix>/v1/chat/completions, JSON and
SSE with stream_options.include_usage) and Anthropic messages (POST
<prefix>/v1/messages, JSON and its SSE events), with each provider's error
bodies, on 127.0.0.1 at a free port it writes to --port-file.

A test scripts it: POST /_script {"<prefix>": [step, ...], ...} queues
replies per path prefix (each provider of a test has its own prefix, its
base_url being http://127.0.0.1:PORT/<prefix>); GET /_log returns every
request received ({prefix, path, t, headers, body}), t in monotonic seconds.
A step:
  {"reply": "text", "text": "...", "usage": {...wire usage...},
   "tool_calls": [{"id", "name", "arguments": "<json text>"}]}
  {"reply": "error", "status": 429, "type": "...", "code": "...",
   "message": "...", "details": {...}}          (the provider's error body)
  {"reply": "error_event", "text": "before", "type": "overloaded_error"}
                                                 (HTTP 200 stream, then an error event)
  {"reply": "cut", "text": "..."}                (stream, then close: no terminal event)
and in any step: "headers": {...} (e.g. Retry-After, retry-after-ms),
"delay_ms" (before the status line: a slow first byte), "chunk_delay_ms".
An unscripted request gets a 500 naming the stand-in. It exits when its
parent does.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
QUEUES = {}
LOG = []


def openai_usage(u):
    u = dict(u or {})
    u.setdefault("prompt_tokens", 10)
    u.setdefault("completion_tokens", 5)
    u.setdefault("total_tokens", u["prompt_tokens"] + u["completion_tokens"])
    u.setdefault("prompt_tokens_details", {"cached_tokens": 0})
    u.setdefault("completion_tokens_details", {"reasoning_tokens": 0})
    return u


def anthropic_usage(u):
    u = dict(u or {})
    u.setdefault("input_tokens", 10)
    u.setdefault("output_tokens", 5)
    return u


def error_body(anthropic, step):
    etype = step.get("type", "api_error")
    msg = step.get("message", "scripted error")
    if anthropic:
        err = {"type": etype, "message": msg}
        if "details" in step:
            err["details"] = step["details"]
        return {"type": "error", "error": err, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return {"error": {"message": msg, "type": etype, "param": None, "code": step.get("code")}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                self.send(200, LOG)
        else:
            self.send(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path == "/_script":
            with LOCK:
                QUEUES.clear()
                QUEUES.update(json.loads(raw))
                LOG.clear()
            self.send(200, {"ok": True})
            return
        parts = self.path.split("/", 2)
        prefix = parts[1] if len(parts) > 2 else ""
        rest = "/" + parts[2] if len(parts) > 2 else self.path
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        hdrs = {k.lower(): v for k, v in self.headers.items()
                if k.lower() in ("authorization", "x-api-key", "anthropic-version", "content-type", "accept")}
        with LOCK:
            LOG.append({"prefix": prefix, "path": rest, "t": time.monotonic(), "headers": hdrs, "body": body})
            q = QUEUES.get(prefix) or []
            step = q.pop(0) if q else None
        anthropic = rest == "/v1/messages"
        if rest not in ("/v1/chat/completions", "/v1/messages"):
            self.send(404, error_body(anthropic, {"type": "not_found_error", "message": "no such path " + rest}))
            return
        if step is None:
            self.send(500, error_body(anthropic, {"type": "api_error", "message": "stand-in: nothing scripted"}))
            return
        time.sleep(step.get("delay_ms", 0) / 1000.0)
        stream = bool(body and body.get("stream"))
        kind = step.get("reply", "text")
        headers = step.get("headers", {})
        if kind == "error":
            self.send(step.get("status", 500), error_body(anthropic, step), headers=headers)
            return
        model = (body or {}).get("model", "m")
        if not stream:
            if kind != "text":
                self.send(500, error_body(anthropic, {"message": "stand-in: %s needs a stream" % kind}))
                return
            self.send(200, self.whole(anthropic, model, step), headers=headers)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        events = self.anthropic_events(model, step) if anthropic else self.openai_events(model, step)
        delay = step.get("chunk_delay_ms", 0) / 1000.0
        try:
            for ev in events:
                self.wfile.write(ev.encode())
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def whole(self, anthropic, model, step):
        text = step.get("text", "")
        calls = step.get("tool_calls", [])
        if anthropic:
            content = []
            if text:
                content.append({"type": "text", "text": text})
            for c in calls:
                content.append({"type": "tool_use", "id": c["id"], "name": c["name"],
                                "input": json.loads(c.get("arguments") or "{}")})
            return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                    "content": content, "model": model,
                    "stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None,
                    "usage": anthropic_usage(step.get("usage"))}
        msg = {"role": "assistant", "content": text if text or not calls else None, "refusal": None,
               "annotations": []}
        if calls:
            msg["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c.get("arguments", "{}")}}
                                 for c in calls]
        return {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
                "created": 1741569952, "model": model,
                "choices": [{"index": 0, "message": msg, "logprobs": None,
                             "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": openai_usage(step.get("usage"))}

    @staticmethod
    def pieces(text):
        return [text[i:i + 4] for i in range(0, len(text), 4)]

    def openai_events(self, model, step):
        kind = step.get("reply", "text")

        def chunk(delta, finish=None):
            return "data: " + json.dumps({"id": "chatcmpl-123", "object": "chat.completion.chunk",
                                          "created": 1694268190, "model": model,
                                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
        yield ": keep-alive comment\n\n"
        yield chunk({"role": "assistant", "content": ""})
        for p in self.pieces(step.get("text", "")):
            yield chunk({"content": p})
        if kind == "error_event":
            yield "data: " + json.dumps(error_body(False, step)) + "\n\n"
            return
        if kind == "cut":
            return
        calls = step.get("tool_calls", [])
        for i, c in enumerate(calls):
            yield chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                         "function": {"name": c["name"], "arguments": ""}}]})
            for p in self.pieces(c.get("arguments", "{}")):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
        yield chunk({}, "tool_calls" if calls else "stop")
        yield "data: " + json.dumps({"id": "chatcmpl-123", "object": "chat.completion.chunk",
                                     "created": 1694268190, "model": model, "choices": [],
                                     "usage": openai_usage(step.get("usage"))}) + "\n\n"
        yield "data: [DONE]\n\n"

    def anthropic_events(self, model, step):
        kind = step.get("reply", "text")
        usage = anthropic_usage(step.get("usage"))

        def ev(name, data):
            return "event: %s\ndata: %s\n\n" % (name, json.dumps(dict({"type": name}, **data)))
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        start_usage["output_tokens"] = 1
        yield ev("message_start", {"message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message",
                                               "role": "assistant", "content": [], "model": model,
                                               "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        yield ev("ping", {})
        idx = 0
        text = step.get("text", "")
        if text:
            yield ev("content_block_start", {"index": idx, "content_block": {"type": "text", "text": ""}})
            for p in self.pieces(text):
                yield ev("content_block_delta", {"index": idx, "delta": {"type": "text_delta", "text": p}})
            if kind == "text":
                yield ev("content_block_stop", {"index": idx})
            idx += 1
        if kind == "error_event":
            yield "event: error\ndata: " + json.dumps({"type": "error", "error": {
                "type": step.get("type", "overloaded_error"), "message": step.get("message", "Overloaded")}}) + "\n\n"
            return
        if kind == "cut":
            return
        calls = step.get("tool_calls", [])
        for c in calls:
            yield ev("content_block_start", {"index": idx, "content_block": {"type": "tool_use", "id": c["id"],
                                                                             "name": c["name"], "input": {}}})
            for p in self.pieces(c.get("arguments", "{}")):
                yield ev("content_block_delta", {"index": idx, "delta": {"type": "input_json_delta",
                                                                         "partial_json": p}})
            yield ev("content_block_stop", {"index": idx})
            idx += 1
        yield ev("message_delta", {"delta": {"stop_reason": "tool_use" if calls else "end_turn",
                                             "stop_sequence": None},
                                   "usage": {"output_tokens": usage["output_tokens"]}})
        yield ev("message_stop", {})


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
