// SPDX-License-Identifier: MIT
// The operator console: a hash router (#/workflows, #/workflows/ID,
// #/workflows/ID/steps/STEP, #/workflows/ID/audit, #/nodes, #/simulate) over
// the coordinator's API. No framework, no build step; every node is built
// with the DOM (no innerHTML of data), so the strict CSP holds.
import * as api from "./api.js";
import { render as renderDag } from "./dag.js";
import { verifyTrail, parseRaw, plain } from "./audit.js";

const main = document.getElementById("main");
const PAGE = 25;
const WF_STATES = ["pending", "running", "paused", "awaiting_human", "succeeded", "failed", "cancelled"];
let stopEvents = null;
let refreshTimer = null;

// h("tag.class", {attr: v, onclick: f}, child...): an element.
function h(spec, attrs = {}, ...kids) {
  const [tag, ...cls] = spec.split(".");
  const e = document.createElement(tag);
  if (cls.length) e.className = cls.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

function toast(msg, bad = false) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = bad ? "bad show" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ""), 6000);
}

function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString();
}

function badge(state) {
  return h("span.badge", { "data-state": state, text: state });
}

function setView(title, ...kids) {
  main.replaceChildren(h("h1", { text: title }), ...kids);
  document.title = `${title} · AUTOOS`;
}

function errorBox(e) {
  return h("p.error", { role: "alert", text: `${e.status ? e.status + " " + e.code + ": " : ""}${e.message}` });
}

// An action button, offered only when the key's role may use it.
function actionButton(label, least, run, extra = {}) {
  if (!api.may(least)) return null;
  return h("button", {
    type: "button",
    "data-action": label.toLowerCase(),
    ...extra,
    onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        await run();
        toast(`${label}: done`);
      } catch (e) {
        toast(`${label}: ${e.status || ""} ${e.message}`, true);
      } finally {
        ev.target.disabled = false;
      }
    },
    text: label,
  });
}

// ---- sign-in ---------------------------------------------------------------------------

function signInView(next) {
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, "aria-describedby": "keyhelp" });
  const err = h("p.error", { role: "alert" });
  const form = h(
    "form.signin",
    {
      onsubmit: async (ev) => {
        ev.preventDefault();
        err.textContent = "";
        try {
          const r = await api.signIn(input.value.trim());
          input.value = "";
          header();
          toast(`Signed in as ${r}`);
          location.hash = next && next !== "#/signin" ? next : "#/workflows";
        } catch (e) {
          err.textContent = e.status === 401 ? "That key is unknown or revoked." : `Cannot sign in: ${e.message}`;
        }
      },
    },
    h("label", { for: "key", text: "API key" }),
    input,
    h("p.muted", { id: "keyhelp", text: "Made with autoos-coordinator --create-key NAME --role viewer|operator|admin. It stays in this tab's session storage." }),
    h("button", { type: "submit", text: "Sign in" }),
    err,
  );
  setView("Sign in", form);
  input.focus();
}

function header() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  if (api.key()) {
    who.textContent = `${api.name() ? api.name() + " · " : ""}role: ${api.role()}`;
    who.dataset.role = api.role();
    out.hidden = false;
  } else {
    who.textContent = "";
    delete who.dataset.role;
    out.hidden = true;
  }
}

// ---- workflows list --------------------------------------------------------------------

const listState = { state: "", q: "", name: "", by: "", since: "", until: "", page: 0, selected: new Set() };

