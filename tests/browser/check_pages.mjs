// check_pages.mjs — load each page that demos/backprop_html wrote into
// Debian's chromium (headless, through puppeteer-core; no browser is
// downloaded), step through every step with the keyboard and the buttons,
// and assert the numbers on screen at each step. Any console error, page
// error or network request fails the test.
//
//   node check_pages.mjs PAGES_DIR SCREENSHOT_DIR [LAYERED_DIR]
//
// LAYERED_DIR holds the same pages written without Graphviz on PATH (our
// own layout): the shopping page is checked there too.
//
// Environment: SG_CHROMIUM (default /usr/bin/chromium). run.sh starts it
// and reports a skip (exit 77) when chromium, node or puppeteer-core is
// missing.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const [pagesDir, shotDir, layeredDir] = process.argv.slice(2);
if (!pagesDir || !shotDir) {
  console.error("usage: node check_pages.mjs PAGES_DIR SCREENSHOT_DIR");
  process.exit(2);
}
const chromium = process.env.SG_CHROMIUM || "/usr/bin/chromium";

let failures = 0, checks = 0;
function check(ok, what) {
  checks++;
  if (!ok) {
    failures++;
    console.error("FAIL: " + what);
  }
}
function eq(got, want, what) {
  check(got === want, what + ": got " + JSON.stringify(got) + ", want " + JSON.stringify(want));
}
// A number as the page prints it (6 significant digits), close to want.
function near(text, want, what, rel = 2e-5) {
  const got = Number(String(text).replace("−", "-"));
  check(Number.isFinite(got) && Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)),
    what + ": got " + JSON.stringify(text) + ", want " + want);
}

// Everything on screen that the assertions read, at the current step.
function snapshot() {
  const q = (s) => document.querySelector(s);
  const nodes = {};
  for (const g of document.querySelectorAll("g.node")) {
    nodes[g.dataset.label] = {
      val: g.querySelector(".val").textContent,
      grad: g.querySelector(".grad").textContent,
      current: g.classList.contains("current"),
    };
  }
  return {
    index: window.sgViewer.index(),
    phase: q("#phase").textContent,
    counter: q("#step-counter").textContent,
    heading: q("#explain h2").textContent,
    explain: q("#explain").textContent,
    contributions: [...document.querySelectorAll("#explain ul.contributions li")].map((li) => li.textContent),
    accumulated: [...document.querySelectorAll("#explain ul.accumulated li")].map((li) => li.textContent),
    items: [...document.querySelectorAll("#explain li")].map((li) => li.textContent),
    current: [...document.querySelectorAll("g.node.current")].map((g) => g.dataset.label),
    nodes,
  };
}

// Load a page; step through it with the → key; return every step's snapshot.
async function walk(browser, file, dir = pagesDir) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 600 });
  const url = pathToFileURL(path.join(dir, file)).href;
  const problems = [];
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    if (req.url() === url) return req.continue();
    problems.push("network request: " + req.url());
    return req.abort();
  });
  page.on("console", (msg) => { if (msg.type() === "error") problems.push("console error: " + msg.text()); });
  page.on("pageerror", (err) => problems.push("page error: " + err.message));
  page.on("requestfailed", (req) => { if (req.url() !== url) problems.push("failed request: " + req.url()); });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.sgViewer !== undefined, { timeout: 5000 });
  const info = await page.evaluate(() => ({
    count: window.sgViewer.count, backwardStart: window.sgViewer.backwardStart,
    forwardEnd: window.sgViewer.forwardEnd, layout: window.SG_TRACE.layout, n: window.SG_TRACE.nodes.length,
    nBackward: window.SG_TRACE.backward ? window.SG_TRACE.backward.length : 0,
    title: document.title,
  }));
  const states = [await page.evaluate(snapshot)];
  for (let i = 1; i < info.count; i++) {
    await page.keyboard.press("ArrowRight");
    states.push(await page.evaluate(snapshot));
  }
  // every step was reached, in order, by the key
  states.forEach((s, i) => eq(s.index, i, file + ": index after " + i + " presses"));
  eq(states.length, 1 + info.n + (info.nBackward ? 2 + info.nBackward : 1), file + ": step count");
  // one more → stays at the end; ← goes back one
  await page.keyboard.press("ArrowRight");
  eq(await page.evaluate(() => window.sgViewer.index()), info.count - 1, file + ": → at the end");
  await page.keyboard.press("ArrowLeft");
  eq(await page.evaluate(() => window.sgViewer.index()), info.count - 2, file + ": ←");
  return { page, info, states, problems };
}

