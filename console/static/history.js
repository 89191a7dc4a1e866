/* History: the day's figures per 15 minutes as two SVG charts and a table (no chart library needed). */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const NS = "http://www.w3.org/2000/svg";
  const W = 960, H_ = 220, PAD = {l: 40, r: 10, t: 10, b: 28};

  function svg(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function frame(rows, maxY, fmtY) {
    const root = svg("svg", {viewBox: `0 0 ${W} ${H_}`, role: "img", class: "chart-svg"});
    const innerW = W - PAD.l - PAD.r, innerH = H_ - PAD.t - PAD.b;
    for (let i = 0; i <= 4; i++) {
      const y = PAD.t + innerH - (innerH * i) / 4;
      root.append(svg("line", {x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "grid"}));
      root.append(svg("text", {x: PAD.l - 4, y: y + 4, class: "axis", "text-anchor": "end"}, fmtY((maxY * i) / 4)));
    }
    rows.forEach((row, i) => {
      const start = row.start.slice(11, 16);
      if (start.endsWith(":00") && Number(start.slice(0, 2)) % 2 === 0) {
        root.append(svg("text", {x: PAD.l + (innerW * (i + 0.5)) / rows.length, y: H_ - 8, class: "axis", "text-anchor": "middle"}, start));
      }
    });
    return {root, innerW, innerH};
  }

  function volumeChart(rows) {
    const maxY = Math.max(4, ...rows.map((r) => r.overall.offered));
    const {root, innerW, innerH} = frame(rows, maxY, (v) => Math.round(v));
    const slot = innerW / rows.length, bar = Math.max(1, slot / 3.5);
    rows.forEach((row, i) => {
      [["offered", "bar-offered"], ["answered", "bar-answered"], ["abandoned", "bar-abandoned"]].forEach(([fig, cls], k) => {
        const v = row.overall[fig];
        if (!v) return;
        const h = (innerH * v) / maxY;
        const rect = svg("rect", {x: PAD.l + i * slot + k * bar + bar * 0.25, y: PAD.t + innerH - h, width: bar, height: h, class: cls});
        rect.append(svg("title", {}, `${row.start.slice(11, 16)} ${H.t(fig)}: ${v}`));
        root.append(rect);
      });
    });
    return root;
  }

  function serviceChart(rows) {
    const {root, innerW, innerH} = frame(rows, 1, (v) => Math.round(v * 100) + "%");
    const slot = innerW / rows.length;
    [["service_level", "line-sl"], ["abandon_rate", "line-ab"]].forEach(([fig, cls]) => {
      let d = "";
      rows.forEach((row, i) => {
        const v = row.overall[fig];
        if (v === null || v === undefined) return;
        const x = PAD.l + slot * (i + 0.5), y = PAD.t + innerH - innerH * v;
        d += (d ? " L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        const dot = svg("circle", {cx: x, cy: y, r: 3, class: cls});
        dot.append(svg("title", {}, `${row.start.slice(11, 16)} ${H.t(fig)}: ${H.pct(v)}`));
        root.append(dot);
      });
      if (d) root.append(svg("path", {d, class: cls, fill: "none"}));
    });
    return root;
  }

  function table(rows) {
    const busy = rows.filter((r) => r.overall.offered || r.overall.answered || r.overall.abandoned);
    $("intervals-body").replaceChildren(...busy.map((r) => H.el("tr", {"data-start": r.start}, [
      H.el("td", {}, r.start.slice(11, 16)), H.el("td", {}, r.overall.offered), H.el("td", {}, r.overall.answered),
      H.el("td", {}, r.overall.abandoned), H.el("td", {}, H.seconds(r.overall.asa_s)),
      H.el("td", {}, H.pct(r.overall.service_level)), H.el("td", {}, H.pct(r.overall.abandon_rate)),
    ])));
    $("no-data").hidden = busy.length > 0;
  }

  (async () => {
    const d = await H.api("GET", "/api/history?date=" + encodeURIComponent(H.PAGE.date));
    $("chart-volume").replaceChildren(volumeChart(d.intervals));
    $("chart-service").replaceChildren(serviceChart(d.intervals));
    table(d.intervals);
    const h = d.handling;
    $("handling-held").textContent = h.calls_held;
    $("handling-holds").textContent = h.holds;
    $("handling-hold-time").textContent = H.seconds(h.hold_s);
    $("handling-transferred").textContent = h.calls_transferred;
    $("handling-transfers").textContent = h.transfers;
    $("handling-expired").textContent = h.wrap_ups_expired;
    document.body.dataset.loaded = "history";
  })().catch((err) => { $("no-data").hidden = false; $("no-data").textContent = err.message; });
})();
