/* The browser's phone with a real Twilio account: Twilio's Voice JavaScript SDK (vendored, served from this site,
   loaded only in this mode), a Device registered with an access token from /api/agents/me/token and refreshed
   before it expires, and the incoming call it offers until the agent accepts or rejects it.

   window.HotlineSdk: start(); accept() / reject() the offered call; `state` (idle, loading, registering,
   registered, unregistered, failed), `error`, `incoming` (the offered Twilio Call), `active` (the answered one);
   heartbeatState() for the console's heartbeat; onChange (set by softphone.js) after every change. */
"use strict";
window.HotlineSdk = (() => {
  const GRACE_MS = 15000;       // a device unregistered this long is reported so (a network blip re-registers)
  const REFRESH_MS = 60000;     // ask for a new token this long before the current one expires
  let device = null;
  let starting = null;
  let downSince = null;         // since when the device has not been registered (from start(): still registering)

  const sdk = {state: "idle", error: null, incoming: null, active: null, onChange: null,
               start, accept, reject, heartbeatState};

  function changed(state) {
    if (state) {
      sdk.state = state;
      if (state === "registered") downSince = null;
      else if (downSince === null) downSince = Date.now();
    }
    if (sdk.onChange) sdk.onChange();
  }

  function load() {
    if (window.Twilio && window.Twilio.Device) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = H.PAGE.sdk_url;   // this site's own copy (console/static/vendor): no CDN
      script.async = true;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error(script.src));
      document.head.append(script);
    });
  }

  async function token() {
    const answer = await H.api("GET", "/api/agents/me/token");
    if (answer.mode !== "sdk" || !answer.token) throw new Error(answer.mode);
    return answer.token;
  }

  function onIncoming(call) {
    sdk.incoming = call;
    const gone = () => {
      if (sdk.incoming === call) sdk.incoming = null;
      if (sdk.active === call) sdk.active = null;
      changed();
    };
    call.on("accept", () => {
      if (sdk.incoming === call) sdk.incoming = null;
      sdk.active = call;
      changed();
    });
    for (const kind of ["cancel", "reject", "disconnect"]) call.on(kind, gone);
    call.on("error", (err) => { sdk.error = (err && err.message) || String(err); changed(); });
    changed();
  }

  async function refresh() {
    try {
      device.updateToken(await token());
    } catch (err) {
      sdk.error = err.message;
      changed();
    }
  }

  function build(jwt) {
    // Every sound the SDK would fetch from sdk.twilio.com is our own silent file: the page rings with its own tone
    // (ringtone.js) and loads nothing from another origin. Insights events are not sent (no eventgw.twilio.com).
    const sounds = {};
    for (const name of Object.values(window.Twilio.Device.SoundName || {})) sounds[name] = H.PAGE.silence_url;
    const d = new window.Twilio.Device(jwt, {
      sounds, publishEvents: false, closeProtection: true, logLevel: "warn", tokenRefreshMs: REFRESH_MS,
      codecPreferences: ["opus", "pcmu"],
    });
    d.on("registering", () => changed("registering"));
    d.on("registered", () => { sdk.error = null; changed("registered"); });
    d.on("unregistered", () => changed("unregistered"));
    d.on("error", (err) => {
      sdk.error = (err && (err.message || err.code)) || "error";
      changed(d.state === "registered" ? null : "failed");
    });
    d.on("incoming", onIncoming);
    d.on("tokenWillExpire", refresh);
    return d;
  }

  /** Load the SDK and register the Device (once; again after a failure). */
  function start() {
    if (starting) return starting;
    starting = (async () => {
      changed("loading");
      try {
        await load();
        if (window.Twilio.Device.isSupported === false) throw new Error("WebRTC");
        device = build(await token());
        changed("registering");
        await device.register();
      } catch (err) {
        sdk.error = (err && err.message) || String(err);
        if (device) { try { device.destroy(); } catch (ignored) { /* already gone */ } }
        device = null;
        starting = null;   // the next start() tries again
        changed("failed");
      }
    })();
    return starting;
  }

  function accept() {
    if (!sdk.incoming) return false;
    sdk.incoming.accept();
    return true;
  }

  function reject() {
    if (!sdk.incoming) return false;
    sdk.incoming.reject();
    return true;
  }

  /** What the heartbeat says of this device: "unregistered" once it has not been registered for GRACE_MS (still
      trying, or failed), so a network blip or a slow start costs nothing but a device that cannot register is
      reported, and the hotline offers its agent no call. */
  function heartbeatState() {
    if (sdk.state === "registered") return "registered";
    if (downSince !== null && Date.now() - downSince >= GRACE_MS) return "unregistered";
    return "unknown";
  }

  return sdk;
})();
