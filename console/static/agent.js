/* The agent console: state buttons, the routed caller's context, wrap-up with its countdown, own figures. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  let view = null;            // the latest /api/agents/me
  let lastCall = null;        // the call this agent last had on screen: it is what a wrap-up is about
  let wrapPending = false;    // a finished call still waiting for its wrap-up form to be saved
  let lastState = null;
  const LABELS = H.PAGE.labels;
  const category = (key) => (key && LABELS.categories[key]) || key || "";

  function showState(v) {
    const state = $("state");
    state.textContent = H.t("state_" + v.status);
    state.dataset.state = v.status;
    state.className = "badge state-" + v.status;
    $("state-for").textContent = v.since ? H.t("in_state_for") + " " + H.seconds(Date.parse(v.as_of) / 1000 - v.since) : "";
    for (const btn of document.querySelectorAll(".state-btn")) {
      btn.disabled = v.status === "on_call";
      btn.setAttribute("aria-pressed", String(btn.dataset.status === v.status));
    }
  }

  function ticketItem(tk) {
    return H.el("li", {}, [H.el("strong", {}, "#" + tk.number), " ", H.el("span", {class: "badge"}, tk.status), " ",
      category(tk.category), " ", H.el("span", {class: "muted"}, H.time(tk.created))]);
  }

  function callItem(c) {
    const parts = [H.el("span", {class: "muted"}, H.time(c.arrived)), " ", category(c.category), " ", H.el("span", {class: "badge"}, c.outcome)];
    if (c.disposition) parts.push(" ", LABELS.dispositions[c.disposition] || c.disposition);
    if (c.notes) parts.push(" — ", c.notes);
    return H.el("li", {}, parts);
  }

  function showCall(call) {
    $("no-call").hidden = !!call;
    $("call").hidden = !call;
    $("call-phase").hidden = !call;
    if (!call) return;
    $("call-phase").textContent = call.connected ? H.t("connected") : H.t("incoming_call");
    $("call-phase").className = "badge " + (call.connected ? "ok" : "warn");
    $("call-member").textContent = call.member ? call.member.name + " (" + call.member.uid + ")" : H.t("guest");
    $("call-number").textContent = call.number || "–";
    $("call-tier").textContent = H.label(call.tier_label, call.tier);
    $("call-tier").dataset.tier = call.tier;
    $("call-category").textContent = H.label(call.category_label, call.category || "–");
    $("call-verified").textContent = call.verified ? H.t("yes_verified") : H.t("not_verified");
    $("call-verified").className = call.verified ? "ok-text" : "warn-text";
    $("call-waited").textContent = H.seconds(call.waited_s);
    $("call-callback").hidden = !call.callback;
    $("call-callback").textContent = call.callback ? H.t("callback_call") + " #" + call.callback : "";
    const tickets = $("call-tickets");
    tickets.replaceChildren(...(call.tickets.length ? call.tickets.map(ticketItem) : [H.el("li", {class: "muted"}, H.t("no_tickets"))]));
    const hist = $("call-history");
    hist.replaceChildren(...(call.last_calls.length ? call.last_calls.map(callItem) : [H.el("li", {class: "muted"}, H.t("no_last_calls"))]));
  }

  function showWrapUp(v) {
    const card = $("wrapup-card");
    card.hidden = !(v.status === "wrap_up" || wrapPending);
    const left = $("wrapup-left");
    if (v.status === "wrap_up" && v.wrap_up_due) {
      left.hidden = false;
      left.textContent = H.t("wrap_up_left", {s: Math.max(0, Math.ceil(v.wrap_up_due - Date.parse(v.as_of) / 1000))});
    } else {
      left.hidden = true;
    }
  }

  async function loadToday() {
    const d = await H.api("GET", "/api/agents/me/today");
    $("today-taken").textContent = d.calls_taken;
    $("today-handle").textContent = H.seconds(d.mean_handle_s);
  }

  async function refresh() {
    const v = await H.api("GET", "/api/agents/me");
    view = v;
    if (v.call) lastCall = v.call.call_sid;
    if (lastState === "on_call" && v.status !== "on_call" && lastCall) wrapPending = true;
    if (v.status !== lastState) loadToday().catch(() => {});
    lastState = v.status;
    showState(v);
    showCall(v.call);
    showWrapUp(v);
  }

  async function choose(status) {
    $("state-error").hidden = true;
    try {
      const v = await H.api("PUT", "/api/agents/me/status", {status});
      view = v; showState(v); showCall(v.call);
    } catch (err) {
      $("state-error").textContent = err.message;
      $("state-error").hidden = false;
    }
  }

  for (const btn of document.querySelectorAll(".state-btn")) btn.addEventListener("click", () => choose(btn.dataset.status));

  $("wrapup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const result = $("wrapup-result");
    try {
      await H.api("POST", "/api/agents/me/wrapup", {disposition: $("wrapup-disposition").value, notes: $("wrapup-notes").value});
      wrapPending = false;
      $("wrapup-form").reset();
      result.textContent = H.t("wrapup_saved");
      await refresh();
      await loadToday();
    } catch (err) {
      result.textContent = err.message;
    }
  });

  H.poll(refresh, H.PAGE.poll_ms, () => {});
})();
