/* The agent console: state buttons and the hotline's reason for the state, the softphone (softphone.js), wrap-up
   with its countdown and extension, the line, own figures and the day's state changes; the heartbeat. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const DAY_EVERY_MS = 15000;
  let view = null;            // the latest agent view
  let viewAt = 0;             // performance.now() when it arrived: the countdown runs on the server's clock
  let lastState = null;
  let talked = null;          // the last call this agent talked on (not a consultation): what a wrap-up is about
  let wrapPending = false;    // a finished call still waiting for its wrap-up form to be saved

  function serverNow() {
    return view ? Date.parse(view.as_of) / 1000 + (performance.now() - viewAt) / 1000 : Date.now() / 1000;
  }

  function showState(v) {
    const state = $("state");
    state.textContent = H.t("state_" + v.status);
    state.dataset.state = v.status;
    state.className = "badge state-" + v.status;
    $("state-for").textContent = v.since ? H.t("in_state_for") + " " + H.seconds(serverNow() - v.since) : "";
    const why = $("state-reason");
    why.hidden = !v.reason;
    why.dataset.reason = v.reason || "";
    why.textContent = v.reason ? H.t("set_by_hotline", {reason: H.reason(v.reason)}) : "";
    for (const btn of document.querySelectorAll(".state-btn")) {
      btn.disabled = v.status === "on_call";
      btn.setAttribute("aria-pressed", String(btn.dataset.status === v.status));
    }
  }

  function showWrapUp(v) {
    $("wrapup-card").hidden = !(v.status === "wrap_up" || wrapPending);
    const running = v.status === "wrap_up" && !!v.wrap_up_due;
    const left = $("wrapup-left");
    left.hidden = !running;
    if (running) left.textContent = H.t("wrap_up_left", {s: Math.max(0, Math.ceil(v.wrap_up_due - serverNow()))});
    const extend = $("wrapup-extend");
    extend.hidden = !running;
    const atMax = running && v.wrap_up_max_due !== null && v.wrap_up_due >= v.wrap_up_max_due;
    extend.disabled = !running || atMax;
    extend.title = atMax ? H.t("wrapup_at_max") : "";
    $("wrapup-over").hidden = !(wrapPending && v.status !== "wrap_up");
  }

  function lineRow(tier, label, waiting, longest) {
    return H.el("tr", {"data-tier": tier, class: tier === "overall" ? "total" : null}, [
      H.el("th", {scope: "row"}, label), H.el("td", {"data-fig": "waiting"}, waiting),
      H.el("td", {"data-fig": "longest_wait_s"}, H.seconds(longest)),
    ]);
  }

  function showLine(line) {
    if (!line) return;
    $("line-body").replaceChildren(...line.tiers.map((t) => lineRow(t.tier, H.label(t.label, t.tier), t.waiting,
      t.longest_wait_s)), lineRow("overall", H.t("overall"), line.waiting, line.longest_wait_s));
  }

  /** The call to show: the view's, or during a wrap-up the last call talked on (its context stays on screen). */
  function callToShow(v) {
    const call = v.call;
    if (call && call.role !== "target" && ["connected", "held", "consulting"].includes(call.state)) talked = call;
    if (lastState === "on_call" && v.status !== "on_call" && talked) wrapPending = true;
    if (v.status === "wrap_up") wrapPending = true;
    if (!call && wrapPending && talked) return {...talked, state: "wrap_up", in_state_s: null, transfer: null};
    return call;
  }

  function render(v) {
    view = v;
    viewAt = performance.now();
    const call = callToShow(v);
    const changed = v.status !== lastState;
    lastState = v.status;
    showState(v);
    Softphone.update({...v, call});
    showWrapUp(v);
    showLine(v.line);
    if (changed) {
      loadToday().catch(() => {});
      loadDay().catch(() => {});
    }
  }

  async function loadToday() {
    const d = await H.api("GET", "/api/agents/me/today");
    $("today-taken").textContent = d.calls_taken;
    $("today-handle").textContent = H.seconds(d.mean_handle_s);
    $("today-holds").textContent = d.holds;
    $("today-hold-time").textContent = H.seconds(d.hold_s);
    $("today-transfers").textContent = d.transfers;
  }

  async function loadDay() {
    const rows = await H.api("GET", "/api/agents/me/presence");
    $("presence-body").replaceChildren(...rows.slice().reverse().map((r) => H.el("tr", {"data-to": r.to}, [
      H.el("td", {}, H.time(r.at)),
      H.el("td", {}, (r.from ? H.t("state_" + r.from) : "–") + " → " + H.t("state_" + r.to)),
      H.el("td", {"data-reason": r.reason || ""}, H.reason(r.reason) || "–"),
    ])));
    $("presence-empty").hidden = rows.length > 0;
  }

  async function heartbeat() {
    render(await H.api("POST", "/api/agents/me/heartbeat", {device: Softphone.deviceState()}));
  }

  async function choose(status) {
    $("state-error").hidden = true;
    try {
      render(await H.api("PUT", "/api/agents/me/status", {status}));
      heartbeat().catch(() => {});   // offline, this makes sure the simulated device is there before a call rings
    } catch (err) {
      $("state-error").textContent = err.message;
      $("state-error").hidden = false;
    }
  }

  for (const btn of document.querySelectorAll(".state-btn")) btn.addEventListener("click", () => choose(btn.dataset.status));

  $("wrapup-extend").addEventListener("click", async () => {
    const result = $("wrapup-result");
    try {
      render(await H.api("POST", "/api/agents/me/wrapup/extend", {seconds: H.PAGE.wrap_up_extend_s}));
      result.textContent = "";
    } catch (err) {
      result.textContent = err.message;
    }
  });

  $("wrapup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const result = $("wrapup-result");
    try {
      await H.api("POST", "/api/agents/me/wrapup", {disposition: $("wrapup-disposition").value, notes: $("wrapup-notes").value});
      wrapPending = false;
      talked = null;
      $("wrapup-form").reset();
      result.textContent = H.t("wrapup_saved");
      render(await H.api("GET", "/api/agents/me"));
      await loadToday();
    } catch (err) {
      result.textContent = err.message;
    }
  });

  Softphone.init(render);
  // The countdowns run between polls, on the server's clock.
  setInterval(() => { if (view) { showState(view); showWrapUp(view); } }, 1000);
  document.addEventListener("visibilitychange", () => { heartbeat().catch(() => {}); });
  H.poll(heartbeat, H.PAGE.heartbeat_ms, () => {});
  H.poll(async () => render(await H.api("GET", "/api/agents/me")), H.PAGE.poll_ms, () => {});
  H.poll(loadDay, DAY_EVERY_MS, () => {});
})();
