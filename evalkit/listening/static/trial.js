// What every trial view shares: the page's stimuli on one Player, their audio arriving one by one, every
// play and stop reported to the server (which stamps and judges it), what was heard, keys, the hint and Next.
// A view (sliders.js, pick.js) adds its controls and its answer; views.js names them for the server's `view`.

import { AudioSession, Player, el, fmt } from "./audio.js";
import { needed, pieces, played, settle } from "./core.js";

/**
 * @typedef {Object} Stimulus
 * @property {string} id   opaque id
 * @property {string} url  signed, expiring audio URL
 */

/**
 * @typedef {Object} Trial  One page as the server describes it (evalkit.listening.web.page_json).
 * @property {string} phase  "environment" | "training" | "test"
 * @property {number} position
 * @property {number} count
 * @property {number} duration
 * @property {boolean} loop
 * @property {boolean} rate  whether answers are kept (false in training)
 * @property {number} min_play
 * @property {number} sample_rate
 * @property {string} view
 * @property {{labels: string[], question?: string, options?: {value: number|string, label: string}[], scale?: PageScale}} prompt
 * @property {Stimulus|null} ref
 * @property {Stimulus[]} stimuli
 * @property {Object<string, [number, number]>} heard
 * @property {[string, number, number][]} scale
 */

/**
 * @typedef {Object} PageScale  A rating scale as the page gets it (evalkit.listening.types.base.Scale.to_page).
 * @property {string} [name]
 * @property {number} low
 * @property {number} high
 * @property {number} [step]
 */

/**
 * @typedef {Object} Hooks
 * @property {(stimulus: string|null, offset: number, loop: number[]) => Promise<Object|null>} report
 * @property {(response: Object, client: Object) => Promise<boolean>} submit
 * @property {(error: unknown) => void} fail
 */

export class StimulusView {
  /**
   * @param {HTMLElement} root
   * @param {AudioContext} ctx
   * @param {Trial} trial
   * @param {Hooks} hooks
   */
  constructor(root, ctx, trial, hooks) {
    this.trial = trial;
    this.hooks = hooks;
    this.audio = new AudioSession(ctx);
    /** @type {Stimulus[]} the reference button's stimulus (if any), then the page's in slot order */
    this.shown = [...(trial.ref ? [trial.ref] : []), ...trial.stimuli];
    this.ids = this.shown.map((s) => s.id);
    this.first = trial.ref ? 1 : 0; // index of the first answered stimulus
    this.heard = { ...trial.heard };
    /** @type {number|null} performance.now() when the open play was last counted */
    this.since = null;
    /** @type {string|null} */
    this.playingId = null;
    this.submitted = false;
    this.disposed = false;
    this.storageKey = `evalkit:${this.ids[0]}`;
    /** @type {HTMLButtonElement[]} */
    this.buttons = [];
    this.player = new Player(ctx, this.ids.length, trial.duration, trial.loop);
    this.player.onSwitch = (index, position) => this.switched(index, position);
    this.player.onStop = () => this.update();
    this.clock = el("span", "mu-clock", "");
    this.hint = el("span", "mu-hint", "Loading audio…");
    this.nextButton = /** @type {HTMLButtonElement} */ (el("button", "mu-next", "Next ▸"));
    this.frame = 0; // the pending animation frame
    this.build(root);
    this.keys = (/** @type {KeyboardEvent} */ e) => this.key(e);
    window.addEventListener("keydown", this.keys, true);
    this.restore();
    this.loadAll();
  }

  // -- for the views -----------------------------------------------------------------------------

  /** @param {HTMLElement} root */
  build(root) { root.append(this.footer()); }

  /** What the page sends at Next, or null while something is missing. @returns {Object|null} */
  response() { return {}; }

  /** @returns {{unrated?: number, unchosen?: boolean}} */
  unanswered() { return {}; }

  restore() {}

  /** A key the view handles itself. @param {string} k @param {KeyboardEvent} event @returns {boolean} */
  viewKey(k, event) { return false; }

  /** The stimulus index a key plays, or -1. @param {string} k */
  keyIndex(k) { return -1; }

  /** @param {number} index @param {AudioBuffer} buffer */
  firstArrived(index, buffer) {}

  /** @param {number} position */
  onTick(position) {}

  // -- shared parts ------------------------------------------------------------------------------

  /**
   * A stimulus's button: plays it (or pauses it when it is the one playing).
   * @param {number} index @param {string} label @param {string} title @param {string} [className]
   */
  stimulusButton(index, label, title, className = "mu-button") {
    const button = /** @type {HTMLButtonElement} */ (el("button", className, label));
    button.title = title;
    button.disabled = true;
    button.addEventListener("click", () => this.choose(index));
    this.buttons[index] = button;
    return button;
  }

  footer() {
    const footer = el("div", "mu-footer");
    this.nextButton.disabled = true;
    this.nextButton.addEventListener("click", () => this.next());
    footer.append(this.clock, this.hint, this.nextButton);
    return footer;
  }

