#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""doc/openapi.json against doc/api.md, and both against a live coordinator.

  openapi-check.py static API_MD OPENAPI_JSON
  openapi-check.py live OPENAPI_JSON URL   (keys in $VIEWER_KEY, $OPERATOR_KEY, $ADMIN_KEY)

Prints one line per check, "PASS <what>" or "FAIL <what>: <why>", for the
shell test to turn into TAP. Standard library only; the schema check is the
subset of JSON Schema the document uses (type, enum, const, required,
properties, additionalProperties, items, pattern, $ref).
"""
import json
import re
import sys
import urllib.error
import urllib.request

ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
fails = 0


def report(ok, what, why=""):
    global fails
    if ok:
        print(f"PASS {what}")
    else:
        fails += 1
        print(f"FAIL {what}: {why}")


def md_routes(md):
    """(METHOD, /path/{..}) for each route doc/api.md documents."""
    routes = set()
    for m in re.finditer(r"`(GET|POST|PUT|DELETE) (/[^`\s\[]*)", md):
        method, path = m.group(1), m.group(2)
        path = re.sub(r"\{[^}]*\}", lambda x: x.group(0), path)
        alts = re.search(r"/([a-z]+(?:\|[a-z]+)+)$", path)
        for a in (alts.group(1).split("|") if alts else [None]):
            p = path[: alts.start(1)] + a if a else path
            if p.startswith("/v1/") or p in ("/healthz", "/metrics"):
                routes.add((method, p))
    for m in re.finditer(r"`(GET|POST|PUT|DELETE) (/healthz|/metrics)`", md):
        routes.add((m.group(1), m.group(2)))
    return routes


def md_errors(md):
    """(status, code) rows of doc/api.md's error table."""
    return {(int(s), c) for s, c in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", md, re.M)}


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        cur = doc
        for part in ref.lstrip("#/").split("/"):
            cur = cur[part]
        node = cur
    return node


def schema_errors(doc, schema, value, where="$"):
    s = resolve(doc, schema)
    errs = []
    types = s.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        pytypes = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
        okt = False
        for t in types:
            if t == "integer":
                okt |= isinstance(value, int) and not isinstance(value, bool)
            elif t == "number":
                okt |= isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                okt |= isinstance(value, pytypes[t])
        if not okt:
            return [f"{where}: {json.dumps(value)[:60]} is not {types}"]
    if "const" in s and value != s["const"]:
        errs.append(f"{where}: not {s['const']}")
    if "enum" in s and value not in s["enum"]:
        errs.append(f"{where}: {value!r} not in {s['enum']}")
    if "pattern" in s and isinstance(value, str) and not re.search(s["pattern"], value):
        errs.append(f"{where}: {value!r} does not match {s['pattern']}")
    if isinstance(value, dict):
        for r in s.get("required", []):
            if r not in value:
                errs.append(f"{where}: '{r}' missing")
        props = s.get("properties", {})
        for k, v in value.items():
            if k in props:
                errs += schema_errors(doc, props[k], v, f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                errs.append(f"{where}: unexpected '{k}'")
            elif isinstance(s.get("additionalProperties"), dict):
                errs += schema_errors(doc, s["additionalProperties"], v, f"{where}.{k}")
    if isinstance(value, list) and "items" in s:
        for i, v in enumerate(value):
            errs += schema_errors(doc, s["items"], v, f"{where}[{i}]")
    return errs


def refs_resolve(doc, node, where="$"):
    bad = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                try:
                    resolve(doc, node)
                except (KeyError, TypeError):
                    bad.append(f"{where}: {v}")
            else:
                bad += refs_resolve(doc, v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += refs_resolve(doc, v, f"{where}[{i}]")
    return bad


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete"):
                yield method.upper(), path, op


def static(md_file, oa_file):
    md = open(md_file).read()
    doc = json.load(open(oa_file))
    report(str(doc.get("openapi", "")).startswith("3.1."), "the document is OpenAPI 3.1", doc.get("openapi"))
    bad = refs_resolve(doc, doc)
    report(not bad, "every $ref resolves", ", ".join(bad[:3]))
    ops = {(m, p) for m, p, _ in operations(doc)}
    for method, path in sorted(md_routes(md)):
        report((method, path) in ops, f"api.md's {method} {path} is in the OpenAPI document", "missing")
    documented = md_routes(md)
    for method, path in sorted(ops):
        if path.startswith("/ui/") or path == "/v1/openapi.json":
            continue
        report((method, path) in documented, f"the OpenAPI document's {method} {path} is in api.md", "undocumented")
    err = resolve(doc, {"$ref": "#/components/schemas/Error"})
    codes = err["properties"]["error"]["properties"]["code"]["enum"]
    statuses = set()
    for _, _, op in operations(doc):
        for st, resp in op["responses"].items():
            r = resolve(doc, resp)
            sch = r.get("content", {}).get("application/json", {}).get("schema", {})
            if sch.get("$ref") == "#/components/schemas/Error":
                statuses.add(int(st))
    for status, code in sorted(md_errors(md)):
        report(code in codes and status in statuses,
               f"api.md's error {status} {code} is the Error schema's and an operation's", f"codes {codes}, statuses {sorted(statuses)}")
    report(set(codes) == {c for _, c in md_errors(md)}, "the Error codes are exactly api.md's", f"{codes}")
    for method, path, op in operations(doc):
        sec = op.get("security", doc.get("security"))
        if sec:
            report(op.get("x-autoos-role") in ROLE_RANK and "401" in op["responses"] and "403" in op["responses"],
                   f"{method} {path} names its role and answers 401 and 403", "no role or missing responses")


def request(url, method, key=None, body=None):
    """One request; a 429 of the failed-authentication throttle (the checks' own 401s, 20 in a
    burst) is waited out as its Retry-After says, as a client would, and made again."""
    import time

    for _ in range(10):
        status, headers, body_got = request_once(url, method, key, body)
        retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
        if status != 429 or b"failed authentications" not in body_got or not retry:
            break
        time.sleep(min(int(retry), 10))
    return status, headers, body_got


def request_once(url, method, key=None, body=None):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def check_answer(doc, op, method, path, status, headers, body, what):
    resp = op["responses"].get(str(status))
    if resp is None:
        report(False, what, f"status {status} is not declared ({sorted(op['responses'])}): {body[:200]!r}")
        return
    resp = resolve(doc, resp)
    sch = resp.get("content", {}).get("application/json", {}).get("schema")
    if sch is None or method == "HEAD":
        report(True, what)
        return
    try:
        value = json.loads(body)
    except ValueError as e:
        report(False, what, f"not JSON: {e}")
        return
    errs = schema_errors(doc, sch, value)
    report(not errs, what, "; ".join(errs[:4]))


def live(oa_file, base):
    import os

    doc = json.load(open(oa_file))
    keys = {r: os.environ.get(f"{r.upper()}_KEY") for r in ROLE_RANK}
    wf = os.environ.get("WORKFLOW_ID", "00000000-0000-4000-8000-000000000000")
    step = os.environ.get("STEP_ID", "hello")
    status, headers, body = request(base + "/v1/openapi.json", "GET")
    report(status == 200 and json.loads(body) == doc, "GET /v1/openapi.json (no key) serves doc/openapi.json", f"status {status}")
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    report(ctype.startswith("application/json"), "GET /v1/openapi.json is application/json", ctype)
    workflow = json.dumps({"name": "openapi-live", "steps": [{"id": "hello", "run": {"argv": ["/bin/echo", "hi"]}}]})
    bodies = {"/v1/workflows": workflow, "/v1/workflows/simulate": workflow, "/v1/runs": json.dumps({"argv": ["/bin/true"]}),
              "/v1/secrets/{name}": json.dumps({"value": "v"})}
    for method, path, op in operations(doc):
        url = base + path.replace("{id}", wf).replace("{step}", step).replace("{name}", "openapi-probe").replace("{path}", "")
        url = url.replace("{run}", f"{wf}.{step}.1").replace("{node}", os.environ.get("NODE_ID", "na"))
        if path == "/v1/events":
            continue  # a stream; test-api.sh and the browser test read it
        body = bodies.get(path)
        if op.get("security", doc.get("security")):
            st, h, b = request(url, method)
            check_answer(doc, op, method, path, st, h, b, f"{method} {path} without a key: {st}, declared, Error shape")
            report(st == 401, f"{method} {path} without a key is 401", f"got {st}")
            need = op["x-autoos-role"]
            below = [r for r in ROLE_RANK if ROLE_RANK[r] < ROLE_RANK[need]]
            if below:
                st, h, b = request(url, method, keys[below[-1]], body)
                check_answer(doc, op, method, path, st, h, b, f"{method} {path} as {below[-1]}: {st}, declared, Error shape")
                report(st == 403, f"{method} {path} as {below[-1]} (below {need}) is 403", f"got {st}")
            if method in ("GET",) or path == "/v1/workflows/simulate":
                st, h, b = request(url, method, keys["admin"], body)
                check_answer(doc, op, method, path, st, h, b, f"{method} {path} as admin: {st}, declared, body matches its schema")
                report(st < 300, f"{method} {path} as admin succeeds", f"got {st}: {b[:200]!r}")
        else:
            st, h, b = request(url, method)
            check_answer(doc, op, method, path, st, h, b, f"{method} {path} (no key): {st}, declared, matches")
    # Error shapes of the table, provoked.
    st, h, b = request(base + "/v1/no-such-route", "GET", keys["viewer"])
    check_answer(doc, {"responses": {"404": {"$ref": "#/components/responses/NotFound"}}}, "GET", "", st, h, b, f"an unknown route: {st} not_found, Error shape")
    report(st == 404 and json.loads(b)["error"]["code"] == "not_found", "an unknown route is 404 not_found", f"{st} {b[:100]!r}")
    st, h, b = request(base + "/v1/nodes", "DELETE", keys["admin"])
    allow = {k.lower(): v for k, v in h.items()}.get("allow")
    report(st == 405 and json.loads(b)["error"]["code"] == "method_not_allowed" and allow,
           "a wrong method is 405 method_not_allowed with Allow", f"{st} {allow}")
    st, h, b = request(base + "/v1/workflows", "POST", keys["operator"], "{not json")
    report(st == 400 and json.loads(b)["error"]["code"] == "invalid_json", "a body that is not JSON is 400 invalid_json", f"{st} {b[:100]!r}")
    st, h, b = request(base + "/v1/workflows", "POST", keys["operator"], json.dumps({"name": "x", "steps": [{"id": "a", "needs": ["b"], "run": {"argv": ["/bin/true"]}}]}))
    e = json.loads(b).get("error", {})
    report(st == 400 and e.get("code") == "invalid_workflow" and "field" in e, "an unknown need is 400 invalid_workflow naming the field", f"{st} {b[:160]!r}")
    st, h, b = request(base + "/v1/workflows?limit=0", "GET", keys["viewer"])
    report(st == 400 and json.loads(b)["error"]["code"] == "invalid_request", "a bad query parameter is 400 invalid_request", f"{st} {b[:100]!r}")
    st, h, b = request(base + "/v1/workflows", "POST", keys["operator"], "[" + "1," * (600 * 1024) + "1]")
    report(st == 413 and json.loads(b)["error"]["code"] == "payload_too_large", "a body over the limit is 413 payload_too_large", f"{st}")
    st, h, b = request(base + f"/v1/workflows/{wf}/cancel", "POST", keys["operator"])
    if os.environ.get("WORKFLOW_DONE"):
        report(st == 409 and json.loads(b)["error"]["code"] == "conflict", "cancelling a finished workflow is 409 conflict", f"{st} {b[:100]!r}")
    for e in [json.loads(b)]:
        errs = schema_errors(doc, {"$ref": "#/components/schemas/Error"}, e) if st >= 400 else []
        report(not errs, "the 409 body has the Error shape", "; ".join(errs))


if __name__ == "__main__":
    if sys.argv[1] == "static":
        static(sys.argv[2], sys.argv[3])
    else:
        live(sys.argv[2], sys.argv[3])
    sys.exit(0)
