// Tsubame dashboard: polls the gateway's /ui/api and draws the cluster.
// Plain JS, no build step, nothing loaded from outside this origin.
"use strict";
(function () {
  const POLL_MS = 1000, HISTORY = 60, MAX_ANIMS = 60;
  const $ = (s) => document.querySelector(s);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElementNS(attrs && attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "svg") continue;
      if (k === "text") e.textContent = v; else if (k === "cls") e.setAttribute("class", v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const fmt = (v, d) => (v === undefined || v === null || isNaN(v)) ? "–" : v.toFixed(d);

  const loadHist = new Map();   // node -> [load...]
  let prevRoutes = null, prevTime = 0;
  const rpsHist = [], errHist = [];
  const seen = new Set();       // journeys already animated
  let positions = new Map();    // member -> {x, y}
  let origin = "";
  let firstJourneys = true;

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  async function poll() {
    try {
      const [state, js] = await Promise.all([getJSON("api/state"), getJSON("api/journeys?limit=30")]);
      $("#status").classList.add("live");
      render(state, js.journeys || []);
    } catch (e) {
      $("#status").classList.remove("live");
      $("#summary").textContent = "no data: " + e.message;
    }
  }

  function render(state, journeys) {
    origin = state.origin;
    const nodes = state.nodes || [];
    const workers = nodes.filter((n) => !n.gateway);
    $("#summary").textContent = `${workers.length} node${workers.length === 1 ? "" : "s"} · gateway ${state.origin} · ${new Date(state.time).toLocaleTimeString()}`;
    for (const n of workers) {
      const h = loadHist.get(n.name) || [];
      h.push(n.load);
      while (h.length > HISTORY) h.shift();
      loadHist.set(n.name, h);
    }
    renderNodes(workers);
    renderTopology(nodes);
    renderRoutes(state.routes || [], new Date(state.time).getTime());
    renderJourneys(journeys);
  }

  function renderNodes(nodes) {
    const box = $("#nodes");
    box.replaceChildren();
    for (const n of nodes) {
      const card = el("div", { cls: "node-card", "data-node": n.name });
      card.append(el("h3", {}, el("span", { text: n.name }), el("span", { cls: "load", text: "load " + fmt(n.load, 2) })));
      const c = el("canvas", { width: 200, height: 40 });
      card.append(c);
      spark(c, loadHist.get(n.name) || [], "#5ab0ff");
      card.append(el("div", { cls: n.fresh ? "" : "failed", text: `queue ${n.queue} · ${n.workers} workers${n.fresh ? "" : " · report stale"}` }));
      const ul = el("ul");
      for (const comp of n.components || []) {
        ul.append(el("li", { "data-component": comp.name }, comp.name + " ", el("code", { text: comp.version })));
      }
      card.append(ul);
      box.append(card);
    }
  }

  function spark(canvas, values, color, values2, color2) {
    const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...values, ...(values2 || []));
    const line = (vs, col) => {
      if (!vs.length) return;
      ctx.strokeStyle = col; ctx.lineWidth = 1.5; ctx.beginPath();
      vs.forEach((v, i) => {
        const x = (i / (HISTORY - 1)) * w, y = h - 2 - (v / max) * (h - 4);
        i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      });
      ctx.stroke();
    };
    line(values, color);
    if (values2) line(values2, color2);
    ctx.fillStyle = "#8794a3"; ctx.font = "10px sans-serif"; ctx.fillText(fmt(max, max < 10 ? 1 : 0), 2, 10);
  }

  function renderTopology(members) {
    const svg = $("#topology");
    const W = 600, H = 360, cx = W / 2, cy = H / 2;
    const names = members.map((m) => m.name);
    if (!names.includes(origin)) members = [{ name: origin, gateway: true, fresh: true }].concat(members);
    const gws = members.filter((m) => m.gateway), ns = members.filter((m) => !m.gateway);
    positions = new Map();
    gws.forEach((g, i) => positions.set(g.name, { x: cx + (i - (gws.length - 1) / 2) * 90, y: cy }));
    const r = Math.min(W, H) / 2 - 40;
    ns.forEach((n, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, ns.length);
      positions.set(n.name, { x: cx + r * 1.45 * Math.cos(a), y: cy + r * Math.sin(a) });
    });
    const anims = svg.querySelectorAll("circle.lp");
    svg.replaceChildren();
    const all = [...positions.keys()];
    for (let i = 0; i < all.length; i++)
      for (let j = i + 1; j < all.length; j++) {
        const a = positions.get(all[i]), b = positions.get(all[j]);
        svg.append(el("line", { svg: 1, cls: "edge", x1: a.x, y1: a.y, x2: b.x, y2: b.y }));
      }
    for (const m of members) {
      const p = positions.get(m.name);
      const g = el("g", { svg: 1, cls: "node" + (m.gateway ? " gateway" : "") + (m.fresh ? "" : " stale"), "data-member": m.name });
      g.append(el("circle", { svg: 1, cx: p.x, cy: p.y, r: 26 }));
      g.append(el("text", { svg: 1, x: p.x, y: p.y + 4, text: m.name }));
      const sub = m.gateway ? "gateway" : "load " + fmt(m.load, 2);
      g.append(el("text", { svg: 1, cls: "sub", x: p.x, y: p.y + 42, text: sub }));
      svg.append(g);
    }
    anims.forEach((a) => svg.append(a)); // keep dots in flight
  }

  // hops turns a journey into the member-to-member moves it made.
  function hops(j) {
    const path = [j.origin];
    for (const s of j.steps) if (s.node !== path[path.length - 1]) path.push(s.node);
    if (j.finished && path[path.length - 1] !== j.origin) path.push(j.origin);
    const out = [];
    for (let i = 1; i < path.length; i++) out.push([path[i - 1], path[i]]);
    return out;
  }

  function animate(j, delay) {
    const svg = $("#topology");
    const legs = hops(j).filter(([a, b]) => positions.has(a) && positions.has(b));
    if (!legs.length) return;
    const dot = el("circle", { svg: 1, cls: "lp", r: 5, cx: -10, cy: -10 });
    svg.append(dot);
    const legMs = 350, t0 = performance.now() + delay;
    const frame = (now) => {
      const t = (now - t0) / legMs;
      if (t < 0) return requestAnimationFrame(frame);
      const k = Math.floor(t);
      if (k >= legs.length) { dot.remove(); return; }
      const a = positions.get(legs[k][0]), b = positions.get(legs[k][1]);
      if (!a || !b) { dot.remove(); return; }
      const f = t - k;
      dot.setAttribute("cx", a.x + (b.x - a.x) * f);
      dot.setAttribute("cy", a.y + (b.y - a.y) * f);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  function renderRoutes(routes, now) {
    const tb = $("#routes tbody");
    tb.replaceChildren();
    const dt = prevTime ? (now - prevTime) / 1000 : 0;
    let rps = 0, eps = 0;
    for (const r of routes) {
      const p = prevRoutes && prevRoutes.get(r.route);
      const rate = p && dt > 0 ? Math.max(0, (r.requests - p.requests) / dt) : NaN;
      const erate = p && dt > 0 ? Math.max(0, (r.errors - p.errors) / dt) : NaN;
      if (!isNaN(rate)) rps += rate;
      if (!isNaN(erate)) eps += erate;
      tb.append(el("tr", { "data-route": r.route },
        el("td", {}, el("code", { text: r.route })), el("td", { cls: "num", text: fmt(rate, 1) }),
        el("td", { cls: "num" + (erate > 0 ? " failed" : ""), text: fmt(erate, 1) }),
        el("td", { cls: "num", text: String(r.requests) }), el("td", { cls: "num", text: String(r.errors) })));
    }
    if (prevRoutes && dt > 0) {
      rpsHist.push(rps); errHist.push(eps);
      while (rpsHist.length > HISTORY) { rpsHist.shift(); errHist.shift(); }
      spark($("#rps"), rpsHist, "#4cc38a", errHist, "#ff6b6b");
    }
    prevRoutes = new Map(routes.map((r) => [r.route, r]));
    prevTime = now;
  }

  function renderJourneys(journeys) {
    const tb = $("#journeys tbody");
    tb.replaceChildren();
    let n = 0;
    for (const j of journeys.slice().reverse()) {
      const key = j.id + "/" + j.attempt + "/" + j.at;
      if (!seen.has(key)) {
        seen.add(key);
        if (!firstJourneys && n < MAX_ANIMS) animate(j, (n++ % 20) * 40);
      }
    }
    firstJourneys = false;
    if (seen.size > 5000) seen.clear();
    for (const j of journeys) {
      const path = [j.origin].concat(j.steps.map((s) => s.node)).filter((v, i, a) => i === 0 || v !== a[i - 1]);
      if (j.finished) path.push(j.origin);
      const tr = el("tr", { "data-lp": j.id },
        el("td", {}, el("code", { text: j.id.slice(0, 8) })),
        el("td", { text: j.route || j.component + "/" + j.kind }),
        el("td", { text: path.join(" → ") }),
        el("td", { cls: j.status, text: j.status + (j.code ? " " + j.code : "") }),
        el("td", { cls: "num", text: fmt(j.elapsed_ms, 2) }));
      tr.addEventListener("click", () => { location.hash = "j=" + j.id; });
      tb.append(tr);
    }
  }

  async function openJourney() {
    const m = /^#j=([0-9a-f]{8,32})$/.exec(location.hash);
    const panel = $("#journey-panel");
    if (!m) { panel.hidden = true; return; }
    let j;
    try { j = await getJSON("api/journeys/" + m[1]); } catch (e) {
      panel.hidden = false; panel.dataset.lp = m[1];
      $("#journey-id").textContent = m[1];
      $("#journey-meta").textContent = "not kept here any more: " + e.message;
      $("#journey-steps").replaceChildren();
      return;
    }
    panel.hidden = false;
    panel.dataset.lp = j.id;
    $("#journey-id").textContent = j.id;
    $("#journey-meta").replaceChildren(el("span", { text:
      `${j.route || ""} ${j.component}/${j.kind} · ${j.status}${j.code ? " " + j.code : ""} · attempt ${j.attempt} · ` +
      `${fmt(j.elapsed_ms, 2)} ms at ${j.origin}` + (j.trace_id ? ` · trace ${j.trace_id}` : "") +
      (j.dropped ? ` · ${j.dropped} early steps dropped` : "") }));
    const box = $("#journey-steps");
    box.replaceChildren(el("div", { cls: "step-row head" }, ...["node", "component/kind", "version", "outcome", "queue wait + step (timeline)", "then"].map((t) => el("span", { text: t }))));
    const starts = j.steps.map((s) => Date.parse(s.start) * 1000 - s.wait_us).filter((v) => !isNaN(v));
    const ends = j.steps.map((s) => Date.parse(s.start) * 1000 + s.step_us).filter((v) => !isNaN(v));
    const t0 = Math.min(...starts), span = Math.max(1, Math.max(...ends) - t0);
    for (const s of j.steps) {
      const st = Date.parse(s.start) * 1000;
      const bar = el("div", { cls: "bar", title: `waited ${s.wait_us} µs, ran ${s.step_us} µs` });
      if (!isNaN(st)) {
        const pct = (v) => (100 * v / span).toFixed(2) + "%";
        bar.append(el("span", { cls: "wait", style: `left:${pct(st - s.wait_us - t0)};width:${pct(s.wait_us)}` }));
        bar.append(el("span", { cls: "run" + (s.outcome === "fail" ? " fail" : ""), style: `left:${pct(st - t0)};width:max(2px,${pct(s.step_us)})` }));
      }
      box.append(el("div", { cls: "step-row", "data-node": s.node },
        el("span", { text: s.node }), el("span", { text: s.component + "/" + s.kind }),
        el("code", { text: s.version || "" }), el("span", { cls: s.outcome === "fail" ? "failed" : "", text: s.outcome }),
        bar, el("span", { text: s.next ? "moved: " + s.next : "stayed" })));
    }
  }

  $("#journey-close").addEventListener("click", () => { history.replaceState(null, "", location.pathname); openJourney(); });
  window.addEventListener("hashchange", openJourney);
  openJourney();
  poll();
  setInterval(poll, POLL_MS);
})();