  /** Audio in button order; each stimulus becomes playable as soon as it is decoded. */
  async loadAll() {
    const urls = this.shown.map((s) => s.url);
    try {
      const first = await this.audio.load(urls[0]);
      this.arrived(0, first);
      this.interactive = this.audio.ms();
      await Promise.all(urls.slice(1).map((url, i) => this.audio.load(url).then((b) => this.arrived(i + 1, b))));
      this.allAudio = this.audio.ms();
    } catch (error) {
      if (this.disposed) return;
      this.hint.textContent = "The audio could not be loaded or decoded. Reload the page; if that does not help, try another browser.";
      this.hooks.fail(error);
    }
  }

  /** @param {number} index @param {AudioBuffer} buffer */
  arrived(index, buffer) {
    if (this.disposed) return;
    this.player.add(index, buffer);
    this.buttons[index].disabled = this.submitted;
    if (index === 0) {
      this.firstArrived(index, buffer);
      this.tick();
    }
    this.update();
  }

  /** @param {number|null} index @param {number} position */
  switched(index, position) {
    const id = index === null ? null : this.ids[index];
    const now = performance.now();
    this.settle(now);
    this.since = index === null ? null : now;
    this.playingId = id;
    this.hooks.report(id, +position.toFixed(3), this.player.region.map((x) => +x.toFixed(3))).then(
      (heard) => { if (heard) this.heard = /** @type {Object<string, [number, number]>} */ (heard); this.update(); }, () => {});
  }

  /** @param {number} now */
  settle(now) {
    this.heard = settle(this.heard, this.playingId, this.since, now, this.needed());
    if (this.since !== null && this.playingId) this.since = now;
  }

  needed() {
    return needed(this.trial, this.player.region);
  }

  /** @param {number} index */
  played(index) {
    return played(this.heard, this.ids[index], this.needed(), this.trial.loop ? Infinity : this.trial.duration);
  }

  /** @param {number} index */
  choose(index) {
    if (this.submitted || !this.player.buffers[index]) return;
    this.audio.resume();
    if (this.player.playing && this.player.current === index) this.player.pause();
    else this.player.select(index);
    this.update();
  }

  toggle() {
    if (this.submitted || !this.player.buffers[0]) return;
    if (this.player.playing) this.player.pause();
    else this.choose(this.player.current ?? 0);
    this.update();
  }

  /** @param {KeyboardEvent} event */
  key(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || this.submitted) return;
    const target = /** @type {HTMLElement|undefined} */ (event.composedPath()[0]);
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    const k = event.key.toLowerCase();
    // A focused button would also act on Space/Enter (on key up); the shortcut alone should.
    if (target && target.tagName === "BUTTON") target.blur();
    const index = this.keyIndex(k);
    if (index >= 0 && index < this.ids.length) this.choose(index);
    else if (k === " ") this.toggle();
    else if (k === "n") this.next();
    else if (!this.viewKey(k, event)) return;
    event.preventDefault();
    event.stopPropagation();
  }

  /** What stands in the way of Next, as the hint's pieces. */
  todo() {
    const unplayed = this.ids.slice(this.first).filter((_, i) => !this.played(i + this.first)).length;
    return pieces({ unplayed, need: this.needed(), ...(this.trial.rate ? this.unanswered() : {}) });
  }

  update() {
    const { playing, current } = this.player;
    this.buttons.forEach((button, i) => {
      button.classList.toggle("selected", current === i);
      button.classList.toggle("playing", playing && current === i);
      button.classList.toggle("played", this.played(i));
    });
    const parts = this.todo();
    const training = this.trial.rate ? "" : "Training: your answers here are not kept. ";
    this.hint.textContent = this.submitted ? "Saving…" : training + (parts.length ? `To continue, ${parts.join(" and ")}.` : "All done: press Next.");
    this.nextButton.disabled = this.submitted || parts.length > 0;
  }

  async next() {
    if (this.submitted || this.nextButton.disabled) return;
    const response = this.response();
    if (response === null) return;
    this.player.pause();
    this.submitted = true;
    this.update();
    const client = this.audio.client({ ms_interactive: this.interactive ?? null, ms_all_audio: this.allAudio ?? null,
      loop: this.player.region.map((x) => +x.toFixed(3)) });
    if (await this.hooks.submit(response, client)) {
      try { localStorage.removeItem(this.storageKey); } catch (e) { /* nothing kept */ }
      return;
    }
    this.submitted = false; // refused: the listener can go on here
    this.update();
  }

  /** @param {Object} value */
  keep(value) {
    try { localStorage.setItem(this.storageKey, JSON.stringify(value)); } catch (e) { /* private mode: no keeping */ }
  }

  kept() {
    try { return JSON.parse(localStorage.getItem(this.storageKey) || "null"); } catch (e) { return null; }
  }

  tick() {
    if (this.disposed) return;
    const position = this.player.position();
    this.clock.textContent = `${fmt(position)} / ${fmt(this.player.duration)}`;
    this.onTick(position);
    if (this.player.playing && (this.lastUpdate ?? 0) + 200 < performance.now()) {
      this.settle(performance.now());
      this.lastUpdate = performance.now();
      this.update();
    }
    this.frame = requestAnimationFrame(() => this.tick());
  }

  dispose() {
    this.disposed = true;
    cancelAnimationFrame(this.frame);
    window.removeEventListener("keydown", this.keys, true);
    this.player.dispose();
    this.audio.dispose();
  }
}
