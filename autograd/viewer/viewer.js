/*
 * viewer.js — steps through the backprop trace that sg_write_html wrote into
 * window.SG_TRACE (embedded into every page by embed.py; no other file is
 * loaded).
 *
 * The steps: 0 = the graph before anything runs; one per node in forward
 * (topological) order, where the node's value appears; then, if the output
 * requires a gradient, the seed (d y = 1), one step per node in the order
 * sg_backward visited them, and "backward done". The state shown at step s
 * is computed from the trace alone: a node's value once its forward step is
 * reached, its gradient as the last "after" that a backward step up to s
 * gave it.
 *
 * For tests and tools: window.sgViewer = {count, go(i), index(), steps}.
 */
(function () {
  "use strict";
  const T = window.SG_TRACE;
  const SVGNS = "http://www.w3.org/2000/svg";
  const nodes = T.nodes, N = nodes.length;
  const W = T.box[0], H = T.box[1];

  /* ---- numbers ---- */
  function fmt(x) {
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "∞";
    if (x === -Infinity) return "−∞";
    const r = Number(x.toPrecision(6));
    return Object.is(r, -0) ? "0" : String(r);
  }
  /* Every value (up to T.small), else shape and statistics. */
  function vals(V, shape) {
    if (!V) return "—";
    if (V.n === 1) return fmt(V.v[0]);
    if (V.n <= T.small) return "[" + V.v.map(fmt).join(", ") + "]";
    return shape + " min " + fmt(V.min) + " max " + fmt(V.max) + " mean " + fmt(V.mean) + " norm " + fmt(V.norm);
  }
  /* A short form for a node's box. */
  function short(V, shape) {
    if (!V) return "";
    let s = V.n <= T.small ? vals(V, shape) : shape + " mean " + fmt(V.mean);
    return s.length > 24 ? s.slice(0, 23) + "…" : s;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  /* A span of values; a large tensor expands to its first values. */
  function valueSpan(V, shape, cls) {
    const s = el("span", { class: cls });
    if (!V || V.n <= T.small) {
      s.textContent = vals(V, shape);
      return s;
    }
    const d = el("details");
    d.appendChild(el("summary", {}, vals(V, shape)));
    d.appendChild(el("pre", {}, "first " + V.v.length + " of " + V.n + ": " + V.v.map(fmt).join(", ") +
      (V.v.length < V.n ? ", …" : "")));
    s.appendChild(d);
    return s;
  }

  /* ---- the steps ---- */
  const steps = [{ kind: "start" }];
  const forwardStep = new Array(N);
  for (let i = 0; i < N; i++) {
    forwardStep[i] = steps.length;
    steps.push({ kind: "forward", node: i });
  }
  const out = N - 1; /* the output is last in topological order */
  let backwardStart = -1;
  if (T.backward) {
    backwardStart = steps.length;
    steps.push({ kind: "seed", node: out });
    T.backward.forEach((b, j) => steps.push({ kind: "backward", node: b.node, b: j }));
  }
  steps.push({ kind: "done" });

  /* Gradients after step s: node index -> values. */
  function gradsAt(s) {
    const g = new Array(N).fill(null);
    if (backwardStart < 0 || s < backwardStart) return g;
    g[out] = T.seed;
    for (let i = backwardStart + 1; i <= s && i < steps.length; i++) {
      const st = steps[i];
      if (st.kind !== "backward") continue;
      for (const c of T.backward[st.b].c) g[c.input] = c.after;
    }
    return g;
  }

  /* ---- the page ---- */
  document.title = T.title;
  const header = el("header");
  header.appendChild(el("h1", {}, T.title));
  const controls = el("div", { class: "controls" });
  const buttons = {};
  function button(id, text, title, fn) {
    const b = el("button", { id: id, title: title, type: "button" }, text);
    b.addEventListener("click", fn);
    controls.appendChild(b);
    buttons[id] = b;
  }
  button("btn-start", "« forward", "jump to the start of the forward pass (Home)", () => go(0));
  button("btn-prev", "◀ prev", "previous step (←)", () => go(cur - 1));
  button("btn-play", "▶ play", "play / pause (space)", () => toggle());
  button("btn-next", "next ▶", "next step (→)", () => go(cur + 1));
  button("btn-backward", "backward »", "jump to the start of the backward pass (b)",
    () => go(backwardStart >= 0 ? backwardStart : steps.length - 1));
  button("btn-end", "end »", "jump to the last step (End)", () => go(steps.length - 1));
  const speed = el("select", { id: "speed", title: "steps per second while playing" });
  for (const [v, t] of [["0.5", "0.5 step/s"], ["1", "1 step/s"], ["2", "2 steps/s"], ["4", "4 steps/s"]])
    speed.appendChild(el("option", v === "1" ? { value: v, selected: "" } : { value: v }, t));
  speed.addEventListener("change", () => { if (timer) { stop(); play(); } });
  controls.appendChild(speed);
  header.appendChild(controls);
  const phase = el("span", { id: "phase" });
  const counter = el("span", { id: "step-counter" });
  header.appendChild(phase);
  header.appendChild(counter);
  document.body.appendChild(header);

  const main = el("main");
  const graph = el("div", { id: "graph" });
  const side = el("div", { id: "side" });
  const explain = el("div", { id: "explain", "aria-live": "polite" });
  const inspect = el("div", { id: "inspect" });
  side.appendChild(explain);
  side.appendChild(inspect);
  main.appendChild(graph);
  main.appendChild(side);
  document.body.appendChild(main);
  document.body.appendChild(el("footer", {},
    "Keys: → next, ← previous, space play/pause, Home start, b backward, End last. " +
    "Click a node to inspect it. Layout: " + (T.layout === "dot" ? "Graphviz dot" : "layered (Graphviz not found)") +
    ". Written by ScratchGrad's sg_write_html."));

  /* the picture */
  const pic = svg("svg", { id: "picture", width: Math.ceil(T.width), height: Math.ceil(T.height),
    viewBox: "-6 -6 " + Math.ceil(T.width + 12) + " " + Math.ceil(T.height + 12), role: "img" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse" });
  marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8b93a5" }));
  defs.appendChild(marker);
  pic.appendChild(defs);
  const edgeEls = T.edges.map((e) => {
    const a = nodes[e.from], b = nodes[e.to];
    let d;
    if (e.pts.length >= 4) {
      const p = e.pts;
      d = "M" + p[0] + "," + p[1];
      for (let i = 2; i + 5 < p.length + 0; i += 6)
        d += " C" + p[i] + "," + p[i + 1] + " " + p[i + 2] + "," + p[i + 3] + " " + p[i + 4] + "," + p[i + 5];
    } else {
      const spread = (e.k - (b.in.length - 1) / 2) * Math.min(16, (H - 12) / Math.max(1, b.in.length - 1));
      const x0 = a.x + W / 2, y0 = a.y, x1 = b.x - W / 2, y1 = b.y + spread, mx = (x0 + x1) / 2;
      e.end = [x1, y1];
      d = "M" + x0 + "," + y0 + " C" + mx + "," + y0 + " " + mx + "," + y1 + " " + x1 + "," + y1;
    }
    const path = svg("path", { class: "edge", d: d, "marker-end": "url(#arrow)" });
    pic.appendChild(path);
    if (b.in.length > 1) { /* which input is a, b (c) in the formulas */
      const p = e.pts, ex = p.length >= 4 ? p[p.length - 2] : e.end[0], ey = p.length >= 4 ? p[p.length - 1] : e.end[1];
      const lab = svg("text", { class: "edge-label", x: ex - 16, y: ey - 5, "text-anchor": "end" });
      lab.textContent = "abc"[e.k] || String(e.k);
      pic.appendChild(lab);
    }
    return path;
  });
  const nodeEls = nodes.map((n, i) => {
    const g = svg("g", { class: "node" + (n.leaf ? " leaf" : "") + (n.param ? " param" : ""),
      "data-index": i, "data-label": n.label, transform: "translate(" + (n.x - W / 2) + "," + (n.y - H / 2) + ")" });
    g.appendChild(svg("rect", { width: W, height: H, rx: 7 }));
    const title = svg("text", { class: "title", x: 8, y: 16 });
    title.textContent = n.label.length > 20 ? n.label.slice(0, 19) + "…" : n.label;
    const op = svg("text", { class: "op", x: W - 8, y: 16, "text-anchor": "end" });
    op.textContent = n.leaf ? (n.param ? "param" : "const") : n.attr ? n.op + " " + n.attr.replace(" = ", "=") : n.op;
    const val = svg("text", { class: "val", x: 8, y: 35 });
    const grad = svg("text", { class: "grad", x: 8, y: 53 });
    const tip = svg("title");
    tip.textContent = n.label + " = " + (n.leaf ? "" : n.op + "(" + n.in.map((j) => nodes[j].label).join(", ") + ")") +
      " " + n.shape;
    g.appendChild(tip);
    g.appendChild(title);
    g.appendChild(op);
    g.appendChild(val);
    g.appendChild(grad);
    g.addEventListener("click", () => { selected = i; render(); });
    pic.appendChild(g);
    return { g, val, grad };
  });
  graph.appendChild(pic);
  /* Fit the picture to its pane, unless that makes it unreadably small
   * (a training step's graph): then natural size, scrolled. */
  let fits = true;
  function fit() {
    const room = graph.clientWidth - 16, roomH = graph.clientHeight - 16;
    const k = Math.min(1, room / (T.width + 12), Math.max(roomH, 200) / (T.height + 12));
    fits = k >= 0.55;
    const kk = fits ? k : 1;
    pic.setAttribute("width", Math.ceil((T.width + 12) * kk));
    pic.setAttribute("height", Math.ceil((T.height + 12) * kk));
  }
  window.addEventListener("resize", fit);
  fit();

  /* ---- one step ---- */
  let cur = 0, timer = null, selected = -1;

  /* "mul", "pow with p = 3" (the scalar an op's formula names) */
  function opText(n) { return n.attr ? n.op + " with " + n.attr : n.op; }
  function nameWithShape(i) {
    const n = nodes[i];
    return n.value && n.value.n === 1 ? n.label : n.label + " " + n.shape;
  }
  function li(parent, parts) {
    const item = el("li");
    for (const p of parts) item.appendChild(typeof p === "string" ? document.createTextNode(p) : p);
    parent.appendChild(item);
    return item;
  }
  function explainStep(st, grads) {
    explain.textContent = "";
    const h = el("h2");
    explain.appendChild(h);
    if (st.kind === "start") {
      h.textContent = "The graph of " + nodes[out].label;
      explain.appendChild(el("p", {}, N + " nodes. The forward pass computes each node's value from its inputs, " +
        "inputs first; " + (T.backward ? "the backward pass then visits the nodes in reverse and passes each " +
        "input the upstream gradient times its local derivative (the chain rule)." :
        "the output requires no gradient, so there is no backward pass.")));
      explain.appendChild(el("p", { class: "note" }, "Press → or “next” to start."));
      return;
    }
    if (st.kind === "forward") {
      const n = nodes[st.node];
      h.textContent = "forward " + (cur - forwardStep[0] + 1) + " / " + N + ": " + n.label;
      const ul = el("ul");
      if (n.leaf) {
        li(ul, [n.label + " = ", valueSpan(n.value, n.shape, "v"),
          n.param ? ": a parameter (a leaf that requires a gradient)" : ": a constant (no gradient)"]);
      } else {
        li(ul, [n.label + " = " + n.op + "(" + n.in.map((j) => nodes[j].label).join(", ") + ")" +
          (n.attr ? ", " + n.attr : "") + " = ", valueSpan(n.value, n.shape, "v")]);
        const seen = new Set();
        for (const j of n.in) {
          if (seen.has(j)) continue;
          seen.add(j);
          li(ul, ["input " + nameWithShape(j) + " = ", valueSpan(nodes[j].value, nodes[j].shape, "v")]);
        }
      }
      explain.appendChild(ul);
      if (cur === forwardStep[N - 1])
        explain.appendChild(el("p", { class: "note" }, "Forward done: " + n.label + " = " + vals(n.value, n.shape) + "."));
      return;
    }
    if (st.kind === "seed") {
      const n = nodes[out];
      h.textContent = "backward starts at " + n.label;
      const ul = el("ul");
      li(ul, ["d " + n.label + " = ", valueSpan(T.seed, n.shape, "g"),
        T.seed.n === 1 && T.seed.v[0] === 1 ? " (d" + n.label + "/d" + n.label + " = 1, the seed)" : " (the seed given)"]);
      explain.appendChild(ul);
      explain.appendChild(el("p", { class: "note" }, "“d x” is the gradient of " + n.label + " with respect to x."));
      return;
    }
    if (st.kind === "backward") {
      const b = T.backward[st.b], n = nodes[b.node];
      h.textContent = "backward " + (cur - backwardStart) + " / " + T.backward.length + ": " + n.label + " = " + n.op +
        "(" + n.in.map((j) => nodes[j].label).join(", ") + ")" + (n.attr ? ", " + n.attr : "");
      const ul = el("ul");
      li(ul, ["upstream gradient d " + n.label + " = ", valueSpan(b.dy, n.shape, "g")]);
      explain.appendChild(ul);
      const ul2 = el("ul", { class: "contributions" });
      const running = new Map(); /* input -> contributions so far in this step */
      for (const c of b.c) {
        const x = nodes[c.input];
        const first = !c.before && !running.has(c.input);
        const parts = ["d " + x.label + (first ? " = " : " += "), valueSpan(c.dx, x.shape, "g")];
        if (c.local) {
          parts.push(" = ", valueSpan(b.dy, n.shape, "g"), " × ", valueSpan(c.local, x.shape, "v"));
        }
        const f = el("span", { class: "formula" }, ", " + opText(n) + ": " +
          (c.formula || "(no formula for this op in autograd/html.c: the value is what its backward gave)"));
        parts.push(f);
        li(ul2, parts).setAttribute("data-input", x.label);
        running.set(c.input, (running.get(c.input) || []).concat([c]));
      }
      explain.appendChild(el("p", {}, "local derivative of each input, times the upstream gradient:"));
      explain.appendChild(ul2);
      const acc = [];
      for (const [j, cs] of running) {
        const x = nodes[j], before = cs[0].before, after = cs[cs.length - 1].after;
        if (!before && cs.length === 1) continue;
        const parts = ["d " + x.label + " = "];
        const terms = (before ? [before] : []).concat(cs.map((c) => c.dx));
        terms.forEach((t, k) => { if (k) parts.push(" + "); parts.push(valueSpan(t, x.shape, "g")); });
        parts.push(" = ", valueSpan(after, x.shape, "g"));
        parts.push(el("span", { class: "note" }, before ? " (used again: the gradients add up)" :
          " (used twice here: the gradients add up)"));
        acc.push(parts);
      }
      if (acc.length) {
        const ul3 = el("ul", { class: "accumulated" });
        for (const p of acc) li(ul3, p);
        explain.appendChild(el("p", {}, "accumulated:"));
        explain.appendChild(ul3);
      }
      return;
    }
    /* done */
    h.textContent = T.backward ? "backward done" : "forward done";
    const ul = el("ul");
    if (T.backward) {
      for (let i = 0; i < N; i++)
        if (nodes[i].leaf && grads[i]) li(ul, ["d " + nodes[i].label + " = ", valueSpan(grads[i], nodes[i].shape, "g")]);
      explain.appendChild(el("p", {}, "The gradients of " + nodes[out].label + " with respect to the leaves:"));
    } else {
      li(ul, [nodes[out].label + " = ", valueSpan(nodes[out].value, nodes[out].shape, "v")]);
    }
    explain.appendChild(ul);
  }

  function inspectNode(grads) {
    inspect.textContent = "";
    if (selected < 0) {
      inspect.appendChild(el("p", { class: "note" }, "Click a node to see its values."));
      return;
    }
    const n = nodes[selected];
    inspect.appendChild(el("h3", {}, n.label + " " + n.shape + (n.leaf ? (n.param ? " param" : " const") :
      " = " + n.op + "(" + n.in.map((j) => nodes[j].label).join(", ") + ")")));
    const ul = el("ul");
    const shown = cur >= forwardStep[selected];
    li(ul, ["value ", shown ? valueSpan(n.value, n.shape, "v") : el("span", { class: "note" }, "not computed yet")]);
    li(ul, ["gradient ", grads[selected] ? valueSpan(grads[selected], n.shape, "g") :
      el("span", { class: "note" }, n.param ? "none yet" : "none")]);
    inspect.appendChild(ul);
  }

  function render() {
    const st = steps[cur];
    const grads = gradsAt(cur);
    const current = st.node !== undefined ? st.node : -1;
    const inputs = new Set(), receiving = new Set();
    if (st.kind === "forward") nodes[current].in.forEach((j) => inputs.add(j));
    if (st.kind === "backward") T.backward[st.b].c.forEach((c) => receiving.add(c.input));
    nodes.forEach((n, i) => {
      const e = nodeEls[i];
      const hasValue = cur >= forwardStep[i];
      e.val.textContent = hasValue ? "= " + short(n.value, n.shape) : "";
      e.grad.textContent = grads[i] ? "grad " + short(grads[i], n.shape) : "";
      e.g.classList.toggle("has-value", hasValue);
      e.g.classList.toggle("has-grad", !!grads[i]);
      e.g.classList.toggle("current", i === current);
      e.g.classList.toggle("input", inputs.has(i));
      e.g.classList.toggle("receiving", receiving.has(i));
    });
    T.edges.forEach((ed, k) => {
      edgeEls[k].classList.toggle("flow-forward", st.kind === "forward" && ed.to === current);
      edgeEls[k].classList.toggle("flow-backward", st.kind === "backward" && ed.to === current);
    });
    const inBackward = backwardStart >= 0 && cur >= backwardStart && st.kind !== "done";
    phase.textContent = st.kind === "start" ? "ready" : st.kind === "done" ? "done" : inBackward ? "backward" : "forward";
    phase.className = inBackward ? "backward" : st.kind === "forward" ? "forward" : "";
    counter.textContent = "step " + cur + " / " + (steps.length - 1);
    buttons["btn-prev"].disabled = cur === 0;
    buttons["btn-next"].disabled = cur === steps.length - 1;
    explainStep(st, grads);
    inspectNode(grads);
    if (!fits && current >= 0 && nodeEls[current].g.scrollIntoView)
      nodeEls[current].g.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function go(i) {
    cur = Math.max(0, Math.min(steps.length - 1, i | 0));
    render();
    if (cur === steps.length - 1) stop();
  }
  function play() {
    if (cur === steps.length - 1) go(0);
    timer = setInterval(() => go(cur + 1), 1000 / Number(speed.value));
    buttons["btn-play"].textContent = "‖ pause";
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    buttons["btn-play"].textContent = "▶ play";
  }
  function toggle() { if (timer) stop(); else play(); }

  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    const k = ev.key;
    if (k === "ArrowRight") go(cur + 1);
    else if (k === "ArrowLeft") go(cur - 1);
    else if (k === " ") toggle();
    else if (k === "Home") go(0);
    else if (k === "End") go(steps.length - 1);
    else if (k === "b") go(backwardStart >= 0 ? backwardStart : steps.length - 1);
    else return;
    ev.preventDefault();
  });

  window.sgViewer = {
    count: steps.length,
    steps: steps,
    backwardStart: backwardStart,
    forwardEnd: forwardStep[N - 1],
    go: go,
    index: () => cur,
  };
  const m = /^#(\d+)$/.exec(location.hash);
  go(m ? Number(m[1]) : 0);
})();
