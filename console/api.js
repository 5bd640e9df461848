// SPDX-License-Identifier: MIT
// The coordinator's API (doc/api.md) with the key kept in sessionStorage.
const KEY = "autoos.key";
const ROLE = "autoos.role";
const NAME = "autoos.name";
export const ROLES = ["viewer", "operator", "admin"];

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function key() {
  return sessionStorage.getItem(KEY);
}

export function role() {
  return sessionStorage.getItem(ROLE) || "viewer";
}

export function name() {
  return sessionStorage.getItem(NAME) || "";
}

export function may(least) {
  return ROLES.indexOf(role()) >= ROLES.indexOf(least);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ROLE);
  sessionStorage.removeItem(NAME);
}

async function raw(method, path, body, k = key(), text = false) {
  const headers = { Authorization: `Bearer ${k}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(`/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    cache: "no-store",
  });
  const t = await resp.text();
  if (!resp.ok) {
    let e = {};
    try {
      e = JSON.parse(t).error || {};
    } catch (_) {
      /* not ours: a proxy's page */
    }
    throw new ApiError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText, e.field);
  }
  return text ? t : t ? JSON.parse(t) : null;
}

export function call(method, path, body) {
  return raw(method, path, body);
}

export function callText(method, path) {
  return raw(method, path, undefined, key(), true);
}

// The key's name and role, as the coordinator says (GET /v1/whoami).
export async function signIn(k) {
  const me = await raw("GET", "/whoami", undefined, k);
  if (!ROLES.includes(me.role)) throw new Error(`unknown role '${me.role}'`);
  sessionStorage.setItem(KEY, k);
  sessionStorage.setItem(ROLE, me.role);
  sessionStorage.setItem(NAME, me.key);
  return me.role;
}

// Server-sent events from /v1/events through fetch (EventSource cannot send
// the key). onEvent(type, data) per event; returns a function that stops it.
export function events(onEvent, onState) {
  const ctl = new AbortController();
  let last = null;
  let stopped = false;
  async function run() {
    while (!stopped) {
      try {
        const headers = { Authorization: `Bearer ${key()}` };
        if (last) headers["Last-Event-ID"] = last;
        const resp = await fetch("/v1/events", { headers, signal: ctl.signal, cache: "no-store" });
        if (!resp.ok) throw new Error(`events: HTTP ${resp.status}`);
        onState && onState(true);
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = "message";
            let data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("id: ")) last = line.slice(4);
              else if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data) {
              try {
                onEvent(type, JSON.parse(data));
              } catch (_) {
                /* one bad frame does not end the stream */
              }
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState && onState(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  run();
  return () => {
    stopped = true;
    ctl.abort();
  };
}
