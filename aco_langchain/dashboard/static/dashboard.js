// aco-langchain spend dashboard: fetches data.json (beside this page) and draws hand-written
// SVG charts. No library, nothing loaded from elsewhere. When everything is drawn,
// <body data-ready="1">; on failure data-ready="error" and the reason is shown.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const TIER_COLORS = { "1": "#16a34a", "2": "#0ea5e9", "3": "#6366f1", "4": "#f59e0b", "5": "#dc2626", "-": "#9ca3af" };

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function usd(x) {
    if (x === null || x === undefined) return "n/a";
    const a = Math.abs(x);
    const digits = a === 0 ? 2 : a < 0.01 ? 6 : a < 1 ? 4 : 2;
    return (x < 0 ? "-$" : "$") + a.toFixed(digits);
  }

  function pct(x) {
    return x === null || x === undefined ? "n/a" : (100 * x).toFixed(1) + "%";
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function empty(host, why) {
    host.replaceChildren();
    const d = document.createElement("div");
    d.className = "empty";
    d.textContent = why;
    host.appendChild(d);
  }

  // Vertical bars: one per category, stacked by series; optional line over the bars.
  // cats: [label]; stacks: [{name, color, values: [..]}]; line: {values, label} | null.
  function columns(host, cats, stacks, line, opts) {
    if (!cats.length) return empty(host, "no spend recorded yet");
    const W = opts.width || 960, H = 240, L = 64, R = 12, T = 12, B = 40;
    const totals = cats.map((_, i) => stacks.reduce((s, st) => s + st.values[i], 0));
    const top = niceMax(Math.max(...totals, ...(line ? line.values : [0])));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label });
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4;
      svg.appendChild(el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, usd(v)));
    }
    const bw = (W - L - R) / cats.length;
    cats.forEach((c, i) => {
      let acc = 0;
      for (const st of stacks) {
        const v = st.values[i];
        if (!(v > 0)) continue;
        const r = el("rect", {
          class: "bar", x: L + i * bw + bw * 0.15, width: bw * 0.7,
          y: y(acc + v), height: y(acc) - y(acc + v), fill: st.color,
          "data-category": c, "data-series": st.name, "data-value": v,
        });
        r.appendChild(el("title", {}, `${c} · ${st.name}: ${usd(v)}`));
        svg.appendChild(r);
        acc += v;
      }
      if (opts.labels) {
        svg.appendChild(el("text", { x: L + i * bw + bw / 2, y: y(acc) - 4, "text-anchor": "middle" }, opts.labels[i]));
      }
      if (cats.length <= 31 && (cats.length <= 12 || i % Math.ceil(cats.length / 12) === 0)) {
        const short = W < 600 && /^\d{4}-\d\d-\d\d$/.test(c) ? c.slice(5) : c; // MM-DD when narrow
        svg.appendChild(el("text", { x: L + i * bw + bw / 2, y: H - B + 16, "text-anchor": "middle" }, short));
      }
    });
    if (line) {
      const pts = line.values.map((v, i) => `${L + i * bw + bw / 2},${y(v)}`).join(" ");
      const pl = el("polyline", { class: "baseline", points: pts });
      pl.appendChild(el("title", {}, line.label));
      svg.appendChild(pl);
    }
    svg.appendChild(el("line", { class: "axis", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
    if (stacks.length > 1) {
      let x = L;
      for (const st of stacks) {
        svg.appendChild(el("rect", { x, y: H - 14, width: 10, height: 10, fill: st.color }));
        svg.appendChild(el("text", { x: x + 14, y: H - 5 }, st.name));
        x += 70;
      }
    }
    host.replaceChildren(svg);
  }

  // Horizontal bars of budget use: rows [{key, spent_usd, budget_usd, share}].
  function budgetBars(host, rows, label) {
    if (!rows.length) return empty(host, "nothing to show");
    const W = 470, L = 130, R = 96, rowH = 22, T = 6;
    const H = T * 2 + rows.length * rowH;
    const maxShare = Math.max(1, ...rows.map((r) => r.share || 0));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
    const x = (s) => L + (W - L - R) * (s / maxShare);
    rows.forEach((r, i) => {
      const yy = T + i * rowH;
      svg.appendChild(el("text", { x: L - 6, y: yy + 14, "text-anchor": "end" }, r.key.length > 18 ? r.key.slice(0, 17) + "…" : r.key));
      svg.appendChild(el("rect", { x: L, y: yy + 3, width: W - L - R, height: rowH - 8, fill: "#f3f4f6" }));
      const share = r.share === null ? 0 : r.share;
      const bar = el("rect", {
        class: "bar" + (share > 1 ? " over" : ""), x: L, y: yy + 3, width: Math.max(1, x(share) - L),
        height: rowH - 8, fill: share > 0.9 ? "#f59e0b" : "#6366f1",
        "data-category": r.key, "data-value": r.spent_usd,
      });
      bar.appendChild(el("title", {}, `${r.key}: ${usd(r.spent_usd)} of ${r.budget_usd === null ? "no budget" : usd(r.budget_usd)}`));
      svg.appendChild(bar);
      if (maxShare > 1) svg.appendChild(el("line", { class: "axis", x1: x(1), x2: x(1), y1: yy, y2: yy + rowH }));
      svg.appendChild(el("text", { x: W - R + 6, y: yy + 14 }, r.budget_usd === null ? usd(r.spent_usd) : `${usd(r.spent_usd)} · ${pct(r.share)}`));
    });
    host.replaceChildren(svg);
  }

  function setKpi(id, text, value) {
    const e = document.getElementById(id);
    e.textContent = text;
    if (value !== undefined && value !== null) e.dataset.value = String(value);
  }

  function render(d) {
    const t = d.totals;
    setKpi("kpi-total", usd(t.total_usd), t.total_usd);
    setKpi("kpi-calls", String(t.calls), t.calls);
    setKpi("kpi-baseline", usd(t.baseline_usd), t.baseline_usd);
    setKpi("kpi-savings", usd(t.savings_usd), t.savings_usd);
    setKpi("kpi-savings-share", d.savings_share === null ? "" : pct(d.savings_share) + " of the baseline", d.savings_share);
    const o = d.outcomes;
    setKpi("kpi-success", o.success_rate === null ? "–" : pct(o.success_rate), o.success_rate);
    setKpi("kpi-success-n", `${o.runs_with_outcome} of ${o.runs} runs observed; ${o.runs_without_outcome} with no outcome (not counted)`);
    setKpi("kpi-cps", o.cost_per_successful_task === null ? "–" : usd(o.cost_per_successful_task), o.cost_per_successful_task);
    const r = d.rates;
    setKpi("kpi-escalation", pct(r.escalation_rate), r.escalation_rate);
    setKpi("kpi-escalation-n", `${r.escalations} of ${r.calls} calls`);
    setKpi("kpi-cache", pct(r.cache_hit_rate), r.cache_hit_rate);
    setKpi("kpi-cache-n", `${r.cache_hits} of ${r.calls} calls`);
    document.getElementById("source").textContent =
      `${d.ledger} · ${t.calls} calls from ${d.first_day || "–"} to ${d.last_day || "–"} · baseline: ${d.baseline}`;

    const days = d.days.map((x) => x.day);
    const tiers = d.tiers.map((x) => x.tier);
    const stacks = tiers.map((tier) => ({
      name: tier === "-" ? "no tier" : "tier " + tier,
      color: TIER_COLORS[tier] || "#9ca3af",
      values: d.days.map((x) => x.by_tier[tier] || 0),
    }));
    columns(document.getElementById("chart-days"), days, stacks,
      { values: d.days.map((x) => x.baseline_usd), label: "baseline" }, { label: "spend per day" });
    columns(document.getElementById("chart-tiers"), tiers.map((x) => (x === "-" ? "no tier" : "tier " + x)),
      [{ name: "spend", color: "#6366f1", values: d.tiers.map((x) => x.cost_usd) }], null,
      { label: "spend per tier", width: 470, labels: d.tiers.map((x) => `${usd(x.cost_usd)} · ${x.calls} calls`) });
    columns(document.getElementById("chart-savings"), days,
      [{ name: "saved", color: "#16a34a", values: d.days.map((x) => Math.max(0, x.savings_usd)) }], null,
      { label: "savings per day", width: 470 });
    document.getElementById("run-budget-note").textContent =
      d.run_budget_usd === null ? "(no per-run budget)" : `(budget ${usd(d.run_budget_usd)} per run; top ${d.runs.length})`;
    budgetBars(document.getElementById("chart-runs"), d.runs, "budget use per run");
    budgetBars(document.getElementById("chart-keys"), d.keys, "budget use per key");
    document.body.dataset.ready = "1";
  }

  // aco serve with API keys: data.json needs the bearer key; asked once, kept for the tab.
  function load(askedKey) {
    const key = sessionStorage.getItem("aco-key");
    const headers = key ? { Authorization: "Bearer " + key } : {};
    return fetch("data.json", { cache: "no-store", headers }).then((res) => {
      if (res.status === 401 && !askedKey) {
        const k = window.prompt("API key for this server");
        if (k) {
          sessionStorage.setItem("aco-key", k);
          return load(true);
        }
      }
      if (!res.ok) throw new Error(`data.json: HTTP ${res.status}`);
      return res.json();
    });
  }

  load(false)
    .then(render)
    .catch((err) => {
      document.getElementById("source").textContent = "cannot load the ledger: " + err.message;
      document.body.dataset.ready = "error";
    });
})();
