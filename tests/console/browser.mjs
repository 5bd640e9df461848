// SPDX-License-Identifier: MIT
// The console in a real browser (tests/console/test-browser.sh): Debian's
// chromium driven by puppeteer-core against a live coordinator. Prints
// "PASS what" / "FAIL what: why" per check; a screenshot of the page goes
// to $SHOTS for each failure.
//
// Environment: URL, CHROMIUM, SHOTS, OPERATOR_KEY, ADMIN_KEY, VIEWER_KEY,
// WF_FAIL (a workflow whose step 'broken' escalates), WF_GATE (one waiting
// at approval step 'gate'), WF_LONG (one running step 'long'), PSQL_TAMPER
// (a command that tampers with an audit row; the browser's verdict must change).
import { execSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import puppeteer from "puppeteer-core";

const env = process.env;
const URL = env.URL;
const WAIT = 60000 * Number(env.AUTOOS_TIME_SCALE || 1);
let failures = 0;
let shot = 0;
let page;

async function check(what, fn) {
  try {
    await fn();
    console.log(`PASS ${what}`);
  } catch (e) {
    failures++;
    const file = `${env.SHOTS}/${String(++shot).padStart(2, "0")}-${what.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}.png`;
    try {
      mkdirSync(env.SHOTS, { recursive: true });
      await Promise.race([page.screenshot({ path: file, fullPage: true }), new Promise((r) => setTimeout(r, 10000))]);
    } catch (_) {
      /* no page to show */
    }
    console.log(`FAIL ${what}: ${String(e.message || e).split("\n")[0]} (screenshot ${file})`);
  }
}

const text = (sel) => page.$eval(sel, (e) => e.textContent);
const waitText = (sel, re, timeout = WAIT) =>
  page.waitForFunction((s, r) => [...document.querySelectorAll(s)].some((e) => new RegExp(r).test(e.textContent)), { timeout, polling: 100 }, sel, re.source);
const stateOf = (step) => page.$eval(`svg.dag a[data-step="${step}"]`, (e) => e.getAttribute("data-state"));
const waitStep = (step, re, timeout = WAIT) =>
  page.waitForFunction((s, r) => {
    const e = document.querySelector(`svg.dag a[data-step="${s}"]`);
    return e && new RegExp(r).test(e.getAttribute("data-state"));
  }, { timeout, polling: 100 }, step, re.source);

// The API requests the page made (method and path), for the sign-in checks.
const requests = [];

// Signs in with key from a fresh page; the role the page then shows.
async function signIn(key) {
  await page.goto(`${URL}/ui/`, { waitUntil: "load" });
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${URL}/ui/#/signin`, { waitUntil: "load" });
  await page.waitForSelector("#key");
  if (await page.$("#who[data-role]")) throw new Error("signed out, the page still shows a role");
  await page.type("#key", key);
  requests.length = 0;
  await page.keyboard.press("Enter"); // keyboard only
  await page.waitForFunction(() => document.querySelector("#who[data-role]") && location.hash === "#/workflows", { timeout: WAIT });
  await page.waitForSelector("table.list, #wf-list p", { timeout: WAIT });
  return page.$eval("#who", (e) => e.dataset.role);
}

// Clicks sel once it is there; again if the live view redrew it under the pointer.
async function click(sel) {
  for (let i = 0; ; i++) {
    try {
      await page.waitForSelector(sel, { timeout: WAIT });
      await page.click(sel);
      return;
    } catch (e) {
      if (i >= 10 || /Waiting for selector/.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function clickAction(action, step) {
  await click(step ? `button[data-action="${action}"][data-step="${step}"]` : `button[data-action="${action}"]`);
}

const browser = await puppeteer.launch({
  executablePath: env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + env.PROFILE],
});
const cspViolations = [];
try {
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) cspViolations.push(m.text());
  });
  page.on("pageerror", (e) => cspViolations.push("page error: " + e.message));
  page.on("request", (r) => {
    const u = new globalThis.URL(r.url());
    if (u.pathname.startsWith("/v1/")) requests.push(`${r.method()} ${u.pathname}`);
  });

  // --- operator: sign in, submit, watch the DAG go green live ---------------------------
  await check("an operator key signs in (keyboard only) and the page names its role", async () => {
    const r = await signIn(env.OPERATOR_KEY);
    if (r !== "operator") throw new Error(`role ${r}`);
  });
  await check("sign-in asks GET /v1/whoami, and probes nothing else (no secrets, no submission)", async () => {
    const signin = requests.slice(0, requests.indexOf("GET /v1/whoami") + 1);
    if (!signin.length) throw new Error(`requests: ${requests.join(", ")}`);
    if (signin.length !== 1) throw new Error(`before whoami: ${signin.join(", ")}`);
    const probes = requests.filter((r) => r === "GET /v1/secrets" || r.startsWith("POST "));
    if (probes.length) throw new Error(`probes: ${probes.join(", ")}`);
    const who = await text("#who");
    if (!/^operator · role: operator$/.test(who)) throw new Error(`header '${who}'`);
  });
  await check("the key is in sessionStorage, not localStorage", async () => {
    const where = await page.evaluate(() => [sessionStorage.getItem("autoos.key") !== null, localStorage.length]);
    if (!where[0] || where[1] !== 0) throw new Error(JSON.stringify(where));
  });
  let green;
  await check("submit a workflow from the console: its page opens with every step drawn, pending ones too", async () => {
    await page.goto(`${URL}/ui/#/simulate`, { waitUntil: "load" });
    await page.waitForSelector("#sim-input");
    const wf = {
      name: "browser-green",
      steps: [
        { id: "fetch", run: { argv: ["/bin/sh", "-c", "sleep 2; echo fetched"] } },
        { id: "build", needs: ["fetch"], run: { argv: ["/bin/sh", "-c", "sleep 2; cat /work/inputs/fetch.stdout"] } },
        { id: "ship", needs: ["build"], run: { argv: ["/bin/sh", "-c", "sleep 2; echo shipped"] } },
      ],
    };
    await page.$eval("#sim-input", (e, v) => (e.value = v), JSON.stringify(wf));
    await page.click("#sim-estimate");
    await page.waitForSelector("#sim-out .verdict", { timeout: WAIT });
    await page.click("#sim-submit");
    await page.waitForFunction(() => /#\/workflows\/[0-9a-f-]{36}$/.test(location.hash), { timeout: WAIT });
    green = (await page.evaluate(() => location.hash)).split("/")[2];
    await page.waitForSelector('svg.dag a[data-step="ship"]', { timeout: WAIT });
    const n = await page.$$eval("svg.dag a.step", (a) => a.length);
    if (n !== 3) throw new Error(`${n} steps drawn`);
    const ship = await stateOf("ship");
    if (ship === "succeeded") throw new Error("ship was already done: nothing to watch");
  });
  await check("the DAG turns green live (events, no reload): every step succeeded", async () => {
    await page.waitForSelector("#live[data-up='1']", { timeout: WAIT });
    const before = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    for (const s of ["fetch", "build", "ship"]) await waitStep(s, /^succeeded$/);
    const after = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    if (before !== after) throw new Error("the page was reloaded");
  });
  await check("a step's output opens from the DAG and its search marks matches", async () => {
    await click('svg.dag a[data-step="build"]');
    await page.waitForSelector("#stdout", { timeout: WAIT });
    await waitText("#stdout", /fetched/);
    await page.type("#stdout-search", "fetch");
    await waitText("#stdout-count", /1 match/);
  });

  // --- a failed step: output, attempts, retry -------------------------------------------
  await check("a failed step's output and stderr are one click from its workflow", async () => {
    await page.goto(`${URL}/ui/#/workflows/${env.WF_FAIL}`, { waitUntil: "load" });
    await waitStep("broken", /^awaiting_human$/);
    await click('svg.dag a[data-step="broken"]');
    await waitText("#stdout", /partial-output/);
    await waitText("#stderr", /boom-on-stderr/);
    await waitText("#stderr-note", /whole: 15 bytes/); // GET /v1/runs/{run}: all of it, said so
    await waitText("dl.meta dd", /^3$/); // the exit code
    await waitText("#attempts td", /^result$/);
  });
  await check("retry a failed step: the attempt count goes up", async () => {
    const before = await page.$$eval('#attempts tr[data-action="result"]', (r) => r.length);
    await clickAction("retry", "broken");
    await page.waitForFunction((n) => document.querySelectorAll('#attempts tr[data-action="result"]').length > n, { timeout: WAIT, polling: 200 }, before);
  });

  // --- approval, with another key than the submitter's ----------------------------------
  await check("an admin (not the submitter) approves the gate: the workflow goes on to succeed", async () => {
    const r = await signIn(env.ADMIN_KEY);
    if (r !== "admin") throw new Error(`role ${r}`);
    await page.goto(`${URL}/ui/#/workflows/${env.WF_GATE}`, { waitUntil: "load" });
    await waitStep("gate", /^awaiting_human$/);
    await clickAction("approve", "gate");
    await waitStep("after", /^succeeded$/);
  });

  // --- viewer: no action buttons, forced requests refused -------------------------------
  await check("a viewer sees no action buttons (workflow, list, step, nodes: no drain)", async () => {
    const r = await signIn(env.VIEWER_KEY);
    if (r !== "viewer") throw new Error(`role ${r}`);
    await page.goto(`${URL}/ui/#/workflows/${env.WF_LONG}`, { waitUntil: "load" });
    await waitStep("long", /^(running|dispatched|awaiting_human)$/);
    let n = await page.$$eval("button[data-action]", (b) => b.map((x) => x.dataset.action));
    await page.goto(`${URL}/ui/#/workflows`, { waitUntil: "load" });
    await page.waitForSelector("table.list tbody tr", { timeout: WAIT });
    n = n.concat(await page.$$eval("button[data-action], table.list input[type=checkbox]", (b) => b.map((x) => x.dataset.action || "checkbox")));
    await page.goto(`${URL}/ui/#/workflows/${env.WF_FAIL}/steps/broken`, { waitUntil: "load" });
    await page.waitForSelector("#stdout", { timeout: WAIT });
    n = n.concat(await page.$$eval("button[data-action]", (b) => b.map((x) => x.dataset.action)));
    await page.goto(`${URL}/ui/#/nodes`, { waitUntil: "load" });
    await page.waitForSelector('#nodes tr[data-node="na"]', { timeout: WAIT });
    n = n.concat(await page.$$eval("button[data-action]", (b) => b.map((x) => x.dataset.action)));
    if (n.length) throw new Error(`buttons: ${n.join(",")}`);
  });
  await check("a viewer's forced drain and undrain get 403", async () => {
    const got = await page.evaluate(async () => {
      const h = { Authorization: `Bearer ${sessionStorage.getItem("autoos.key")}` };
      const a = await fetch("/v1/nodes/na/drain", { method: "POST", headers: h });
      const b = await fetch("/v1/nodes/na/drain", { method: "DELETE", headers: h });
      return [a.status, b.status, (await a.json()).error.code];
    });
    if (got.join(" ") !== "403 403 forbidden") throw new Error(got.join(" "));
  });
  await check("a viewer's forced cancel, retry and submit get 403", async () => {
    const got = await page.evaluate(async (wf) => {
      const k = sessionStorage.getItem("autoos.key");
      const h = { Authorization: `Bearer ${k}` };
      const a = await fetch(`/v1/workflows/${wf}/cancel`, { method: "POST", headers: h });
      const b = await fetch(`/v1/workflows/${wf}/steps/long/retry`, { method: "POST", headers: h });
      const c = await fetch(`/v1/workflows`, { method: "POST", headers: h, body: '{"name":"x","steps":[{"id":"a","run":{"argv":["/bin/true"]}}]}' });
      return [a.status, b.status, c.status, (await a.json()).error.code];
    }, env.WF_LONG);
    if (got.join(" ") !== "403 403 403 forbidden") throw new Error(got.join(" "));
  });

  // --- cancel, and the list's filters ---------------------------------------------------
  await check("an operator cancels a running workflow from its page", async () => {
    const r = await signIn(env.OPERATOR_KEY);
    if (r !== "operator") throw new Error(`role ${r}`);
    await page.goto(`${URL}/ui/#/workflows/${env.WF_LONG}`, { waitUntil: "load" });
    await waitStep("long", /^(running|dispatched|awaiting_human)$/);
    await clickAction("cancel");
    await waitText("dl.meta dd .badge", /^cancelled$/);
  });
  await check("the list filters by state and searches by name", async () => {
    await page.goto(`${URL}/ui/#/workflows`, { waitUntil: "load" });
    await page.waitForSelector("table.list tbody tr", { timeout: WAIT });
    await page.select("#f-state", "cancelled");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("table.list tbody tr")];
      return rows.length > 0 && rows.every((r) => r.dataset.state === "cancelled");
    }, { timeout: WAIT });
    await page.select("#f-state", "");
    await page.waitForFunction(() => [...document.querySelectorAll("table.list tbody tr")].some((r) => r.dataset.state !== "cancelled"), { timeout: WAIT });
    await page.type("#f-q", "browser-green");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("table.list tbody tr")];
      return rows.length === 1 && rows[0].textContent.includes("browser-green");
    }, { timeout: WAIT });
  });
  await check("the nodes view lists both nodes as healthy with capacity and labels", async () => {
    await page.goto(`${URL}/ui/#/nodes`, { waitUntil: "load" });
    await page.waitForSelector('#nodes tr[data-node="na"][data-state="healthy"]', { timeout: WAIT });
    await page.waitForSelector('#nodes tr[data-node="nb"][data-state="healthy"]', { timeout: WAIT });
    await waitText("#nodes td", /zone=b/);
  });
  await check("an operator drains na from the Nodes view, after a confirmation, and sees it draining", async () => {
    await click('button[data-action="drain"][data-node="na"]');
    await page.waitForSelector('button[data-action="confirm-drain"][data-node="na"]', { timeout: WAIT });
    if (await page.$('#nodes tr[data-node="na"][data-draining="1"]')) throw new Error("drained before the confirmation");
    await click('button[data-action="confirm-drain"][data-node="na"]');
    await page.waitForSelector('#nodes tr[data-node="na"][data-draining="1"]', { timeout: WAIT });
    await waitText('#nodes tr[data-node="na"] td.drain', /by operator/);
    if (await page.$('#nodes tr[data-node="nb"][data-draining="1"]')) throw new Error("nb drains too");
    await page.waitForSelector('button[data-action="undrain"][data-node="na"]', { timeout: WAIT });
  });
  await check("while na drains, a new workflow's steps all go to nb", async () => {
    const nodes = await page.evaluate(async (wait) => {
      const h = { Authorization: `Bearer ${sessionStorage.getItem("autoos.key")}`, "Content-Type": "application/json" };
      const steps = [...Array(6).keys()].map((i) => ({ id: `s${i}`, run: { argv: ["/bin/echo", `s${i}`] } }));
      const r = await fetch("/v1/workflows", { method: "POST", headers: h, body: JSON.stringify({ name: "browser-drained", steps }) });
      const { id } = await r.json();
      for (const end = Date.now() + wait; Date.now() < end; await new Promise((ok) => setTimeout(ok, 200))) {
        const wf = await (await fetch(`/v1/workflows/${id}`, { headers: h })).json();
        if (wf.state === "succeeded") return [...new Set(wf.steps.map((s) => s.node))].sort();
        if (["failed", "cancelled"].includes(wf.state)) return [wf.state];
      }
      return ["timeout"];
    }, WAIT);
    if (nodes.join(" ") !== "nb") throw new Error(`steps ran on ${nodes.join(" ")}`);
  });
  await check("the operator undrains na: the view shows it eligible again", async () => {
    await click('button[data-action="undrain"][data-node="na"]');
    await click('button[data-action="confirm-undrain"][data-node="na"]');
    await page.waitForSelector('#nodes tr[data-node="na"][data-draining="0"]', { timeout: WAIT });
    await page.waitForSelector('button[data-action="drain"][data-node="na"]', { timeout: WAIT });
  });

  // --- audit, verified in the browser; then tampered with ---------------------------------
  await check("the audit trail verifies in the browser", async () => {
    await page.goto(`${URL}/ui/#/workflows/${green}/audit`, { waitUntil: "load" });
    await page.waitForSelector("#verdict[data-ok]", { timeout: WAIT });
    const v = await text("#verdict");
    if (!/^Chain verified: \d+ rows/.test(v)) throw new Error(v);
  });
  await check("after a row is changed in PostgreSQL the console says where the chain breaks", async () => {
    execSync(env.PSQL_TAMPER.replace("WORKFLOW", green), { stdio: "pipe" });
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector("#verdict[data-ok]", { timeout: WAIT });
    const v = await text("#verdict");
    if (!/^Chain broken at seq 2: its content does not hash/.test(v)) throw new Error(v);
    const bad = await page.$$eval('tr[data-ok="0"]', (r) => r.map((x) => x.dataset.seq));
    if (bad[0] !== "2") throw new Error(`rows marked ${bad}`);
  });

  // --- a phone, dark mode ----------------------------------------------------------------
  await check("on a phone (390x844) the list fits the width", async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await page.goto(`${URL}/ui/#/workflows`, { waitUntil: "load" });
    await page.waitForSelector("table.list tbody tr", { timeout: WAIT });
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    if (w > 400) throw new Error(`page is ${w}px wide`);
  });
  await check("dark mode follows prefers-color-scheme", async () => {
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const m = bg.match(/\d+/g).map(Number);
    if (m[0] + m[1] + m[2] > 200) throw new Error(bg);
  });
  await check("no Content-Security-Policy violation or script error on any page", async () => {
    if (cspViolations.length) throw new Error(cspViolations.slice(0, 3).join(" | "));
  });
} finally {
  await browser.close();
}
process.exit(0);
