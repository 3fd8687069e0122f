// The workbench's few lines of script: follow a job's status; draw the charts (plotly, served locally).
(function () {
  const st = document.getElementById("status");
  if (st && (st.dataset.status === "queued" || st.dataset.status === "running")) {
    const poll = async () => {
      const s = await (await fetch(`/runs/${st.dataset.run}/status.json`)).json();
      const bar = document.getElementById("progress");
      if (bar) bar.style.width = Math.min(100, (100 * s.done_draws) / s.draws).toFixed(1) + "%";
      if (s.status === "queued" || s.status === "running") setTimeout(poll, 500); else location.reload();
    };
    setTimeout(poll, 500);
  }
  if (!window.Plotly) return;
  const yi = (xs) => xs.map((v) => (v === null ? null : v / 1e8));
  const cfg = {displaylogo: false, responsive: true};
  const band = (d, small) => [
    {x: d.fiscal_year, y: yi(d.p95_cny), mode: "lines", line: {width: 0}, name: "P95", showlegend: false},
    {x: d.fiscal_year, y: yi(d.p05_cny), mode: "lines", fill: "tonexty", line: {width: 0},
      fillcolor: "rgba(42,102,170,0.25)", name: "P5–P95", showlegend: !small},
    {x: d.fiscal_year, y: yi(d.mean_cny), mode: small ? "lines" : "lines+markers", line: {color: "#2a66aa"},
      name: "mean 均值", showlegend: !small},
    {x: d.fiscal_year, y: yi(d.budget_cny), mode: "lines", name: "budget 预算线",
      line: {dash: "dash", color: "#b00020"}, showlegend: !small},
  ];
  const chart = document.getElementById("chart");
  const draw = async (payer) => {
    const d = await (await fetch(`/runs/${chart.dataset.run}/cash.json?payer=${encodeURIComponent(payer)}`)).json();
    Plotly.newPlot(chart, band(d, false), {title: {text: `${d.payer} · 亿元 (100 million yuan) · fiscal year 财年`},
      margin: {t: 40}, yaxis: {rangemode: "tozero"}}, cfg);
    const v = document.getElementById("vintage-chart");
    if (v) Plotly.newPlot(v, [
      {x: d.fiscal_year, y: yi(d.existing_mean_cny), type: "bar", name: "existing 已作出承诺", marker: {color: "#8a8a8a"}},
      {x: d.fiscal_year, y: yi(d.new_mean_cny), type: "bar", name: "new 新增资助", marker: {color: "#2a66aa"}},
    ], {barmode: "stack", title: {text: `${d.payer} · 亿元`}, margin: {t: 40}}, cfg);
  };
  if (chart) {
    draw(chart.dataset.payer);
    document.querySelectorAll("a.payer").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); draw(a.dataset.payer); }));
  }
  const grid = document.getElementById("multiples");
  if (grid) (async () => {
    const all = await (await fetch(`/runs/${grid.dataset.run}/payers.json`)).json();
    const zh = document.documentElement.lang.startsWith("zh");
    for (const d of all) {
      const cell = document.createElement("div");
      cell.className = "cell-chart";
      grid.appendChild(cell);
      Plotly.newPlot(cell, band(d, true), {title: {text: zh ? d.zh : d.en, font: {size: 12}}, height: 200,
        margin: {t: 30, l: 40, r: 10, b: 25}, yaxis: {rangemode: "tozero"}, showlegend: false}, {staticPlot: true});
    }
  })();
  const cmp = document.getElementById("compare-chart");
  if (cmp) {
    const rows = JSON.parse(cmp.dataset.rows);
    const payers = [...new Set(rows.map((r) => r.payer))];
    Plotly.newPlot(cmp, payers.map((p) => {
      const rs = rows.filter((r) => r.payer === p);
      return {x: rs.map((r) => r.fiscal_year), y: yi(rs.map((r) => r.change_mean_cny)), name: p, mode: "lines+markers",
        error_y: {type: "data", array: yi(rs.map((r) => 1.96 * (r.change_se_cny || 0))), visible: true}};
    }), {title: {text: "Δ reform − baseline 方案−基准 · 亿元 (±1.96 s.e.)"}, margin: {t: 40}}, cfg);
  }
  const sw = document.getElementById("sweep-chart");
  if (sw) {
    const pts = JSON.parse(sw.dataset.points);
    Plotly.newPlot(sw, [{x: pts.map((p) => p.value), y: pts.map((p) => p.p_exceed), mode: "lines+markers",
      name: "P(exceed)"}], {xaxis: {title: {text: sw.dataset.label}}, yaxis: {title: {text: "P(exceed), worst year"},
      tickformat: ".0%", rangemode: "tozero"}, margin: {t: 20}}, cfg);
  }
})();