async function workflowsView(params) {
  Object.assign(listState, params);
  const form = h("form.filters", { role: "search", onsubmit: (e) => e.preventDefault() });
  const field = (label, input) => h("label", {}, label, input);
  const stateSel = h("select", { id: "f-state" }, h("option", { value: "", text: "any" }), WF_STATES.map((s) => h("option", { value: s, text: s, selected: s === listState.state })));
  const q = h("input", { id: "f-q", type: "search", placeholder: "id, name, state…", value: listState.q });
  const name = h("input", { id: "f-name", value: listState.name });
  const by = h("input", { id: "f-by", value: listState.by, placeholder: "key name" });
  const since = h("input", { id: "f-since", type: "datetime-local", value: listState.since });
  const until = h("input", { id: "f-until", type: "datetime-local", value: listState.until });
  form.append(field("State ", stateSel), field("Search ", q), field("Name ", name), field("Submitter ", by), field("From ", since), field("To ", until));
  const body = h("div", { id: "wf-list" }, h("p.muted", { text: "Loading…" }));
  const bulk = h("div.bulk", {},
    actionButton("Cancel selected", "operator", () => bulkAction("cancel")),
    actionButton("Retry selected", "operator", () => bulkAction("retry")));
  setView("Workflows", form, bulk, body);
  let rows = [];
  const draw = () => drawList(body, rows);
  const reload = async () => {
    listState.state = stateSel.value;
    try {
      const res = await api.call("GET", `/workflows?limit=1000${listState.state ? "&state=" + listState.state : ""}`);
      rows = res.workflows;
      draw();
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  };
  stateSel.addEventListener("change", () => ((listState.page = 0), reload()));
  for (const [inp, k] of [[q, "q"], [name, "name"], [by, "by"], [since, "since"], [until, "until"]])
    inp.addEventListener("input", () => ((listState[k] = inp.value), (listState.page = 0), draw()));
  await reload();
  follow(() => reload(), () => true);
}

function matches(w) {
  const s = listState;
  const q = s.q.toLowerCase();
  if (q && !`${w.id} ${w.name} ${w.state} ${w.created_by || ""}`.toLowerCase().includes(q)) return false;
  if (s.name && !w.name.toLowerCase().includes(s.name.toLowerCase())) return false;
  if (s.by && !(w.created_by || "").toLowerCase().includes(s.by.toLowerCase())) return false;
  const t = new Date(w.created_at).getTime();
  if (s.since && t < new Date(s.since).getTime()) return false;
  if (s.until && t > new Date(s.until).getTime()) return false;
  return true;
}

function drawList(body, rows) {
  const shown = rows.filter(matches);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  listState.page = Math.min(listState.page, pages - 1);
  const slice = shown.slice(listState.page * PAGE, (listState.page + 1) * PAGE);
  const canAct = api.may("operator");
  const table = h("table.list", {},
    h("thead", {}, h("tr", {}, canAct ? h("th", {}, h("span.sr", { text: "select" })) : null,
      ["Name", "State", "Steps", "Submitter", "Created", "Updated"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, slice.map((w) => {
      const counts = Object.entries(w.steps || {}).filter(([k]) => k !== "total").map(([k, v]) => `${v} ${k}`).join(", ");
      return h("tr", { "data-id": w.id, "data-state": w.state },
        canAct ? h("td", {}, h("input", { type: "checkbox", "aria-label": `select ${w.name} ${w.id}`, checked: listState.selected.has(w.id),
          onchange: (e) => (e.target.checked ? listState.selected.add(w.id) : listState.selected.delete(w.id)) })) : null,
        h("td", {}, h("a", { href: `#/workflows/${w.id}`, text: w.name }), h("div.muted.mono", { text: w.id.slice(0, 8) })),
        h("td", {}, badge(w.state)),
        h("td", { text: `${(w.steps && w.steps.total) || 0}${counts ? " (" + counts + ")" : ""}` }),
        h("td", { text: w.created_by || "—" }),
        h("td", { text: when(w.created_at) }),
        h("td", { text: when(w.updated_at) }));
    })));
  const pager = h("nav.pager", { "aria-label": "pages" },
    h("button", { type: "button", disabled: listState.page === 0, onclick: () => ((listState.page--), drawList(body, rows)), text: "‹ Newer" }),
    h("span", { text: ` page ${listState.page + 1} of ${pages} · ${shown.length} workflow${shown.length === 1 ? "" : "s"} ` }),
    h("button", { type: "button", disabled: listState.page >= pages - 1, onclick: () => ((listState.page++), drawList(body, rows)), text: "Older ›" }));
  body.replaceChildren(shown.length ? table : h("p.muted", { text: "No workflow matches." }), pager);
}

async function bulkAction(kind) {
  const ids = [...listState.selected];
  if (!ids.length) throw new Error("select workflows first");
  let done = 0;
  const failed = [];
  for (const id of ids) {
    try {
      if (kind === "cancel") await api.call("POST", `/workflows/${id}/cancel`);
      else {
        const wf = await api.call("GET", `/workflows/${id}`);
        const bad = wf.steps.filter((s) => s.state === "failed" || s.state === "awaiting_human");
        for (const s of bad) await api.call("POST", `/workflows/${id}/steps/${encodeURIComponent(s.id)}/retry`);
        if (!bad.length) throw new Error("no failed step");
      }
      done++;
    } catch (e) {
      failed.push(`${id.slice(0, 8)}: ${e.message}`);
    }
  }
  listState.selected.clear();
  if (failed.length) throw new Error(`${done} done; ${failed.join("; ")}`);
  route();
}

// ---- live updates ----------------------------------------------------------------------

// Calls reload (debounced) on each event relevant() accepts, and every 5 s while the stream is down.
function follow(reload, relevant) {
  const live = h("span.live", { id: "live", text: "connecting…", "aria-live": "off" });
  main.querySelector("h1").append(" ", live);
  let pending = null;
  const kick = () => {
    if (pending) return;
    pending = setTimeout(() => ((pending = null), reload()), 150);
  };
  stopEvents = api.events(
    (type, data) => relevant(type, data) && kick(),
    (up) => {
      live.textContent = up ? "live" : "reconnecting…";
      live.dataset.up = up ? "1" : "0";
      if (up) kick();
    },
  );
  refreshTimer = setInterval(() => live.dataset.up !== "1" && reload(), 5000);
}

// ---- one workflow ----------------------------------------------------------------------

// Redraws only when the data changed, and gives focus back to the element
// (by its data-step and data-action) that had it, for keyboard users.
function redraw(box, ...kids) {
  const f = document.activeElement;
  const sel = f && box.contains(f) && f.dataset && f.dataset.step
    ? `${f.tagName.toLowerCase()}[data-step="${CSS.escape(f.dataset.step)}"]${f.dataset.action ? `[data-action="${f.dataset.action}"]` : ""}`
    : null;
  box.replaceChildren(...kids);
  const again = sel && box.querySelector(sel);
  again && again.focus();
}

async function workflowView(id) {
  const box = h("div");
  setView("Workflow", box);
  let seen = "";
  const load = async () => {
    let wf;
    try {
      wf = await api.call("GET", `/workflows/${id}`);
    } catch (e) {
      box.replaceChildren(errorBox(e));
      return;
    }
    const now = JSON.stringify(wf);
    if (now === seen) return;
    seen = now;
    main.querySelector("h1").firstChild.textContent = `Workflow ${wf.name} `;
    const acts = h("div.actions", {},
      wf.state === "running" || wf.state === "awaiting_human" ? actionButton("Pause", "operator", () => api.call("POST", `/workflows/${id}/pause`).then(load)) : null,
      wf.state === "paused" ? actionButton("Resume", "operator", () => api.call("POST", `/workflows/${id}/resume`).then(load)) : null,
      ["succeeded", "failed", "cancelled"].includes(wf.state) ? null : actionButton("Cancel", "operator", () => api.call("POST", `/workflows/${id}/cancel`).then(load)),
      h("a.button", { href: `#/workflows/${id}/audit`, text: "Audit trail" }));
    const stepRows = wf.steps.map((s) =>
      h("tr", { "data-step": s.id, "data-state": s.state },
        h("td", {}, h("a", { href: `#/workflows/${id}/steps/${encodeURIComponent(s.id)}`, text: s.id })),
        h("td", { text: s.kind }),
        h("td", {}, badge(s.state)),
        h("td", { text: s.attempt || 0 }),
        h("td", { text: s.node || "—" }),
        h("td", { text: s.outcome ? `${s.outcome}${s.exit_code !== null && s.exit_code !== undefined ? " " + s.exit_code : ""}` : "—" }),
        h("td", {}, stepActions(id, s, load))));
    redraw(box,
      h("dl.meta", {}, h("dt", { text: "State" }), h("dd", {}, badge(wf.state)), h("dt", { text: "Id" }), h("dd.mono", { text: wf.id }),
        h("dt", { text: "Submitted by" }), h("dd", { text: wf.created_by || "—" }), h("dt", { text: "Created" }), h("dd", { text: when(wf.created_at) }),
        h("dt", { text: "Updated" }), h("dd", { text: when(wf.updated_at) })),
      acts,
      h("div.dagbox", { tabindex: "-1" }, renderDag(wf, (s) => `#/workflows/${id}/steps/${encodeURIComponent(s.id)}`)),
      h("table.list.steps", {}, h("thead", {}, h("tr", {}, ["Step", "Kind", "State", "Attempt", "Node", "Outcome", "Actions"].map((t) => h("th", { scope: "col", text: t })))), h("tbody", {}, stepRows)));
  };
  await load();
  follow(load, (type, d) => d.workflow === id || type === "node.lost");
}

function stepActions(id, s, after) {
  const url = (a) => `/workflows/${id}/steps/${encodeURIComponent(s.id)}/${a}`;
  const go = (a) => () => api.call("POST", url(a)).then(after);
  return h("span.acts", {},
    s.state === "awaiting_human" ? actionButton("Approve", "operator", go("approve"), { "data-step": s.id }) : null,
    s.state === "awaiting_human" || s.state === "failed" ? actionButton("Retry", "operator", go("retry"), { "data-step": s.id }) : null,
    s.state === "awaiting_human" ? actionButton("Skip", "operator", go("skip"), { "data-step": s.id }) : null);
}

// ---- one step --------------------------------------------------------------------------

async function stepView(id, stepId) {
  const box = h("div");
  setView(`Step ${stepId}`, box);
  let seen = "";
  const load = async () => {
    let wf, trail;
    try {
      [wf, trail] = await Promise.all([api.call("GET", `/workflows/${id}`), api.callText("GET", `/workflows/${id}/audit`)]);
    } catch (e) {
      box.replaceChildren(errorBox(e));
      return;
    }
    const now = trail + JSON.stringify(wf);
    if (now === seen) return;
    seen = now;
    const s = wf.steps.find((x) => x.id === stepId);
    if (!s) {
      box.replaceChildren(h("p.error", { text: `no step ${stepId} in this workflow` }));
      return;
    }
    const rows = plain(parseRaw(trail)).rows;
    const mine = rows.filter((r) => r.detail && r.detail.step === stepId);
    const submitted = rows.find((r) => r.action === "submitted");
    const specStep = submitted && submitted.detail.spec && (submitted.detail.spec.steps || []).find((x) => x.id === stepId);
    const results = mine.filter((r) => r.action === "result");
    const last = results[results.length - 1];
    const stderr = [...mine].reverse().find((r) => r.detail.stderr_tail);
    // The last attempt's whole result (GET /v1/runs/{run}); without one, what the workflow and the trail keep.
    let run = null;
    if (last && last.detail.run) {
      try {
        run = await api.call("GET", `/runs/${encodeURIComponent(last.detail.run)}`);
      } catch (e) {
        if (e.status !== 404) throw e;
      }
    }
    const res = run && run.result;
    const size = (t) => `${new TextEncoder().encode(t || "").length} bytes`;
    const whole = (t, truncated) => `attempt ${run.attempt}, whole: ${size(t)}${truncated ? ", cut by the node at the run's output_bytes" : ""}`;
    const dl = (pairs) => h("dl.meta", {}, pairs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v === undefined || v === null ? "—" : String(v) })]));
    box.replaceChildren(
      h("p", {}, h("a", { href: `#/workflows/${id}`, text: `← workflow ${wf.name}` })),
      dl([["State", s.state], ["Kind", s.kind], ["Attempt", s.attempt], ["Node", s.node], ["Outcome", s.outcome], ["Exit code", s.exit_code],
        ["Wall", s.wall_ms !== null ? `${s.wall_ms} ms` : null], ["Error", s.error], ["Needs", (s.needs || []).join(", ") || "—"], ["Fallback", s.fallback]]),
      h("div.actions", {}, stepActions(id, s, load)),
      h("h2", { text: "Usage and denied syscalls (last attempt)" }),
      last ? dl([["CPU", `${last.detail.cpu_ms} ms`], ["Peak memory", `${Math.round((last.detail.memory_peak_bytes || 0) / 1024)} KiB`], ["OOM kills", last.detail.oom_kills],
        ["Denied syscalls", (last.detail.denied_syscalls || []).join(", ") || "none"], ["Signal", last.detail.signal], ["Reason", last.detail.reason]]) : h("p.muted", { text: "No result yet." }),
      h("h2", { text: "Limits" }),
      h("pre.code", { id: "limits", text: specStep && specStep.run ? JSON.stringify({ limits: specStep.run.limits || "node defaults", trust: specStep.run.trust || "standard", network: specStep.run.network || "default" }, null, 2) : "—" }),
      h("h2", { text: "Attempts" }),
      h("table.list", { id: "attempts" }, h("thead", {}, h("tr", {}, ["When", "Event", "Attempt", "Node", "Outcome", "Wall"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, mine.map((r) => h("tr", { "data-action": r.action }, h("td", { text: when(r.ts) }), h("td", { text: r.action }), h("td", { text: r.detail.attempt ?? "" }),
          h("td", { text: r.detail.node || r.detail.to || "" }), h("td", { text: r.detail.outcome ? `${r.detail.outcome} ${r.detail.exit_code ?? ""}` : "" }), h("td", { text: r.detail.wall_ms !== undefined ? `${r.detail.wall_ms} ms` : "" }))))),
      res
        ? outputBox("Output (stdout)", "stdout", res.stdout, whole(res.stdout, res.stdout_truncated))
        : outputBox("Output (stdout)", "stdout", s.stdout, s.stdout_cut ? `its first 64 KiB (${size(s.stdout)}); no result of the attempt to read whole` : null),
      res
        ? outputBox("Standard error", "stderr", res.stderr, whole(res.stderr, res.stderr_truncated))
        : outputBox("Standard error", "stderr", stderr ? stderr.detail.stderr_tail : last && last.detail.error ? last.detail.error : null,
          stderr ? `only its last 2 KiB, as the escalation recorded it (${size(stderr.detail.stderr_tail)}); no result of the attempt to read whole` : null));
  };
  await load();
  follow(load, (type, d) => d.workflow === id && (!d.step || d.step === stepId));
}

// An output with search; note says how much of it this is.
function outputBox(title, id, text, note) {
  const pre = h("pre.code.output", { id, tabindex: "0" });
  const search = h("input", { type: "search", id: `${id}-search`, placeholder: "search", "aria-label": `search ${title}` });
  const count = h("span.muted", { id: `${id}-count` });
  const show = () => {
    const t = text || "";
    const q = search.value;
    pre.replaceChildren();
    if (!q) {
      pre.textContent = t || "(empty)";
      count.textContent = "";
      return;
    }
    let n = 0;
    let at = 0;
    const low = t.toLowerCase();
    const ql = q.toLowerCase();
    for (let i = low.indexOf(ql); i >= 0; i = low.indexOf(ql, i + ql.length)) {
      pre.append(t.slice(at, i), h("mark", { text: t.slice(i, i + q.length) }));
      at = i + q.length;
      n++;
    }
    pre.append(t.slice(at));
    count.textContent = ` ${n} match${n === 1 ? "" : "es"}`;
    const first = pre.querySelector("mark");
    first && first.scrollIntoView({ block: "nearest" });
  };
  search.addEventListener("input", show);
  show();
  return h("section.output", {}, h("h2", { text: title }), h("div", {}, search, count, note ? h("span.muted", { id: `${id}-note`, text: ` (${note})` }) : null), pre);
}

// ---- audit -----------------------------------------------------------------------------

async function auditView(id) {
  const box = h("div");
  setView("Audit trail", box);
  let text;
  try {
    text = await api.callText("GET", `/workflows/${id}/audit`);
  } catch (e) {
    box.replaceChildren(errorBox(e));
    return;
  }
  const verdict = h("p.verdict", { id: "verdict", role: "status", text: "Verifying in this browser…" });
  const doc = plain(parseRaw(text));
  const rows = doc.rows.map((r) =>
    h("tr", { "data-seq": r.seq }, h("td", { text: r.seq }), h("td", { text: when(r.ts) }), h("td", { text: r.actor }), h("td", { text: r.action }),
      h("td", {}, h("code", { text: JSON.stringify(r.detail).slice(0, 160) })), h("td.mono", { text: r.hash.slice(0, 12) }), h("td.check", { text: "…" })));
  box.replaceChildren(
    h("p", {}, h("a", { href: `#/workflows/${id}`, text: "← workflow" })),
    verdict,
    h("p.muted", { text: "Each row's hash is recomputed here with WebCrypto from the rows as served (SHA-256 of the previous hash and jsonb's text of [workflow, seq, ts_epoch_us, actor, action, detail]); the server's own opinion is not used. Signed checkpoints are checked against the rows; their Ed25519 signatures need the coordinator's public key: autoosctl audit ID --verify --audit-pubkey FILE." }),
    h("table.list.audit", {}, h("thead", {}, h("tr", {}, ["Seq", "Time", "Actor", "Action", "Detail", "Hash", "Check"].map((t) => h("th", { scope: "col", text: t })))), h("tbody", {}, rows)));
  try {
    const v = await verifyTrail(text);
    v.results.forEach((r, i) => {
      const cell = rows[i].querySelector(".check");
      cell.textContent = r.ok ? "✓" : `✗ ${r.why}`;
      rows[i].dataset.ok = r.ok ? "1" : "0";
    });
    verdict.dataset.ok = v.ok ? "1" : "0";
    verdict.textContent = v.ok
      ? `Chain verified: ${v.rows} rows, every hash recomputed in this browser.`
      : `Chain broken at seq ${v.firstBad}: ${v.reason}.`;
    const bad = rows.find((r) => r.dataset.ok === "0");
    bad && bad.scrollIntoView({ block: "center" });
  } catch (e) {
    verdict.dataset.ok = "0";
    verdict.textContent = `Cannot verify: ${e.message}`;
  }
}

// ---- nodes -----------------------------------------------------------------------------

async function nodesView() {
  const box = h("div");
  setView("Nodes", box);
  let confirming = null; // the node whose drain or undrain awaits confirmation
  const drainCell = (n) => {
    if (!api.may("operator")) return null;
    const undo = n.draining;
    const verb = undo ? "Undrain" : "Drain";
    if (confirming !== n.id)
      return h("button", { type: "button", "data-action": verb.toLowerCase(), "data-node": n.id, "aria-label": `${verb} ${n.id}`, text: verb,
        onclick: () => ((confirming = n.id), load()) });
    const go = async (ev) => {
      ev.target.disabled = true;
      try {
        await api.call(undo ? "DELETE" : "POST", `/nodes/${encodeURIComponent(n.id)}/drain`);
        toast(`${verb} ${n.id}: done`);
      } catch (e) {
        toast(`${verb} ${n.id}: ${e.status || ""} ${e.message}`, true);
      }
      confirming = null;
      load();
    };
    return h("div.confirm", { role: "group", "aria-label": `confirm ${verb.toLowerCase()} of ${n.id}` },
      h("p", { text: undo ? `Undrain ${n.id}? New steps may go to it again.` : `Drain ${n.id}? No new step goes to it; the steps it runs finish.` }),
      h("button", { type: "button", "data-action": `confirm-${verb.toLowerCase()}`, "data-node": n.id, text: `Yes, ${verb.toLowerCase()}`, onclick: go }),
      h("button", { type: "button", "data-action": "keep", "data-node": n.id, text: "Cancel", onclick: () => ((confirming = null), load()) }));
  };
  const load = async () => {
    try {
      const { nodes } = await api.call("GET", "/nodes");
      const f = document.activeElement;
      const focus = f && f.dataset && f.dataset.node ? `[data-node="${CSS.escape(f.dataset.node)}"]` : null;
      box.replaceChildren(
        h("table.list", { id: "nodes" }, h("thead", {}, h("tr", {}, ["Node", "Health", "Drain", "Capacity", "Running", "Queued", "Labels", "Version", "Last seen", ""].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, nodes.map((n) => h("tr", { "data-node": n.id, "data-state": n.state, "data-draining": n.draining ? "1" : "0" }, h("td", { text: n.id }), h("td", {}, badge(n.state)),
            h("td.drain", {}, n.draining ? [badge("draining"), h("div.muted", { text: `since ${when(n.drain_since)} by ${n.drained_by || "?"}` })] : "—"),
            h("td", { text: n.capacity }),
            h("td", { text: n.running }), h("td", { text: n.queued ?? "—" }), h("td", { text: Object.entries(n.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—" }),
            h("td", { text: n.version || "—" }), h("td", { text: when(n.last_seen) }),
            h("td", {}, drainCell(n)))))),
        h("p.muted", { text: `${nodes.filter((n) => n.state === "healthy").length} of ${nodes.length} healthy, ${nodes.filter((n) => n.draining).length} draining. A draining node takes no new step; the steps it runs finish.` }));
      const again = focus && (box.querySelector(`button[data-action^="confirm"]${focus}`) || box.querySelector(`button${focus}`));
      again && again.focus();
    } catch (e) {
      box.replaceChildren(errorBox(e));
    }
  };
  await load();
  follow(load, (type) => type.startsWith("node.") || type === "step.dispatched" || type === "step.finished");
}

// ---- simulate --------------------------------------------------------------------------

function simulateView() {
  const ta = h("textarea", { id: "sim-input", rows: 14, spellcheck: "false", "aria-label": "workflow JSON" });
  ta.value = JSON.stringify({ name: "example", steps: [{ id: "fetch", run: { argv: ["/bin/echo", "hi"] } }, { id: "build", needs: ["fetch"], run: { argv: ["/bin/true"] } }] }, null, 2);
  const out = h("div", { id: "sim-out" });
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await api.call("POST", "/workflows/simulate", ta.value);
        const pct = (p) => (p === null || p === undefined ? "no history" : `${Math.round(p * 100)}%`);
        const ms = (x) => (x === null || x === undefined ? "—" : `${Math.round(x)} ms`);
        out.replaceChildren(
          h("p.verdict", { text: `Success ${pct(r.success_probability)} · critical path ${r.critical_path.steps.join(" → ")} · p50 ${ms(r.critical_path.p50_ms)} · p95 ${ms(r.critical_path.p95_ms)}` }),
          h("table.list", {}, h("thead", {}, h("tr", {}, ["Step", "Program", "History", "p50", "p95", "Success"].map((t) => h("th", { text: t })))),
            h("tbody", {}, r.steps.map((s) => h("tr", {}, h("td", { text: s.id }), h("td", { text: s.program || "—" }), h("td", { text: s.history }), h("td", { text: ms(s.p50_ms) }), h("td", { text: ms(s.p95_ms) }), h("td", { text: pct(s.success_probability) }))))),
          h("ul.risks", {}, r.risks.map((k) => h("li", { "data-kind": k.kind, text: `${k.step ? k.step + ": " : ""}${k.message}` }))));
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    },
  }, h("label", { for: "sim-input", text: "Paste a workflow (JSON): Estimate stores nothing; Submit runs it." }), ta,
  h("div.actions", {}, h("button", { type: "submit", id: "sim-estimate", text: "Estimate" }),
    actionButton("Submit", "operator", async () => {
      const r = await api.call("POST", "/workflows", ta.value);
      location.hash = `#/workflows/${r.id}`;
    }, { id: "sim-submit" })));
  setView("Simulate and submit", form, out);
}

// ---- router ----------------------------------------------------------------------------

function route() {
  if (stopEvents) stopEvents(), (stopEvents = null);
  clearInterval(refreshTimer);
  const hash = location.hash || "#/workflows";
  header();
  document.querySelectorAll("[data-nav]").forEach((a) => a.setAttribute("aria-current", hash.startsWith(`#/${a.dataset.nav}`) ? "page" : "false"));
  if (!api.key()) return signInView(hash);
  const p = hash.slice(2).split("/").map(decodeURIComponent);
  let r;
  if (p[0] === "workflows" && p[1] && p[2] === "steps" && p[3]) r = stepView(p[1], p[3]);
  else if (p[0] === "workflows" && p[1] && p[2] === "audit") r = auditView(p[1]);
  else if (p[0] === "workflows" && p[1]) r = workflowView(p[1]);
  else if (p[0] === "nodes") r = nodesView();
  else if (p[0] === "simulate") r = simulateView();
  else if (p[0] === "signin") r = signInView("#/workflows");
  else r = workflowsView({});
  Promise.resolve(r).catch((e) => {
    if (e.status === 401) {
      api.signOut();
      header();
      signInView(hash);
    } else main.replaceChildren(errorBox(e));
  });
  main.focus({ preventScroll: true });
}

// A deep link /ui/workflows/ID (the index fallback) becomes #/workflows/ID.
const base = new URL(document.baseURI).pathname;
if (location.pathname !== base && location.pathname.startsWith(base)) {
  history.replaceState(null, "", base + "#/" + location.pathname.slice(base.length));
}
document.getElementById("signout").addEventListener("click", () => {
  api.signOut();
  header();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
header();
route();
