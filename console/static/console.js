/* Shared helpers of the console pages: text, requests with the CSRF token, formatting, polling. */
"use strict";
const H = (() => {
  const TEXT = JSON.parse(document.getElementById("i18n").textContent);
  const PAGE = JSON.parse(document.getElementById("page-data").textContent);
  const LANG = document.body.dataset.lang;
  const CSRF = document.body.dataset.csrf;

  function t(key, params) {
    let s = TEXT[key] || key;
    for (const [k, v] of Object.entries(params || {})) s = s.replace("{" + k + "}", v);
    return s;
  }

  /** A configured {zh, en} label in the page's language. */
  function label(labels, fallback) {
    if (!labels) return fallback || "";
    return labels[LANG] || Object.values(labels)[0] || fallback || "";
  }

  /** JSON request to the hotline's API; the session cookie authenticates, the header proves it is this page. */
  async function api(method, path, body) {
    const opts = {method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET") opts.headers["X-CSRF-Token"] = CSRF;
    const resp = await fetch(path, opts);
    if (resp.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); }
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = new Error((data && data.error) || resp.statusText);
      err.status = resp.status;
      err.reason = (data && data.reason) || null;  // a refused call control's stable code
      throw err;
    }
    return data;
  }

  /** Words for a refusal: the catalogue's text for its stable reason when there is one, else the API's message. */
  function errorText(err) {
    return (err.reason && TEXT["err_" + err.reason]) || err.message;
  }

  /** Why a state changed (a presence reason code) in words; an unknown code as it is. */
  function reason(code) {
    return code ? (TEXT["reason_" + code] || code) : "";
  }

  function seconds(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + (LANG === "zh" ? " 秒" : " s");
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + ":" + String(r).padStart(2, "0");
    return Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  }

  function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%"; }

  function time(iso) {
    if (!iso) return "–";
    return new Date(iso).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", {hour12: false});
  }

  /** Build an element: el("td", {class: "x", "data-fig": "waiting"}, "text" | [children]). */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    for (const c of [].concat(children === undefined ? [] : children)) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  /** Run `fn` now and then every `ms` after each run ends (never two at once); `onError` on failure. */
  function poll(fn, ms, onError) {
    let stopped = false;
    async function tick() {
      try { await fn(); } catch (err) { if (onError) onError(err); }
      if (!stopped) setTimeout(tick, ms);
    }
    tick();
    return () => { stopped = true; };
  }

  return {t, label, api, errorText, reason, seconds, pct, time, el, poll, PAGE, LANG};
})();
