/* The softphone card: the agent's call (ringing, connected, held, consulting, wrap-up) with the caller's context,
   and its controls: accept, decline, hold, mute, hang up, transfer (cold or warm, to an agent or back to the
   queue), complete or cancel a warm transfer. The device is the one GET /api/agents/me names: "simulated"
   (offline: the app drives the simulator's device), "sdk" (twiliodevice.js) or "phone" (the agent's own phone).

   window.Softphone: init(render) (agent.js's redraw, given the agent view each control answers with),
   update(view), deviceState() for the heartbeat. */
"use strict";
window.Softphone = (() => {
  const $ = (id) => document.getElementById(id);
  const ring = window.hotlineRingTone;
  const sdk = window.HotlineSdk;
  const LABELS = H.PAGE.labels;
  const category = (key) => (key && LABELS.categories[key]) || key || "";
  const LIVE = ["connected", "held", "consulting"];
  const RETRY_MS = 30000;        // a browser phone that failed to register tries again this often
  let view = null;
  let render = () => {};
  let accepting = null;          // the CallSid accepted here, while the view still says it rings
  let declined = null;           // the CallSid declined here, likewise
  let busy = false;              // a control request is in flight
  let shownSid = null;
  let notified = null;           // the desktop notification of the ringing call
  let retryAt = 0;

  function mode() {
    const d = view && view.device;
    if (!d) return "";
    return d.mode === "phone" && !d.endpoint ? "unknown" : d.mode;
  }

  function deviceState() {
    return mode() === "sdk" ? sdk.heartbeatState() : "unknown";
  }

  function showDevice(m) {
    const badge = $("device-status");
    let text = H.t("device_unknown"), status = m || "unknown";
    if (m === "simulated") text = H.t("device_simulated");
    else if (m === "phone") text = H.t("device_phone", {endpoint: view.device.endpoint || ""});
    else if (m === "sdk") {
      // still trying after the grace period: as good as unregistered (and the heartbeat says so)
      status = sdk.state === "registering" && sdk.heartbeatState() === "unregistered" ? "unregistered" : sdk.state;
      text = status === "failed" ? H.t("device_failed", {error: sdk.error || ""})
        : H.t("device_" + (status === "idle" ? "loading" : status));
    }
    badge.textContent = text;
    badge.dataset.device = status;
    badge.className = "badge device " + (status === "registered" || m === "simulated" ? "ok" : "warn");
  }

  function ticketItem(tk) {
    return H.el("li", {}, [H.el("strong", {}, "#" + tk.number), " ", H.el("span", {class: "badge"}, tk.status), " ",
      category(tk.category), " ", H.el("span", {class: "muted"}, H.time(tk.created))]);
  }

  function callItem(c) {
    const parts = [H.el("span", {class: "muted"}, H.time(c.arrived)), " ", category(c.category), " ",
      H.el("span", {class: "badge"}, c.outcome)];
    if (c.disposition) parts.push(" ", LABELS.dispositions[c.disposition] || c.disposition);
    if (c.notes) parts.push(" — ", c.notes);
    return H.el("li", {}, parts);
  }

  function showContext(call) {
    $("no-call").hidden = !!call;
    $("call").hidden = !call;
    if (!call) return;
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
    const agents = call.agents || [];
    $("call-agents-line").hidden = agents.length === 0;
    $("call-agents").textContent = agents.join(" → ");
    const tickets = call.tickets || [], history = call.last_calls || [];
    $("call-tickets").replaceChildren(...(tickets.length ? tickets.map(ticketItem)
      : [H.el("li", {class: "muted"}, H.t("no_tickets"))]));
    $("call-history").replaceChildren(...(history.length ? history.map(callItem)
      : [H.el("li", {class: "muted"}, H.t("no_last_calls"))]));
  }

  /** The line under the phase: who passed the call on, or the transfer under way. */
  function noteOf(call) {
    const xfer = call.transfer;
    if (call.role === "target") {
      const by = (xfer && xfer.by) || call.transferred_by || "";
      return call.state === "ringing" ? H.t("transfer_offer", {by}) : H.t("consulting_with", {by});
    }
    if (xfer && xfer.state === "consulting") return H.t("consulting_target", {to: xfer.to});
    if (xfer) return H.t("transferring", {to: xfer.to, mode: H.t("mode_" + xfer.mode)});
    if (call.transferred_by) return H.t("transferred_by", {by: call.transferred_by});
    return "";
  }

  function notify(call) {
    if (!("Notification" in window) || Notification.permission !== "granted" || notified) return;
    const parts = [H.label(call.category_label, call.category || ""), call.verified ? H.t("yes_verified") : ""];
    try {
      notified = new Notification(H.t("notify_title", {tier: H.label(call.tier_label, call.tier)}),
        {body: parts.filter(Boolean).join(" · "), tag: "hotline-" + call.call_sid, requireInteraction: true});
      notified.onclick = () => { window.focus(); if (notified) notified.close(); };
    } catch (err) {
      notified = null;   // a browser that shows notifications only from a service worker: the page still rings
    }
  }

  function stopRinging() {
    ring.stop();
    if (notified) { notified.close(); notified = null; }
  }

  function showRinging(call, m) {
    const sid = call && call.call_sid;
    const offered = !!call && call.state === "ringing" && accepting !== sid && declined !== sid;
    const ringing = offered || !!sdk.incoming;
    $("softphone").dataset.ringing = ringing ? "1" : "0";
    $("ring-controls").hidden = !ringing;
    $("phone-rings").hidden = !(ringing && m === "phone");
    $("btn-accept").hidden = m === "phone";
    $("btn-accept").disabled = busy || (m === "sdk" && !sdk.incoming);
    if (ringing && m !== "phone") ring.start(); else ring.stop();
    if (ringing && call) notify(call);
    if (!ringing) stopRinging();
    $("sound-note").hidden = !(ring.playing && !ring.audible);
    return ringing;
  }

  /** Answered, but the caller is not in the conference yet (the agent hears the whisper): nothing to hold yet. */
  function joining(call) {
    return call.state === "connected" && call.joined === false;
  }

  function showControls(call, ringing) {
    const live = !!call && LIVE.includes(call.state) && !ringing;
    const mine = live && call.role !== "target";
    const xfer = call && call.transfer;
    const wait = live && joining(call);
    $("call-controls").hidden = !live;
    $("btn-hold").hidden = !mine;
    $("btn-hold").textContent = call && call.held ? H.t("resume") : H.t("hold");
    $("btn-hold").dataset.on = call && call.held ? "1" : "0";
    $("btn-mute").textContent = call && call.muted ? H.t("unmute") : H.t("mute");
    $("btn-mute").dataset.on = call && call.muted ? "1" : "0";
    $("call-muted").hidden = !(live && call.muted);
    $("consult-controls").hidden = !(mine && xfer);
    $("btn-transfer-complete").hidden = !(xfer && xfer.mode === "warm");
    $("btn-transfer-complete").disabled = busy || !(xfer && xfer.state === "consulting");
    $("transfer-form").hidden = !(mine && !xfer);
    for (const b of document.querySelectorAll("#softphone button:not(#btn-accept):not(#btn-transfer-complete)")) {
      b.disabled = busy;
    }
    if (wait) for (const id of ["btn-hold", "btn-mute", "btn-transfer", "btn-transfer-queue"]) $(id).disabled = true;
  }

  function update(v) {
    view = v;
    const m = mode();
    if (m === "sdk" && (sdk.state === "idle" || (sdk.state === "failed" && Date.now() >= retryAt))) {
      retryAt = Date.now() + RETRY_MS;
      sdk.start();
    }
    const call = v.call;
    const sid = call ? call.call_sid : null;
    if (sid !== shownSid) {
      shownSid = sid;
      $("call-error").hidden = true;
      if (notified) { notified.close(); notified = null; }
    }
    if (!call || call.state !== "ringing") { accepting = null; declined = null; }   // the view has caught up
    $("softphone").dataset.mode = m;
    $("softphone").dataset.state = call ? call.state : "idle";
    $("softphone").dataset.role = call ? call.role || "agent" : "";
    $("softphone").dataset.callSid = sid || "";
    showDevice(m);
    const ringing = showRinging(call, m);
    const phase = $("call-phase");
    phase.hidden = !call;
    if (call) {
      const key = (call.state === "ringing" && accepting === sid) || joining(call) ? "connecting" : call.state;
      phase.textContent = H.t("phase_" + key);
      phase.dataset.phase = key;
      phase.className = "badge phase-" + key;
    }
    $("call-state-for").textContent = call && call.in_state_s !== null && call.in_state_s !== undefined
      ? H.seconds(call.in_state_s) : "";
    const note = call ? noteOf(call) : "";
    $("call-note").textContent = note;
    $("call-note").hidden = !note;
    showControls(call, ringing);
    showContext(call);
  }

  function showError(text, detail) {
    $("call-error").textContent = text;
    $("call-error").title = detail || "";   // the API's own words, when the page shows its translation
    $("call-error").dataset.reason = "";
    $("call-error").hidden = !text;
  }

  /** Run a request that answers with the agent view; its refusal shows, the call view stays. */
  async function act(request) {
    if (busy) return false;
    busy = true;
    showError("");
    if (view) update(view);
    try {
      render(await request());
      return true;
    } catch (err) {
      showError(H.errorText(err), err.message);
      $("call-error").dataset.reason = err.reason || "";
      return false;
    } finally {
      busy = false;
      if (view) update(view);
    }
  }

  function control(path, body) {
    const sid = view && view.call && view.call.call_sid;
    if (!sid) return Promise.resolve(false);
    return act(() => H.api("POST", "/api/calls/" + encodeURIComponent(sid) + "/" + path, body || {}));
  }

  async function accept() {
    const sid = view && view.call ? view.call.call_sid : null;
    stopRinging();
    accepting = sid;
    if (mode() === "sdk") {
      if (!sdk.accept()) { accepting = null; showError(H.t("device_unregistered")); }
      if (view) update(view);
      return;
    }
    if (!await act(() => H.api("POST", "/api/agents/me/device/accept", {}))) accepting = null;
  }

  async function decline() {
    const sid = view && view.call ? view.call.call_sid : null;
    stopRinging();
    declined = sid;
    if (mode() === "sdk" && sdk.reject()) { if (view) update(view); return; }
    // The browser phone has no offer yet (or lost it): the API declines for it, as it does for a simulated device.
    const ok = mode() === "sdk" ? await control("hangup")
      : await act(() => H.api("POST", "/api/agents/me/device/decline", {}));
    if (!ok) declined = null;
  }

  function setUpNotifications() {
    if (!("Notification" in window)) return;
    const show = () => {
      $("btn-notify").hidden = Notification.permission !== "default";
      $("notify-blocked").hidden = Notification.permission !== "denied";
    };
    $("btn-notify").addEventListener("click", () => {
      try {
        const asked = Notification.requestPermission(show);   // the callback form: older browsers
        if (asked && asked.then) asked.then(show, show);
      } catch (err) {
        show();
      }
    });
    show();
  }

  function init(redraw) {
    render = redraw;
    sdk.onChange = () => { if (view) update(view); };
    $("btn-accept").addEventListener("click", accept);
    $("btn-decline").addEventListener("click", decline);
    $("btn-hold").addEventListener("click", () => control("hold", {hold: $("btn-hold").dataset.on !== "1"}));
    $("btn-mute").addEventListener("click", () => control("mute", {mute: $("btn-mute").dataset.on !== "1"}));
    $("btn-hangup").addEventListener("click", () => control("hangup"));
    $("btn-transfer-complete").addEventListener("click", () => control("transfer/complete"));
    $("btn-transfer-cancel").addEventListener("click", () => control("transfer/cancel"));
    $("btn-transfer-queue").addEventListener("click", () => control("transfer", {to: "queue"}));
    $("transfer-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const login = $("transfer-to").value.trim();
      if (!login) { showError(H.t("transfer_login_needed")); return; }
      control("transfer", {to: "agent:" + login, mode: $("transfer-mode").value}).then((ok) => {
        if (ok) $("transfer-form").reset();
      });
    });
    setUpNotifications();
  }

  return {init, update, deviceState};
})();
