// The level check: one looping signal; the listener confirms once it has played.

import { AudioSession, Player, el } from "./audio.js";

/**
 * @typedef {Object} LevelHooks
 * @property {(settings: Object) => Promise<boolean>} confirm
 * @property {(error: unknown) => void} fail
 */

export class LevelView {
  /**
   * @param {HTMLElement} root
   * @param {AudioContext} ctx
   * @param {{id: string, url: string}} level
   * @param {LevelHooks} hooks
   */
  constructor(root, ctx, level, hooks) {
    this.audio = new AudioSession(ctx);
    this.hooks = hooks;
    this.heard = 0;
    /** @type {number|null} */
    this.since = null;
    /** @type {Player|null} */
    this.player = null;
    this.disposed = false;
    const row = el("div", "mu-level");
    this.playButton = /** @type {HTMLButtonElement} */ (el("button", "mu-play mu-big", "▶ Play the level signal"));
    this.confirmButton = /** @type {HTMLButtonElement} */ (el("button", "mu-next", "The level is comfortable ▸"));
    this.hint = el("span", "mu-hint", "Loading audio…");
    row.append(this.playButton, this.confirmButton);
    const box = el("div", "mu");
    box.append(row, this.hint);
    root.append(box);
    this.playButton.disabled = true;
    this.confirmButton.disabled = true;
    this.playButton.addEventListener("click", () => this.toggle());
    this.confirmButton.addEventListener("click", () => this.confirm());
    this.audio.load(level.url).then((buffer) => this.ready(buffer), (error) => {
      this.hint.textContent = "The audio could not be loaded or decoded. Reload the page, or try another browser.";
      hooks.fail(error);
    });
  }

  /** @param {AudioBuffer} buffer */
  ready(buffer) {
    if (this.disposed) return;
    this.player = new Player(this.audio.ctx, 1, buffer.duration, true);
    this.player.add(0, buffer);
    this.player.onSwitch = (index) => {
      const now = performance.now();
      if (this.since) this.heard += (now - this.since) / 1000;
      this.since = index === null ? null : now;
    };
    this.playButton.disabled = false;
    this.hint.textContent = "Play the signal and set your volume; it repeats until you stop it.";
  }

  toggle() {
    if (!this.player) return;
    this.audio.resume();
    if (this.player.playing) this.player.pause();
    else this.player.select(0);
    this.playButton.textContent = this.player.playing ? "❚❚ Stop" : "▶ Play the level signal";
    this.playButton.classList.toggle("playing", this.player.playing);
    this.confirmButton.disabled = false;
  }

  async confirm() {
    if (this.player && this.player.playing) this.toggle();
    this.confirmButton.disabled = this.playButton.disabled = true;
    if (!(await this.hooks.confirm(this.audio.client({ seconds_heard: +this.heard.toFixed(2) })))) {
      this.confirmButton.disabled = this.playButton.disabled = false;
    }
  }

  dispose() {
    this.disposed = true;
    if (this.player) this.player.dispose();
    this.audio.dispose();
  }
}
