// The workbench's few lines of script: poll a running run's status; draw the cash chart (plotly, served locally).
(function () {
  const st = document.getElementById("status");
  if (st && (st.dataset.status === "queued" || st.dataset.status === "running")) {
    const poll = async () => {
      const r = await fetch(`/runs/${st.dataset.run}/status.json`);
      const s = await r.json();
      const bar = document.getElementById("progress");
      if (bar) bar.style.width = (100 * s.done_draws / s.draws).toFixed(1) + "%";
      if (s.status === "queued" || s.status === "running") setTimeout(poll, 500); else location.reload();
    };
    setTimeout(poll, 500);
  }
  const chart = document.getElementById("chart");
  const draw = async (payer) => {
    const d = await (await fetch(`/runs/${chart.dataset.run}/cash.json?payer=${encodeURIComponent(payer)}`)).json();
    const yi = (xs) => xs.map((v) => (v === null ? null : v / 1e8));
    const x = d.fiscal_year;
    Plotly.newPlot(chart, [
      {x, y: yi(d.p95_cny), mode: "lines", line: {width: 0}, name: "P95", showlegend: false},
      {x, y: yi(d.p05_cny), mode: "lines", fill: "tonexty", line: {width: 0}, fillcolor: "rgba(42,102,170,0.25)", name: "P5–P95"},
      {x, y: yi(d.mean_cny), mode: "lines+markers", line: {color: "#2a66aa"}, name: "mean 均值"},
      {x, y: yi(d.budget_cny), mode: "lines", name: "budget 预算线", line: {dash: "dash", color: "#b00020"}},
    ], {title: {text: `${d.payer} · 亿元 (100 million yuan) · fiscal year 财年`}, margin: {t: 40}}, {displaylogo: false});
  };
  if (chart && window.Plotly) {
    draw(chart.dataset.payer);
    document.querySelectorAll("a.payer").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); draw(a.dataset.payer); }));
  }
  const sw = document.getElementById("sweep-chart");
  if (sw && window.Plotly) {
    const pts = JSON.parse(sw.dataset.points);
    Plotly.newPlot(sw, [{x: pts.map((p) => p.value), y: pts.map((p) => p.p_exceed), mode: "lines+markers",
      name: "P(exceed)"}], {xaxis: {title: {text: sw.dataset.label}}, yaxis: {title: {text: "P(exceed), worst year"},
      tickformat: ".0%", rangemode: "tozero"}, margin: {t: 20}}, {displaylogo: false});
  }
})();
