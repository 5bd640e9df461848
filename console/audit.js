// SPDX-License-Identifier: MIT
// The audit chain verified in the browser (memory/audit-chain.c is the
// reference): hash = SHA-256(prev_hash bytes || canonical), canonical being
// jsonb's text of [workflow_id, seq, ts_epoch_us, actor, action, detail].
// The rows are parsed here from the response's text, so that numbers keep
// the digits the server sent (JSON.parse would round them).

// A JSON parser whose numbers stay text: {n: "1.50"}; objects are [key, value] lists.
export function parseRaw(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  function value() {
    ws();
    const ch = text[i];
    if (ch === "{") {
      i++;
      const pairs = [];
      ws();
      if (text[i] === "}") return i++, { o: pairs };
      for (;;) {
        ws();
        const k = str();
        ws();
        if (text[i++] !== ":") throw new Error("':' expected at " + i);
        pairs.push([k, value()]);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return i++, { o: pairs };
        else throw new Error("',' or '}' expected at " + i);
      }
    }
    if (ch === "[") {
      i++;
      const items = [];
      ws();
      if (text[i] === "]") return i++, { a: items };
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return i++, { a: items };
        else throw new Error("',' or ']' expected at " + i);
      }
    }
    if (ch === '"') return { s: str() };
    for (const [w, v] of [["true", true], ["false", false], ["null", null]])
      if (text.startsWith(w, i)) return (i += w.length), { l: v };
    const m = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) throw new Error("value expected at " + i);
    i += m[0].length;
    return { n: m[0] };
  }
  function str() {
    if (text[i] !== '"') throw new Error("string expected at " + i);
    const start = i;
    i++;
    while (text[i] !== '"') {
      if (text[i] === "\\") i++;
      i++;
      if (i >= text.length) throw new Error("unterminated string");
    }
    i++;
    return JSON.parse(text.slice(start, i));
  }
  const v = value();
  return v;
}

// The plain value of a parsed node (numbers as JavaScript numbers): for display.
export function plain(v) {
  if ("o" in v) return Object.fromEntries(v.o.map(([k, x]) => [k, plain(x)]));
  if ("a" in v) return v.a.map(plain);
  if ("s" in v) return v.s;
  if ("n" in v) return Number(v.n);
  return v.l;
}

export function get(v, k) {
  const p = v.o && v.o.find(([key]) => key === k);
  return p ? p[1] : undefined;
}

// PostgreSQL's escape_json(): \b \f \n \r \t \" \\, other controls as \u00xx.
function jstr(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

const enc = new TextEncoder();
// jsonb's key order: shorter first, then bytewise (UTF-8).
function keyCmp(a, b) {
  const ea = enc.encode(a);
  const eb = enc.encode(b);
  if (ea.length !== eb.length) return ea.length - eb.length;
  for (let i = 0; i < ea.length; i++) if (ea[i] !== eb[i]) return ea[i] - eb[i];
  return 0;
}

export function canonicalValue(v) {
  if ("o" in v) {
    // Stable sort; of equal keys the last one given is kept, as jsonb does.
    const sorted = v.o.map((p, idx) => [p, idx]).sort((x, y) => keyCmp(x[0][0], y[0][0]) || x[1] - y[1]);
    const kept = sorted.filter((x, j) => j + 1 >= sorted.length || keyCmp(x[0][0], sorted[j + 1][0][0]) !== 0);
    return "{" + kept.map(([[k, x]]) => jstr(k) + ": " + canonicalValue(x)).join(", ") + "}";
  }
  if ("a" in v) return "[" + v.a.map(canonicalValue).join(", ") + "]";
  if ("s" in v) return jstr(v.s);
  if ("n" in v) return v.n;
  return v.l === null ? "null" : String(v.l);
}

export function canonical(workflow, row) {
  const n = (k) => get(row, k).n;
  const s = (k) => (get(row, k) && "s" in get(row, k) ? get(row, k).s : "");
  return (
    "[" +
    (workflow === null ? "null" : jstr(workflow)) +
    ", " + n("seq") + ", " + n("ts_epoch_us") + ", " +
    jstr(s("actor")) + ", " + jstr(s("action")) + ", " +
    canonicalValue(get(row, "detail")) + "]"
  );
}

function unhex(h) {
  if (!/^[0-9a-f]{64}$/.test(h)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Verifies the trail's text (GET /v1/workflows/{id}/audit): every row's
// prev_hash is the hash before it (zeros first), its hash is recomputed,
// seq counts up from 1, and each checkpoint names a hash the rows have.
// Returns {ok, rows, firstBad, reason, results: [{seq, ok, why}]}.
export async function verifyTrail(text) {
  const doc = parseRaw(text);
  const wfNode = get(doc, "workflow");
  const workflow = wfNode && "s" in wfNode ? wfNode.s : null;
  const rows = get(doc, "rows").a;
  const results = [];
  let prev = "0".repeat(64);
  let firstBad = null;
  let reason = "";
  const byHash = new Map();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const seq = Number(get(row, "seq").n);
    const prevHash = get(row, "prev_hash").s;
    const hash = get(row, "hash").s;
    let why = "";
    if (seq !== i + 1) why = `seq ${seq} where ${i + 1} was due (a row is missing)`;
    else if (prevHash !== prev) why = "its prev_hash is not the hash of the row before";
    else {
      const pb = unhex(prevHash);
      const cb = enc.encode(canonical(workflow, row));
      const data = new Uint8Array(32 + cb.length);
      data.set(pb, 0);
      data.set(cb, 32);
      const got = hex(await crypto.subtle.digest("SHA-256", data));
      if (got !== hash) why = "its content does not hash to its hash (the row was changed)";
    }
    results.push({ seq, ok: !why, why });
    if (why && firstBad === null) {
      firstBad = seq;
      reason = why;
    }
    byHash.set(seq, hash);
    prev = hash;
  }
  const cps = get(doc, "checkpoints");
  if (cps && firstBad === null)
    for (const cp of cps.a) {
      const seq = Number(get(cp, "seq").n);
      if (byHash.has(seq) && byHash.get(seq) !== get(cp, "hash").s) {
        firstBad = seq;
        reason = `checkpoint at seq ${seq} names another hash`;
      }
    }
  return { ok: firstBad === null, rows: rows.length, firstBad, reason, results };
}
