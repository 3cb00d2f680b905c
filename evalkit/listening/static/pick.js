// The view of every one-answer page (ACR, DCR, CCR, AB, ABX, the environment checks): a button per stimulus,
// labelled as the test type says (A, B, X; First, Second; Play), the type's question and its answers from
// the page's `prompt` (scale points or choices, each a value the server checks against the page's layout).

import { el } from "./audio.js";
import { choose, pickResponse, restoreChoice } from "./core.js";
import { StimulusView } from "./trial.js";

export class PickView extends StimulusView {
  /** @param {HTMLElement} root */
  build(root) {
    const prompt = this.trial.prompt;
    /** @type {number|string|null} */
    this.choice = null;
    const row = el("div", "pk-stimuli");
    const single = this.shown.length === 1;
    this.shown.forEach((_, index) => {
      const label = single ? "▶ Play" : (prompt.labels[index] ?? String(index + 1));
      const key = single ? "1" : this.keyFor(index);
      row.append(this.stimulusButton(index, label, `${single ? "Play" : label} (${key.toUpperCase()})`, "mu-button pk-stimulus"));
    });
    const question = el("fieldset", "pk-question");
    question.append(el("legend", null, prompt.question || "Your answer"));
    /** @type {HTMLButtonElement[]} */
    this.optionButtons = this.options.map((option) => {
      const button = /** @type {HTMLButtonElement} */ (el("button", "pk-option", option.label));
      button.setAttribute("role", "radio");
      button.setAttribute("aria-checked", "false");
      button.addEventListener("click", () => this.pick(option.value));
      question.append(button);
      return button;
    });
    const help = el("p", "mu-help", `Keys: ${single ? "1" : this.shown.map((_, i) => this.keyFor(i).toUpperCase()).join(" ")} play · Space play/pause · N next`);
    const box = el("div", "mu pk");
    box.append(row, question, help, this.footer());
    root.append(box);
  }

  /** The page's answers (scale points or choices). @returns {{value: number|string, label: string}[]} */
  get options() {
    return this.trial.prompt.options || [];
  }

  /** The key that plays stimulus `index`: its label's letter when the labels are single letters (A, B, X). @param {number} index */
  keyFor(index) {
    const label = (this.trial.prompt.labels[index] || "").toLowerCase();
    return /^[a-z]$/.test(label) && label !== "n" && label !== "r" ? label : String(index + 1);
  }

  /** @param {string} k */
  keyIndex(k) {
    const index = this.shown.findIndex((_, i) => (this.shown.length === 1 ? "1" : this.keyFor(i)) === k);
    return index;
  }

  /** Without looping (ACR, DCR, CCR, the checks), each stimulus plays from its start, one after another. @param {number} index */
  choose(index) {
    const again = this.player.playing && this.player.current === index;
    if (!this.trial.loop && !again && !this.submitted && this.player.buffers[index]) {
      this.player.pause();
      this.player.pausedAt = 0;
    }
    super.choose(index);
  }

  /** @param {number|string} value */
  pick(value) {
    if (this.submitted) return;
    this.choice = choose(this.options, this.choice ?? null, value);
    this.keep({ choice: this.choice });
    this.update();
  }

  restore() {
    const saved = this.kept();
    this.choice = restoreChoice(this.options, saved && saved.choice);
  }

  response() {
    // Training pages need no answer; a test page's answer is checked by the server against the page's options.
    return pickResponse(this.choice ?? null) ?? (this.trial.rate ? null : {});
  }

  unanswered() {
    return { unchosen: this.choice === null };
  }

  update() {
    super.update();
    (this.optionButtons || []).forEach((button, i) => {
      const on = this.options[i].value === this.choice;
      button.classList.toggle("chosen", on);
      button.setAttribute("aria-checked", String(on));
      button.disabled = this.submitted;
    });
  }
}
