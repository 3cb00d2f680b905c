// The slider views: the labelled reference, then one slider per stimulus on the page's continuous scale, and
// the reference's waveform to drag a loop region on. MUSHRA (BS.1534-3, view `sliders`): numbered samples on
// 0-100 with labelled bands; BS.1116 (view `triple`): A and B graded 1.0-5.0 in steps of 0.1, the whole grades
// labelled. Slider positions are kept in the browser's storage until Next (a reload keeps them); a slider
// moves only while its stimulus is selected.

import { el } from "./audio.js";
import { PERCENT, decimals, fraction, restoreRatings, snap, widen } from "./core.js";
import { StimulusView } from "./trial.js";

const SLIDER_KEYS = "1234567890-=";

/** The reference waveform: drag to set the loop region, click to loop everything. */
class Waveform {
  /**
   * @param {HTMLElement} host
   * @param {Float32Array} samples
   * @param {number} duration
   * @param {(a: number, b: number) => void} onRegion
   */
  constructor(host, samples, duration, onRegion) {
    this.samples = samples;
    this.duration = duration;
    this.onRegion = onRegion;
    /** @type {[number, number]} */
    this.region = [0, duration];
    this.cursor = 0;
    /** @type {{from: number, x: number, to: number}|null} */
    this.drag = null;
    this.box = el("div", "mu-wave");
    this.base = /** @type {HTMLCanvasElement} */ (el("canvas", "mu-wave-base"));
    this.overlay = /** @type {HTMLCanvasElement} */ (el("canvas", "mu-wave-overlay"));
    this.box.append(this.base, this.overlay);
    host.append(this.box);
    this.overlay.addEventListener("pointerdown", (e) => this.down(e));
    this.overlay.addEventListener("pointermove", (e) => this.move(e));
    this.overlay.addEventListener("pointerup", (e) => this.up(e));
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.box);
  }

  /** @param {PointerEvent} event */
  time(event) {
    const rect = this.overlay.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)) * this.duration;
  }

  /** @param {PointerEvent} event */
  down(event) {
    this.overlay.setPointerCapture(event.pointerId);
    this.drag = { from: this.time(event), x: event.clientX, to: this.time(event) };
  }

  /** @param {PointerEvent} event */
  move(event) {
    if (!this.drag) return;
    this.drag.to = this.time(event);
    this.draw();
  }

  /** @param {PointerEvent} event */
  up(event) {
    if (!this.drag) return;
    const { from, x } = this.drag;
    this.drag = null;
    if (Math.abs(event.clientX - x) < 4) return this.onRegion(0, this.duration); // a click: loop everything
    this.onRegion(...widen(from, this.time(event), this.duration));
  }

  layout() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.box.getBoundingClientRect();
    for (const canvas of [this.base, this.overlay]) {
      canvas.width = Math.max(1, Math.round(width * ratio));
      canvas.height = Math.max(1, Math.round(height * ratio));
    }
    this.paintWave();
    this.draw();
  }

  paintWave() {
    const g = /** @type {CanvasRenderingContext2D} */ (this.base.getContext("2d"));
    const { width, height } = this.base;
    const style = getComputedStyle(this.box);
    g.clearRect(0, 0, width, height);
    g.fillStyle = style.getPropertyValue("--mu-wave").trim() || "#8a8f9c";
    const per = this.samples.length / width;
    let top = 1e-6;
    for (let i = 0; i < this.samples.length; i++) top = Math.max(top, Math.abs(this.samples[i]));
    for (let x = 0; x < width; x++) {
      let lo = 0;
      let hi = 0;
      const end = Math.min(this.samples.length, Math.floor((x + 1) * per));
      for (let i = Math.floor(x * per); i < end; i++) {
        const v = this.samples[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const h = Math.max(1, (Math.max(hi, -lo) / top) * height * 0.9); // scaled to the excerpt's peak
      g.fillRect(x, (height - h) / 2, 1, h);
    }
  }

  draw() {
    const g = /** @type {CanvasRenderingContext2D} */ (this.overlay.getContext("2d"));
    const { width, height } = this.overlay;
    const style = getComputedStyle(this.box);
    const accent = style.getPropertyValue("--mu-accent").trim() || "#ff4b4b";
    const x = (/** @type {number} */ t) => (t / this.duration) * width;
    g.clearRect(0, 0, width, height);
    const [a, b] = this.drag ? widen(this.drag.from, this.drag.to, this.duration) : this.region;
    if (this.drag || a > 0 || b < this.duration) {
      g.globalAlpha = 0.18;
      g.fillStyle = accent;
      g.fillRect(x(a), 0, x(b) - x(a), height);
      g.globalAlpha = 1;
      g.fillRect(x(a), 0, 2, height);
      g.fillRect(x(b) - 2, 0, 2, height);
    }
    g.fillStyle = style.getPropertyValue("--mu-text").trim() || "#31333f";
    g.fillRect(Math.round(x(this.cursor)), 0, 2, height);
  }

  dispose() {
    this.resizer.disconnect();
  }
}

/** One vertical slider: unrated until moved, enabled only for the stimulus being heard. */
class Slider {
  /**
   * @param {HTMLElement} host
   * @param {HTMLElement} readout
   * @param {() => void} onChange
   * @param {import("./core.js").Range} range
   */
  constructor(host, readout, onChange, range) {
    /** @type {number|null} */
    this.value = null;
    this.enabled = false;
    this.dragging = false;
    this.onChange = onChange;
    this.range = range;
    this.track = el("div", "mu-track unrated");
    this.track.setAttribute("role", "slider");
    this.track.setAttribute("aria-valuemin", String(range.low));
    this.track.setAttribute("aria-valuemax", String(range.high));
    this.fill = el("div", "mu-fill");
    this.thumb = el("div", "mu-thumb");
    this.track.append(this.fill, this.thumb);
    this.readout = readout;
    readout.textContent = "–";
    host.append(this.track);
    this.track.addEventListener("pointerdown", (e) => this.down(e));
    this.track.addEventListener("pointermove", (e) => { if (this.dragging) this.set(this.at(e)); });
    this.track.addEventListener("pointerup", () => { this.dragging = false; });
  }

  /** @param {PointerEvent} event */
  at(event) {
    const rect = this.track.getBoundingClientRect();
    const { low, high } = this.range;
    return low + (high - low) * (1 - (event.clientY - rect.top) / rect.height);
  }

  /** @param {PointerEvent} event */
  down(event) {
    if (!this.enabled) return;
    this.track.setPointerCapture(event.pointerId);
    this.dragging = true;
    this.set(this.at(event));
  }

  /** @param {number} steps  from the middle of the scale when unrated */
  nudge(steps) {
    const { low, high, step } = this.range;
    if (this.enabled) this.set((this.value ?? (low + high) / 2) + steps * step);
  }

  /** @param {number} value @param {boolean} [quiet] */
  set(value, quiet) {
    const score = snap(value, this.range);
    if (score === null) return;
    this.value = score;
    const percent = `${100 * fraction(score, this.range)}%`;
    this.track.classList.remove("unrated");
    this.track.setAttribute("aria-valuenow", String(score));
    this.fill.style.height = percent;
    this.thumb.style.bottom = percent;
    this.readout.textContent = score.toFixed(decimals(this.range.step));
    if (!quiet) this.onChange();
  }

  /** @param {boolean} on */
  enable(on) {
    this.enabled = on;
    this.track.classList.toggle("off", !on);
    this.track.setAttribute("aria-disabled", String(!on));
  }
}

/**
 * @typedef {Object} SliderParts  The view's own controls, made by build() (which the base constructor calls).
 * @property {HTMLButtonElement} playButton
 * @property {HTMLElement} loopLabel
 * @property {HTMLButtonElement} loopAll
 * @property {HTMLElement} waveHost
 * @property {Slider[]} sliders
 */

export class SlidersView extends StimulusView {
  /** @returns {SliderParts} */
  get parts() { return /** @type {SliderParts} */ (this.made); }
  get playButton() { return this.parts.playButton; }
  get loopLabel() { return this.parts.loopLabel; }
  get loopAll() { return this.parts.loopAll; }
  get waveHost() { return this.parts.waveHost; }
  get sliders() { return this.parts.sliders; }

  /** @param {HTMLElement} root */
  build(root) {
    const top = el("div", "mu-top");
    /** @type {SliderParts|undefined} */
    this.made = {
      playButton: /** @type {HTMLButtonElement} */ (el("button", "mu-play", "▶ Play")),
      loopLabel: el("span", "mu-loop-label", ""),
      loopAll: /** @type {HTMLButtonElement} */ (el("button", "mu-loop-all", "Loop all")),
      waveHost: el("div", "mu-wave-host"),
      sliders: [],
    };
    const samples = this.trial.stimuli.length;
    const keys = samples === 2 && this.keyFor(0) === "a" ? "A B" : `1–${Math.min(samples, 9)}`;
    const help = el("span", "mu-help", `Keys: R reference · ${keys} samples · Space play/pause · ↑↓ rate · N next`);
    top.append(this.playButton, this.loopLabel, this.loopAll, help);
    const box = el("div", "mu");
    box.append(top, this.waveHost, this.board(), this.footer());
    root.append(box);
    this.playButton.addEventListener("click", () => this.toggle());
    this.loopAll.addEventListener("click", () => this.loop(0, this.player.duration));
    this.playButton.disabled = this.loopAll.disabled = true;
  }

  /** The page's scale (the type's prompt), MUSHRA's when it names none. */
  range() {
    const scale = this.trial.prompt.scale;
    return scale && scale.high > scale.low ? { low: scale.low, high: scale.high, step: scale.step || 1 } : PERCENT;
  }

  board() {
    const board = el("div", "mu-board");
    const scale = el("div", "mu-scale");
    const range = this.range();
    for (const [label, low, high] of this.trial.scale) {
      // A band names a stretch of the scale (MUSHRA's Excellent: 80-100); one with low = high names a point.
      const band = el("div", low === high ? "mu-band mu-point" : "mu-band", label);
      band.style.bottom = `${100 * fraction(low, range)}%`;
      if (low !== high) band.style.height = `${100 * (fraction(high, range) - fraction(low, range))}%`;
      scale.append(band);
    }
    const rows = el("div", "mu-columns");
    rows.append(this.column("Reference", 0, "r", range));
    this.trial.stimuli.forEach((_, i) => rows.append(this.column(this.label(i), i + 1, this.keyFor(i), range)));
    board.append(scale, rows);
    return board;
  }

  /** @param {number} i */
  label(i) {
    return this.trial.prompt.labels[i] ?? String(i + 1);
  }

  /** A sample's key: its label's letter (BS.1116's A and B), else 1-9, 0, -, =. @param {number} i */
  keyFor(i) {
    const label = this.label(i).toLowerCase();
    return /^[a-z]$/.test(label) && !"rn".includes(label) ? label : SLIDER_KEYS[i];
  }

  /** @param {string} label @param {number} index @param {string} key @param {import("./core.js").Range} range */
  column(label, index, key, range) {
    const column = el("div", index === 0 ? "mu-col mu-ref" : "mu-col");
    const body = el("div", "mu-body");
    const readout = el("div", "mu-value");
    if (index === 0) body.append(el("div", "mu-ref-note", "Listen to the reference, then rate each sample against it"));
    else this.sliders.push(new Slider(body, readout, () => this.rated(), range));
    const title = index === 0 ? "Reference (R)" : `Sample ${label} (${key.toUpperCase()})`;
    column.append(body, readout, this.stimulusButton(index, label, title));
    return column;
  }

  /** @param {string} k */
  keyIndex(k) {
    if (k === "r") return 0;
    const index = this.sliders.findIndex((_, i) => this.keyFor(i) === k || SLIDER_KEYS[i] === k);
    return index >= 0 ? index + 1 : -1;
  }

  /** @param {string} k @param {KeyboardEvent} event */
  viewKey(k, event) {
    if (k !== "arrowup" && k !== "arrowdown") return false;
    const current = this.player.current;
    if (current) this.sliders[current - 1].nudge((k === "arrowup" ? 1 : -1) * (event.shiftKey ? 10 : 1)); // steps
    return true;
  }

  /** @param {number} index @param {AudioBuffer} buffer */
  firstArrived(index, buffer) {
    this.wave = new Waveform(this.waveHost, buffer.getChannelData(0), this.player.duration, (a, b) => this.loop(a, b));
    this.waveHost.classList.toggle("mu-no-loop", !this.trial.loop);
    this.playButton.disabled = this.loopAll.disabled = false;
  }

  restore() {
    const saved = restoreRatings(this.ids.slice(1), this.kept(), this.range());
    this.sliders.forEach((slider, i) => {
      const value = saved[this.ids[i + 1]];
      if (value !== undefined) slider.set(value, true);
    });
  }

  ratings() {
    /** @type {Object<string, number>} */
    const values = {};
    this.sliders.forEach((slider, i) => { if (slider.value !== null) values[this.ids[i + 1]] = slider.value; });
    return values;
  }

  rated() {
    this.keep(this.ratings());
    this.update();
  }

  response() {
    return this.ratings();
  }

  unanswered() {
    return { unrated: this.sliders.filter((s) => s.value === null).length };
  }

  /** @param {number} a @param {number} b */
  loop(a, b) {
    if (!this.trial.loop || !this.wave) return;
    this.player.setRegion(a, b);
    this.wave.region = [a, b];
    this.audio.note("loop", { start: +a.toFixed(3), end: +b.toFixed(3) });
    this.update();
  }

  update() {
    super.update();
    const current = this.player.current;
    this.sliders.forEach((slider, i) => slider.enable(!this.submitted && current === i + 1));
    this.playButton.textContent = this.player.playing ? "❚❚ Pause" : "▶ Play";
    const [a, b] = this.player.region;
    const whole = a <= 0 && b >= this.player.duration;
    this.loopLabel.textContent = this.trial.loop ? (whole ? "Loop: whole excerpt (drag on the waveform to loop a part)" : `Loop: ${a.toFixed(2)}–${b.toFixed(2)} s`) : "";
    this.loopAll.hidden = !this.trial.loop || whole;
  }

  /** @param {number} position */
  onTick(position) {
    if (!this.wave) return;
    this.wave.cursor = position;
    this.wave.draw();
  }

  dispose() {
    super.dispose();
    if (this.wave) this.wave.dispose();
  }
}
