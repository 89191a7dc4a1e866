/* The supervisor dashboard: polls /api/dashboard and redraws figures, agents (state, the hotline's reason, call state),
   the queue and callbacks; and the agents' recent state changes (/api/presence). */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const LABELS = H.PAGE.tier_labels;
  const PRESENCE_ROWS = 50, PRESENCE_EVERY_MS = 5000;
  const tierName = (tier) => tier === "overall" ? H.t("overall") : (LABELS[tier] || tier);

  function cell(tier, fig, text, status) {
    return H.el("td", {"data-tier": tier, "data-fig": fig, class: status ? "st-" + status : null}, text);
  }

  function figureRow(tier, f) {
    const st = f.status || {};
    const sl = H.pct(f.service_level) + (f.targets ? " / " + H.pct(f.targets.service_level_goal) : "");
    return H.el("tr", {"data-tier": tier, class: tier === "overall" ? "total" : null}, [
      H.el("th", {scope: "row"}, tierName(tier)),
      cell(tier, "waiting", f.waiting),
      cell(tier, "longest_wait_s", H.seconds(f.longest_wait_s), st.longest_wait_s),
      cell(tier, "offered", f.offered),
      cell(tier, "answered", f.answered),
      cell(tier, "abandoned", f.abandoned),
      cell(tier, "asa_s", H.seconds(f.asa_s)),
      cell(tier, "service_level", sl, st.service_level),
      cell(tier, "abandon_rate", H.pct(f.abandon_rate), st.abandon_rate),
    ]);
  }

  function draw(d) {
    const tiers = Object.keys(d.stats.tiers);
    $("figures-body").replaceChildren(...tiers.map((t) => figureRow(t, d.stats.tiers[t])), figureRow("overall", d.stats.overall));
    $("agents-body").replaceChildren(...d.agents.map((a) => H.el("tr", {"data-agent": a.login}, [
      H.el("td", {}, a.name + " (" + a.login + ")"),
      H.el("td", {}, H.el("span", {class: "badge state-" + a.state, "data-state": a.state}, H.t("state_" + a.state))),
      H.el("td", {"data-reason": a.reason || "", class: a.reason ? "st-warn" : null}, H.reason(a.reason) || "–"),
      H.el("td", {}, H.seconds(a.in_state_s)),
      H.el("td", {"data-call-state": a.call_state || ""}, a.call_state ? H.t("call_" + a.call_state) : "–"),
      H.el("td", {}, a.caller_tier ? tierName(a.caller_tier) : "–"),
    ])));
    $("queue-body").replaceChildren(...d.queue.map((q) => H.el("tr", {"data-call": q.call_sid}, [
      H.el("td", {}, q.position), H.el("td", {}, tierName(q.tier)), H.el("td", {}, q.number || "–"),
      H.el("td", {}, (q.category && H.PAGE.categories[q.category]) || q.category || "–"), H.el("td", {}, q.verified ? "✓" : "–"), H.el("td", {}, H.seconds(q.waited_s)),
    ])));
    $("queue-empty").hidden = d.queue.length > 0;
    for (const node of document.querySelectorAll("[data-cb]")) {
      const v = d.callbacks[node.dataset.cb];
      node.textContent = v;
      node.className = node.dataset.cb === "overdue" && v > 0 ? "st-bad" : node.dataset.cb === "failed" && v > 0 ? "st-warn" : "";
    }
    $("as-of").textContent = H.time(d.as_of);
  }

  // Staffing changes by the quarter hour: polled once a minute, not with the live figures.
  H.poll(async () => {
    const s = await H.api("GET", "/api/staffing");
    $("staffing-body").replaceChildren(...s.intervals.map((i) => H.el("tr", {"data-start": i.start}, [
      H.el("td", {}, i.start), H.el("td", {}, Math.round(i.calls)), H.el("td", {}, i.open === false ? "–" : i.agents),
    ])));
  }, 60000, () => {});

  // Agents' state changes, newest first: written to SQL by the worker's sweep every few seconds.
  H.poll(async () => {
    const rows = await H.api("GET", "/api/presence?limit=" + PRESENCE_ROWS);
    $("presence-body").replaceChildren(...rows.map((r) => H.el("tr", {"data-agent": r.login, "data-to": r.to}, [
      H.el("td", {}, H.time(r.at)), H.el("td", {}, r.login),
      H.el("td", {}, (r.from ? H.t("state_" + r.from) : "–") + " → " + H.t("state_" + r.to)),
      H.el("td", {"data-reason": r.reason || ""}, H.reason(r.reason) || "–"),
    ])));
    $("presence-empty").hidden = rows.length > 0;
  }, PRESENCE_EVERY_MS, () => {});

  H.poll(async () => {
    draw(await H.api("GET", "/api/dashboard"));
    $("stale").hidden = true;
  }, H.PAGE.poll_ms, () => { $("stale").hidden = false; });
})();
