/* The softphone's ring: a two-tone burst every three seconds, made with the Web Audio API (no sound file).

   window.hotlineRingTone: start() / stop(); `playing` (a ring is on), `audible` (the browser lets the page play
   sound: an AudioContext runs only after a click or key press on the page, so any click unlocks it) and `bursts`
   (how many bursts have been scheduled since the ring started). */
"use strict";
window.hotlineRingTone = (() => {
  const EVERY_MS = 3000;
  const BURST = [[0, 0.4], [0.6, 1.0]];   // (start, end) seconds of each beep within a burst
  const TONES = [440, 480];               // Hz, mixed: the familiar telephone ring
  let ctx = null;
  let timer = null;
  let master = null;   // every burst of this ring goes through it: stop() cuts it off at once

  const tone = {
    playing: false,
    bursts: 0,
    get audible() { return !!ctx && ctx.state === "running"; },
    start, stop, unlock,
  };

  function context() {
    if (ctx) return ctx;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    try { ctx = new AC(); } catch (err) { ctx = null; }
    return ctx;
  }

  /** Called on every click and key press: the browser's autoplay rule lets a page sound only after one. */
  function unlock() {
    const c = context();
    if (c && c.state === "suspended") c.resume().catch(() => {});
  }

  function burst() {
    const c = context();
    if (!c || !master) return;
    const t0 = c.currentTime + 0.02;
    const gain = c.createGain();
    gain.gain.setValueAtTime(0, t0);
    for (const [on, off] of BURST) {
      gain.gain.setValueAtTime(0, t0 + on);
      gain.gain.linearRampToValueAtTime(0.18, t0 + on + 0.02);   // soft edges: no clicks
      gain.gain.setValueAtTime(0.18, t0 + off - 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + off);
    }
    gain.connect(master);
    const end = t0 + BURST[BURST.length - 1][1] + 0.05;
    for (const hz of TONES) {
      const osc = c.createOscillator();
      osc.frequency.value = hz;
      osc.connect(gain);
      osc.start(t0);
      osc.stop(end);
    }
    tone.bursts += 1;
  }

  function start() {
    if (tone.playing) return;
    tone.playing = true;
    tone.bursts = 0;
    const c = context();
    if (c) {
      master = c.createGain();
      master.connect(c.destination);
    }
    burst();
    timer = setInterval(burst, EVERY_MS);
  }

  function stop() {
    if (!tone.playing) return;
    tone.playing = false;
    clearInterval(timer);
    timer = null;
    if (master) master.disconnect();
    master = null;
  }

  for (const kind of ["pointerdown", "keydown"]) document.addEventListener(kind, unlock, {capture: true});
  return tone;
})();
