// The player's audio core (Web Audio): every loaded buffer on one play-head, one audible at a time, and
// the page's audio session (fetching, decoding, resuming the context, timing notes for the server).
// It knows opaque ids, audio URLs and counts only.

import { FADE, positionAt, raisedCosine, resumePosition } from "./core.js";

const LEAD = 0.01; // s, schedule slightly ahead of the audio clock's render quantum
const MAX_NOTES = 40; // client notes sent with a trial (the server keeps at most 4000 characters)
const FADE_IN = raisedCosine(64, true);
const FADE_OUT = raisedCosine(64, false);

/**
 * A new element with an optional class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string|null} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {number} seconds
 * @returns {string}
 */
export function fmt(seconds) {
  return `${Math.max(0, seconds).toFixed(1)} s`;
}

/**
 * Switching fades the audible buffer out over 5 ms (raised cosine) and only then fades the next one in,
 * so two signals are never heard at once.
 */
export class Player {
  /**
   * @param {AudioContext} ctx
   * @param {number} count  buffers on the page
   * @param {number} duration  seconds
   * @param {boolean} looping
   */
  constructor(ctx, count, duration, looping) {
    this.ctx = ctx;
    /** @type {(AudioBuffer|null)[]} */
    this.buffers = new Array(count).fill(null);
    this.looping = looping;
    this.duration = duration;
    /** @type {[number, number]} */
    this.region = [0, duration];
    this.gains = this.buffers.map(() => {
      const gain = new GainNode(ctx, { gain: 0 });
      gain.connect(ctx.destination);
      return gain;
    });
    /** @type {(AudioBufferSourceNode|null)[]|null} */
    this.sources = null;
    /** @type {number|null} index of the selected buffer (audible while playing) */
    this.current = null;
    this.playing = false;
    this.busyUntil = 0; // fades are queued one after another, never overlapping
    this.t0 = 0;
    this.offset = 0;
    this.pausedAt = 0;
    /** @type {(index: number|null, position: number, at: number) => void} a play started, switched or stopped */
    this.onSwitch = () => {};
    this.onStop = () => {};
  }

  /** @param {number} index @param {AudioBuffer} buffer */
  add(index, buffer) {
    this.buffers[index] = buffer;
    this.duration = Math.min(this.duration, buffer.duration);
    if (this.playing && this.sources) this.sources[index] = this.source(index, this.when(), this.positionAt(this.when()));
  }

  when() {
    return Math.max(this.ctx.currentTime + LEAD, this.busyUntil);
  }

  /** @param {number} t */
  positionAt(t) {
    return positionAt(this, t);
  }

  position() {
    return this.positionAt(this.ctx.currentTime);
  }

  /** @param {number} index */
  select(index) {
    if (!this.buffers[index]) return;
    if (!this.playing || this.current === null) return this.start(index, resumePosition(this.pausedAt, this.region));
    if (index === this.current) return;
    const t = this.when();
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t + FADE, FADE);
    this.busyUntil = t + 2 * FADE;
    this.current = index;
    this.onSwitch(index, this.positionAt(t + FADE), t + FADE);
  }

  /** @param {number} index @param {number} t @param {number} position */
  source(index, t, position) {
    const [a, b] = this.region;
    const buffer = /** @type {AudioBuffer} */ (this.buffers[index]);
    const source = new AudioBufferSourceNode(this.ctx, { buffer, loop: this.looping, loopStart: a, loopEnd: b });
    source.connect(this.gains[index]);
    source.start(t, Math.min(position, buffer.duration));
    return source;
  }

  /** @param {number} index @param {number} position */
  start(index, position) {
    const t = this.when();
    const sources = this.buffers.map((buffer, i) => (buffer ? this.source(i, t, position) : null));
    this.sources = sources;
    if (!this.looping) sources.forEach((source, i) => { if (source) source.onended = () => this.ended(i); });
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t, FADE);
    Object.assign(this, { busyUntil: t + FADE, t0: t, offset: position, playing: true, current: index });
    this.onSwitch(index, position, t);
  }

  pause() {
    if (!this.playing || this.current === null) return;
    const t = this.when();
    const end = t + FADE;
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.pausedAt = this.positionAt(end);
    this.retire(end);
    this.busyUntil = end + 0.002; // the next sources start once these have stopped
    this.onSwitch(null, this.pausedAt, end);
  }

  /** @param {number} at */
  retire(at) {
    for (const source of this.sources || []) {
      if (!source) continue;
      source.onended = () => source.disconnect();
      source.stop(at);
    }
    this.sources = null;
    this.playing = false;
    this.onStop();
  }

  /** Natural end of a non-looping play: the signal is over, the gain is reset for the next start. @param {number} index */
  ended(index) {
    if (!this.playing || this.current !== index) return;
    this.gains[index].gain.cancelScheduledValues(0);
    this.gains[index].gain.setValueAtTime(0, this.ctx.currentTime);
    this.pausedAt = 0;
    this.retire(this.ctx.currentTime);
    this.onSwitch(null, this.duration, this.ctx.currentTime);
  }

  /** @param {number} a @param {number} b */
  setRegion(a, b) {
    this.region = [a, b];
    if (!this.playing || this.current === null) return;
    const index = this.current;
    this.pause();
    this.start(index, a);
  }

  dispose() {
    if (this.sources) {
      this.sources.forEach((s) => { if (s) { s.onended = null; try { s.stop(); } catch (e) { /* already */ } } });
    }
    this.sources = null;
    this.gains.forEach((g) => g.disconnect());
  }
}

/** One page's audio: fetching and decoding, resuming the context on a gesture, timing notes for the server. */
export class AudioSession {
  /** @param {AudioContext} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.started = performance.now();
    /** @type {Object[]} */
    this.notes = [];
    this.resume = () => {
      if (this.ctx.state === "suspended") this.ctx.resume().then(() => this.note("audio_resumed"));
    };
    window.addEventListener("pointerdown", this.resume, true);
    window.addEventListener("keydown", this.resume, true);
  }

  ms() {
    return Math.round(performance.now() - this.started);
  }

  /** @param {string} kind @param {Object} [detail] */
  note(kind, detail) {
    if (this.notes.length < MAX_NOTES) this.notes.push({ kind, ms: this.ms(), ...(detail || {}) });
  }

  /**
   * The stimulus at `url`, decoded. A failed request (the network, a busy server: 5xx, 429) is tried again twice,
   * after 0.5 s and 1 s, so one lost request does not send the listener to reload; a refusal (403, 409) is final.
   * @param {string} url @returns {Promise<AudioBuffer>}
   */
  async load(url) {
    for (let attempt = 0; ; attempt += 1) {
      /** @type {Response|null} */
      let response = null;
      try {
        response = await fetch(url, { credentials: "same-origin" });
      } catch (error) {
        if (attempt >= 2) throw error;
      }
      if (response && response.ok) return this.ctx.decodeAudioData(await response.arrayBuffer());
      const final = response && response.status < 500 && response.status !== 429;
      if (response && (final || attempt >= 2)) throw new Error(`audio ${response.status}`);
      this.note("audio_retry", { status: response ? response.status : 0 });
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }

  /** What the page reports about its timing with an answer. @param {Object} extra */
  client(extra) {
    return {
      ms_on_page: this.ms(), sample_rate: this.ctx.sampleRate, base_latency: this.ctx.baseLatency ?? null,
      output_latency: this.ctx.outputLatency ?? null, notes: this.notes, ...extra,
    };
  }

  dispose() {
    window.removeEventListener("pointerdown", this.resume, true);
    window.removeEventListener("keydown", this.resume, true);
  }
}
