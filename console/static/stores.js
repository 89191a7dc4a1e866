/* The store banner on every console page: polls /stores (which works while the database is down) and
   shows what callers get and what agents should do while Redis or the database cannot be reached. */
"use strict";
(() => {
  const banner = document.getElementById("store-banner");
  if (!banner) return;
  const EVERY_MS = 3000;
  async function check() {
    let data;
    try {
      const resp = await fetch(banner.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (resp.redirected || !resp.ok) return;  // logged out, or the web server itself is away
      data = await resp.json();
    } catch (err) {
      return;  // the web server did not answer: nothing to say about the stores
    }
    banner.textContent = data.ok ? "" : data.message;
    banner.hidden = data.ok;
    banner.dataset.redis = data.redis;
    banner.dataset.database = data.database;
  }
  check();
  setInterval(check, EVERY_MS);
})();