// The shared checks on every page; returns the states of the backward steps.
function common(file, r) {
  const { info, states } = r;
  eq(states[0].phase, "ready", file + ": step 0 phase");
  for (let i = 1; i <= info.n; i++) {
    const s = states[i];
    eq(s.phase, "forward", file + ": step " + i + " phase");
    eq(s.current.length, 1, file + ": step " + i + " highlights one node");
    const cur = s.nodes[s.current[0]];
    check(cur && cur.val.startsWith("= "), file + ": step " + i + " shows the value of " + s.current[0]);
  }
  // before its forward step, no node shows a value
  check(Object.values(states[0].nodes).every((n) => n.val === ""), file + ": no value at step 0");
  check(Object.values(states[info.forwardEnd].nodes).every((n) => n.val.startsWith("= ")),
    file + ": every value shown when forward is done");
  const back = states.filter((s) => s.phase === "backward" && s.heading.startsWith("backward ") &&
    !s.heading.startsWith("backward starts"));
  eq(back.length, info.nBackward, file + ": backward steps");
  for (const s of back) {
    check(s.contributions.length > 0, file + ": " + s.heading + " passes something to an input");
    // "d x = a + b = c": the terms add up to the total shown
    for (const line of s.accumulated) {
      const m = /^d \S+ = (.*) = ([^ ]+) \(/.exec(line);
      if (!m || m[1].includes("[") || m[1].includes("min")) continue;
      const sum = m[1].split(" + ").map((t) => Number(t.replace("−", "-"))).reduce((a, b) => a + b, 0);
      near(m[2], sum, file + ": " + line, 1e-4);
    }
  }
  eq(states[info.count - 1].phase, "done", file + ": last step");
  if (r.problems.length) for (const p of r.problems) check(false, file + ": " + p);
  else check(true, file + ": no console error, no network request");
  return back;
}

// The done step's "d x = v" lines, as {x: text}.
function finalGrads(states) {
  const out = {};
  for (const item of states[states.length - 1].items) {
    const m = /^d (\S+) = (.+)$/.exec(item);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

async function shopping(browser, dir = pagesDir, layout = "dot") {
  const file = "shopping.html";
  const r = await walk(browser, file, dir);
  const { page, info, states } = r;
  const back = common(file, r);
  eq(info.layout, layout, file + ": layout");
  const fwd = states[info.forwardEnd];
  eq(fwd.nodes.price.val, "= 715", file + ": price at the end of forward");
  check(fwd.explain.includes("price = mul(all_price, tax) = 715"), file + ": forward explanation: " + fwd.explain);
  // backward, in the order sg_backward visits the nodes
  eq(JSON.stringify(back.map((s) => s.current[0])), JSON.stringify(["price", "all_price", "orange_price", "apple_price"]),
    file + ": backward order");
  const want = {
    price: ["d all_price = 1.1 = 1 × 1.1, mul: ∂(a·b)/∂a = b", "d tax = 650 = 1 × 650, mul: ∂(a·b)/∂b = a"],
    all_price: ["d apple_price = 1.1 = 1.1 × 1, add: ∂(a+b)/∂a = 1", "d orange_price = 1.1 = 1.1 × 1, add: ∂(a+b)/∂b = 1"],
    orange_price: ["d orange = 3.3 = 1.1 × 3, mul: ∂(a·b)/∂a = b", "d orange_num = 165 = 1.1 × 150, mul: ∂(a·b)/∂b = a"],
    apple_price: ["d apple = 2.2 = 1.1 × 2, mul: ∂(a·b)/∂a = b", "d apple_num = 110 = 1.1 × 100, mul: ∂(a·b)/∂b = a"],
  };
  const upstream = { price: "1", all_price: "1.1", orange_price: "1.1", apple_price: "1.1" };
  for (const s of back) {
    const n = s.current[0];
    eq(JSON.stringify(s.contributions), JSON.stringify(want[n]), file + ": contributions at " + n);
    check(s.items[0] === "upstream gradient d " + n + " = " + upstream[n], file + ": upstream at " + n + ": " + s.items[0]);
  }
  // the node boxes: each gradient appears at its step and stays
  eq(back[0].nodes.tax.grad, "grad 650", file + ": tax's box after the tax node");
  eq(back[0].nodes.all_price.grad, "grad 1.1", file + ": all_price's box after the tax node");
  eq(back[0].nodes.apple.grad, "", file + ": apple has no gradient yet at the tax node");
  const last = states[info.count - 1];
  const boxes = { apple: "2.2", apple_num: "110", orange: "3.3", orange_num: "165", tax: "650", price: "1" };
  for (const k in boxes) eq(last.nodes[k].grad, "grad " + boxes[k], file + ": " + k + "'s box at the end");
  eq(JSON.stringify(finalGrads(states)),
    JSON.stringify({ apple: "2.2", apple_num: "110", orange: "3.3", orange_num: "165", tax: "650" }), file + ": done step");

  // the buttons and play / pause
  const idx = () => page.evaluate(() => window.sgViewer.index());
  await page.click("#btn-start");
  eq(await idx(), 0, file + ": « forward");
  await page.click("#btn-backward");
  eq(await idx(), info.backwardStart, file + ": backward »");
  await page.click("#btn-next");
  eq(await idx(), info.backwardStart + 1, file + ": next");
  await page.click("#btn-prev");
  eq(await idx(), info.backwardStart, file + ": prev");
  await page.click("#btn-end");
  eq(await idx(), info.count - 1, file + ": end");
  await page.keyboard.press("Home");
  await page.select("#speed", "4");
  await page.click("#btn-play");
  await new Promise((res) => setTimeout(res, 700)); // 4 steps/s: about 2 steps
  await page.click("#btn-play"); // pause
  const played = await idx();
  check(played >= 1 && played <= 4, file + ": play at 4 steps/s for 0.7 s moved " + played + " steps");
  await new Promise((res) => setTimeout(res, 400));
  eq(await idx(), played, file + ": pause stops");
  await page.select("#speed", "1");

  if (dir !== pagesDir) return page.close();
  // three screenshots for docs/: forward done, mid-backward (the tax node), backward done
  fs.mkdirSync(shotDir, { recursive: true });
  await page.setViewport({ width: 1280, height: 460 });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.mouse.move(0, 459);
  for (const [i, name] of [[info.forwardEnd, "forward-done"], [info.backwardStart + 1, "mid-backward"],
    [info.count - 1, "backward-done"]]) {
    await page.evaluate((j) => window.sgViewer.go(j), i);
    await page.screenshot({ path: path.join(shotDir, "backprop-" + name + ".png") });
  }
  await page.close();
}

async function apple(browser) {
  const file = "apple.html";
  const r = await walk(browser, file);
  const back = common(file, r);
  eq(r.states[r.info.forwardEnd].nodes.price.val, "= 220", file + ": price");
  eq(JSON.stringify(back.map((s) => s.current[0])), JSON.stringify(["price", "apple_price"]), file + ": backward order");
  eq(JSON.stringify(back[0].contributions), JSON.stringify(["d apple_price = 1.1 = 1 × 1.1, mul: ∂(a·b)/∂a = b",
    "d tax = 200 = 1 × 200, mul: ∂(a·b)/∂b = a"]), file + ": the tax node");
  eq(JSON.stringify(finalGrads(r.states)), JSON.stringify({ apple: "2.2", apple_num: "110", tax: "200" }), file + ": done");
  await r.page.close();
}

async function micrograd_expr(browser) {
  const file = "micrograd_expr.html";
  const r = await walk(browser, file);
  const back = common(file, r);
  near(r.states[r.info.forwardEnd].nodes.g2.val.slice(2), 24.7041, file + ": g", 1e-5);
  const g = finalGrads(r.states);
  near(g.a, 138.8338, file + ": d a", 1e-5); // micrograd's README: 138.8338, 645.5773
  near(g.b, 645.5773, file + ": d b", 1e-5);
  // c, d and a are used more than once: their gradients visibly accumulate
  check(back.some((s) => s.accumulated.length > 0), file + ": a gradient accumulates");
  await r.page.close();
}

async function micrograd_neuron(browser) {
  const file = "micrograd_neuron.html";
  const r = await walk(browser, file);
  common(file, r);
  near(r.states[r.info.forwardEnd].nodes.o.val.slice(2), Math.SQRT1_2, file + ": o", 1e-5);
  const g = finalGrads(r.states);
  const want = { x1: -1.5, w1: 1, x2: 0.5, w2: 0, b: 0.5 }; // micrograd's notebook
  for (const k in want) near(g[k], want[k], file + ": d " + k, 1e-5);
  await r.page.close();
}

async function xor_sigmoid(browser) {
  const file = "xor_sigmoid.html";
  const r = await walk(browser, file);
  const back = common(file, r);
  // the same network in float64, by hand: a1 = x W1 + b1, h = σ(a1),
  // a2 = h W2 + b2, y = σ(a2), loss = (y - t)² / 2
  const s = (z) => 1 / (1 + Math.exp(-z));
  const x = [1, 0], t = 1, W1 = [[0.5, -0.4], [0.3, 0.8]], b1 = [0.1, -0.1], W2 = [0.7, -0.6], b2 = 0.05;
  const h = [0, 1].map((j) => s(x[0] * W1[0][j] + x[1] * W1[1][j] + b1[j]));
  const y = s(h[0] * W2[0] + h[1] * W2[1] + b2);
  const da2 = (y - t) * y * (1 - y);
  const dW2 = h.map((hj) => hj * da2);
  const da1 = [0, 1].map((j) => da2 * W2[j] * h[j] * (1 - h[j]));
  const dW1 = [x[0] * da1[0], x[0] * da1[1], x[1] * da1[0], x[1] * da1[1]];
  near(r.states[r.info.forwardEnd].nodes.loss.val.slice(2), 0.5 * (y - t) ** 2, file + ": loss", 1e-5);
  const g = finalGrads(r.states);
  const vec = (txt) => txt.replace(/[[\]]/g, "").split(", ");
  vec(g.W2).forEach((v, i) => near(v, dW2[i], file + ": d W2[" + i + "]", 1e-4));
  near(g.b2.replace(/[[\]]/g, ""), da2, file + ": d b2", 1e-4);
  vec(g.W1).forEach((v, i) => near(v, dW1[i], file + ": d W1[" + i + "]", 1e-4));
  vec(g.b1).forEach((v, i) => near(v, da1[i], file + ": d b1[" + i + "]", 1e-4));
  check(back.some((s) => /= (addmm|matmul)\(/.test(s.heading)), file + ": a matrix product step is shown");
  await r.page.close();
}

async function double_backward(browser) {
  const file = "double_backward.html";
  const r = await walk(browser, file);
  common(file, r);
  eq(r.states[r.info.forwardEnd].nodes["dy/dx"].val, "= 24", file + ": dy/dx = 4·8 − 4·2");
  eq(finalGrads(r.states).x, "44", file + ": d²y/dx² = 12·4 − 4");
  await r.page.close();
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sg-chromium-"));
const started = Date.now();
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: profile,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--allow-file-access-from-files"],
});
try {
  for (const t of [shopping, apple, micrograd_expr, micrograd_neuron, xor_sigmoid, double_backward]) {
    const before = failures;
    await t(browser);
    console.log((failures === before ? "ok   " : "FAIL ") + t.name);
  }
  if (layeredDir) {
    const before = failures;
    await shopping(browser, layeredDir, "layered");
    console.log((failures === before ? "ok   " : "FAIL ") + "shopping, our own layout (no dot on PATH)");
  }
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(checks + " checks, " + failures + " failed, " + ((Date.now() - started) / 1000).toFixed(1) + " s");
process.exit(failures ? 1 : 0);
