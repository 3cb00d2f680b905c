// evalkit MUSHRA player (Web Audio). It knows opaque ids, audio URLs and counts only.
//
// Trial view: the reference button first, then one slider per stimulus. Every buffer plays from one
// shared play-head; switching fades the audible signal out over 5 ms (raised cosine) and only then
// fades the next one in, so two signals are never heard at once. Audio arrives over HTTP one stimulus
// at a time: the page is usable as soon as the reference is decoded, and each sample's button
// enables when its audio has arrived. Every switch and stop is reported to the server as it happens
// (the server stamps and judges it); slider positions are kept in the browser's storage until Next.

const FADE = 0.005; // s, BS.1534-style switching: 5 ms out, then 5 ms in
const LEAD = 0.01; // s, schedule slightly ahead of the audio clock's render quantum
export const MIN_LOOP = 0.5; // s, the shortest loop region (the server's playlog.MIN_LOOP_S)
const MARGIN = 0.15; // s, heard beyond the need before the page calls a sample played (network jitter)
const SLIDER_KEYS = "1234567890-=";
const MAX_NOTES = 40; // client notes sent with a trial (the server keeps at most 4000 characters)

const FADE_IN = raisedCosine(64, true);
const FADE_OUT = raisedCosine(64, false);

function raisedCosine(points, rising) {
  const curve = new Float32Array(points);
  for (let k = 0; k < points; k++) {
    const c = 0.5 * (1 - Math.cos((Math.PI * k) / (points - 1)));
    curve[k] = rising ? c : 1 - c;
  }
  return curve;
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(seconds) {
  return `${Math.max(0, seconds).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------
// Audio: every loaded buffer on one play-head, one audible at a time.

class Player {
  constructor(ctx, count, duration, looping) {
    this.ctx = ctx;
    this.buffers = new Array(count).fill(null);
    this.looping = looping;
    this.duration = duration;
    this.region = [0, duration];
    this.gains = this.buffers.map(() => {
      const gain = new GainNode(ctx, { gain: 0 });
      gain.connect(ctx.destination);
      return gain;
    });
    this.sources = null;
    this.current = null; // index of the selected buffer (audible while playing)
    this.playing = false;
    this.busyUntil = 0; // fades are queued one after another, never overlapping
    this.t0 = 0;
    this.offset = 0;
    this.pausedAt = 0;
    this.onSwitch = () => {}; // (index or null, position, ctxTime): a play started, switched or stopped
    this.onStop = () => {};
  }

  add(index, buffer) {
    this.buffers[index] = buffer;
    this.duration = Math.min(this.duration, buffer.duration);
    if (this.playing) this.sources[index] = this.source(index, this.when(), this.positionAt(this.when()));
  }

  when() {
    return Math.max(this.ctx.currentTime + LEAD, this.busyUntil);
  }

  positionAt(t) {
    if (!this.playing) return this.pausedAt;
    let p = this.offset + Math.max(0, t - this.t0);
    const [a, b] = this.region;
    if (this.looping && p >= b) p = a + ((p - a) % (b - a));
    return Math.min(p, this.duration);
  }

  position() {
    return this.positionAt(this.ctx.currentTime);
  }

  select(index) {
    if (!this.buffers[index]) return;
    if (!this.playing) return this.start(index, this.resumePosition());
    if (index === this.current) return;
    const t = this.when();
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t + FADE, FADE);
    this.busyUntil = t + 2 * FADE;
    this.current = index;
    this.onSwitch(index, this.positionAt(t + FADE), t + FADE);
  }

  resumePosition() {
    const [a, b] = this.region;
    const p = this.pausedAt;
    return p >= a && p < b - 0.05 ? p : a;
  }

  source(index, t, position) {
    const [a, b] = this.region;
    const source = new AudioBufferSourceNode(this.ctx, { buffer: this.buffers[index], loop: this.looping, loopStart: a, loopEnd: b });
    source.connect(this.gains[index]);
    source.start(t, Math.min(position, this.buffers[index].duration));
    return source;
  }

  start(index, position) {
    const t = this.when();
    this.sources = this.buffers.map((buffer, i) => (buffer ? this.source(i, t, position) : null));
    if (!this.looping) this.sources[index].onended = () => this.ended(index);
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t, FADE);
    Object.assign(this, { busyUntil: t + FADE, t0: t, offset: position, playing: true, current: index });
    this.onSwitch(index, position, t);
  }

  pause() {
    if (!this.playing) return;
    const t = this.when();
    const end = t + FADE;
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.pausedAt = this.positionAt(end);
    this.retire(end);
    this.busyUntil = end + 0.002; // the next sources start once these have stopped
    this.onSwitch(null, this.pausedAt, end);
  }

  retire(at) {
    for (const source of this.sources) {
      if (!source) continue;
      source.onended = () => source.disconnect();
      source.stop(at);
    }
    this.sources = null;
    this.playing = false;
    this.onStop();
  }

  ended(index) {
    // Natural end of a non-looping play: the signal is over, the gain is reset for the next start.
    if (!this.playing || this.current !== index) return;
    this.gains[index].gain.cancelScheduledValues(0);
    this.gains[index].gain.setValueAtTime(0, this.ctx.currentTime);
    this.pausedAt = 0;
    this.retire(this.ctx.currentTime);
    this.onSwitch(null, this.duration, this.ctx.currentTime);
  }

  setRegion(a, b) {
    this.region = [a, b];
    if (!this.playing) return;
    const index = this.current;
    this.pause();
    this.start(index, a);
  }

  dispose() {
    if (this.sources) this.sources.forEach((s) => { if (s) { s.onended = null; try { s.stop(); } catch (e) { /* already */ } } });
    this.sources = null;
    this.gains.forEach((g) => g.disconnect());
  }
}

// ---------------------------------------------------------------------------------------------
// The reference waveform: drag to set the loop region, click to loop everything.

class Waveform {
  constructor(host, samples, duration, onRegion) {
    this.samples = samples;
    this.duration = duration;
    this.onRegion = onRegion;
    this.region = [0, duration];
    this.cursor = 0;
    this.drag = null;
    this.box = el("div", "mu-wave");
    this.base = el("canvas", "mu-wave-base");
    this.overlay = el("canvas", "mu-wave-overlay");
    this.box.append(this.base, this.overlay);
    host.append(this.box);
    this.overlay.addEventListener("pointerdown", (e) => this.down(e));
    this.overlay.addEventListener("pointermove", (e) => this.move(e));
    this.overlay.addEventListener("pointerup", (e) => this.up(e));
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.box);
  }

  time(event) {
    const rect = this.overlay.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)) * this.duration;
  }

  down(event) {
    this.overlay.setPointerCapture(event.pointerId);
    this.drag = { from: this.time(event), x: event.clientX, to: this.time(event) };
  }

  move(event) {
    if (!this.drag) return;
    this.drag.to = this.time(event);
    this.draw();
  }

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
    const g = this.base.getContext("2d");
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
    const g = this.overlay.getContext("2d");
    const { width, height } = this.overlay;
    const style = getComputedStyle(this.box);
    const accent = style.getPropertyValue("--mu-accent").trim() || "#ff4b4b";
    const x = (t) => (t / this.duration) * width;
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

// A loop region at least MIN_LOOP long, grown around its middle and kept inside the signal.
function widen(t1, t2, duration) {
  let a = Math.min(t1, t2);
  let b = Math.max(t1, t2);
  if (b - a < MIN_LOOP) {
    const middle = (a + b) / 2;
    a = Math.max(0, middle - MIN_LOOP / 2);
    b = Math.min(duration, a + MIN_LOOP);
    a = Math.max(0, b - MIN_LOOP);
  }
  return [a, b];
}

// ---------------------------------------------------------------------------------------------
// One vertical slider: unrated until moved, enabled only for the stimulus being heard.

class Slider {
  constructor(host, readout, onChange) {
    this.value = null;
    this.enabled = false;
    this.onChange = onChange;
    this.track = el("div", "mu-track unrated");
    this.track.setAttribute("role", "slider");
    this.track.setAttribute("aria-valuemin", "0");
    this.track.setAttribute("aria-valuemax", "100");
    this.fill = el("div", "mu-fill");
    this.thumb = el("div", "mu-thumb");
    this.track.append(this.fill, this.thumb);
    this.readout = readout;
    readout.textContent = "–";
    host.append(this.track);
    this.track.addEventListener("pointerdown", (e) => this.down(e));
    this.track.addEventListener("pointermove", (e) => this.dragging && this.set(this.at(e)));
    this.track.addEventListener("pointerup", () => { this.dragging = false; });
  }

  at(event) {
    const rect = this.track.getBoundingClientRect();
    return Math.round(100 * (1 - (event.clientY - rect.top) / rect.height));
  }

  down(event) {
    if (!this.enabled) return;
    this.track.setPointerCapture(event.pointerId);
    this.dragging = true;
    this.set(this.at(event));
  }

  nudge(step) {
    if (this.enabled) this.set((this.value ?? 50) + step);
  }

  set(value, quiet) {
    this.value = Math.min(100, Math.max(0, Math.round(value)));
    this.track.classList.remove("unrated");
    this.track.setAttribute("aria-valuenow", String(this.value));
    this.fill.style.height = `${this.value}%`;
    this.thumb.style.bottom = `${this.value}%`;
    this.readout.textContent = String(this.value);
    if (!quiet) this.onChange();
  }

  enable(on) {
    this.enabled = on;
    this.track.classList.toggle("off", !on);
    this.track.setAttribute("aria-disabled", String(!on));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared by both views: fetching and decoding audio, resuming the context, notes for the server.

class Audio {
  constructor(ctx) {
    this.ctx = ctx;
    this.started = performance.now();
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

  note(kind, detail) {
    if (this.notes.length < MAX_NOTES) this.notes.push({ kind, ms: this.ms(), ...(detail || {}) });
  }

  async load(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`audio ${response.status}`);
    return this.ctx.decodeAudioData(await response.arrayBuffer());
  }

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

// ---------------------------------------------------------------------------------------------
// The trial view. `hooks`: report(stimulus|null, offset, loop), submit(ratings, client), fail(error).

export class TrialView {
  constructor(root, ctx, trial, hooks) {
    this.trial = trial;
    this.hooks = hooks;
    this.audio = new Audio(ctx);
    this.ids = [trial.ref.id, ...trial.stimuli.map((s) => s.id)];
    this.heard = { ...trial.heard }; // id -> [seconds, needed], as the server last said
    this.since = null; // performance.now() when the current play was reported
    this.submitted = false;
    this.storageKey = `evalkit:${trial.ref.id}`;
    this.build(root);
    this.keys = (e) => this.key(e);
    window.addEventListener("keydown", this.keys, true);
    this.player = new Player(ctx, this.ids.length, trial.duration, trial.loop);
    this.player.onSwitch = (index, position) => this.switched(index, position);
    this.player.onStop = () => this.update();
    this.restore();
    this.loadAll();
  }

  build(root) {
    const top = el("div", "mu-top");
    this.playButton = el("button", "mu-play", "▶ Play");
    this.clock = el("span", "mu-clock", "");
    this.loopLabel = el("span", "mu-loop-label", "");
    this.loopAll = el("button", "mu-loop-all", "Loop all");
    const help = el("span", "mu-help", "Keys: R reference · 1–9 samples · Space play/pause · ↑↓ rate · N next");
    top.append(this.playButton, this.clock, this.loopLabel, this.loopAll, help);
    this.waveHost = el("div", "mu-wave-host");
    this.status = el("div", "mu-status", "Loading audio…");
    const box = el("div", "mu");
    box.append(top, this.waveHost, this.status, this.buildBoard(), this.buildFooter());
    root.append(box);
    this.root = box;
    this.playButton.addEventListener("click", () => this.toggle());
    this.loopAll.addEventListener("click", () => this.loop(0, this.player.duration));
    for (const node of [this.playButton, this.loopAll, ...this.buttons]) node.disabled = true;
    this.nextButton.disabled = true;
  }

  buildBoard() {
    const board = el("div", "mu-board");
    const scale = el("div", "mu-scale");
    for (const [label, low, high] of this.trial.scale) {
      const band = el("div", "mu-band", label);
      band.style.bottom = `${low}%`;
      band.style.height = `${high - low}%`;
      scale.append(band);
    }
    const rows = el("div", "mu-columns");
    this.buttons = [];
    this.sliders = [];
    rows.append(this.column("Reference", 0, null));
    this.trial.stimuli.forEach((_, i) => rows.append(this.column(String(i + 1), i + 1, SLIDER_KEYS[i])));
    board.append(scale, rows);
    return board;
  }

  column(label, index, key) {
    const column = el("div", index === 0 ? "mu-col mu-ref" : "mu-col");
    const body = el("div", "mu-body");
    const readout = el("div", "mu-value");
    if (index === 0) body.append(el("div", "mu-ref-note", "Listen to the reference, then rate each sample against it"));
    else this.sliders.push(new Slider(body, readout, () => this.rated()));
    const button = el("button", "mu-button", label);
    button.title = index === 0 ? "Reference (R)" : `Sample ${label} (${key.toUpperCase()})`;
    button.addEventListener("click", () => this.choose(index));
    this.buttons.push(button);
    column.append(body, readout, button);
    return column;
  }

  buildFooter() {
    const footer = el("div", "mu-footer");
    this.hint = el("span", "mu-hint", "");
    this.nextButton = el("button", "mu-next", "Next ▸");
    this.nextButton.addEventListener("click", () => this.next());
    footer.append(this.hint, this.nextButton);
    return footer;
  }

  // Audio in slider order, the reference first; each becomes playable as soon as it is decoded.
  async loadAll() {
    const urls = [this.trial.ref.url, ...this.trial.stimuli.map((s) => s.url)];
    try {
      const first = await this.audio.load(urls[0]);
      this.arrived(0, first);
      this.interactive = this.audio.ms();
      await Promise.all(urls.slice(1).map((url, i) => this.audio.load(url).then((b) => this.arrived(i + 1, b))));
      this.allAudio = this.audio.ms();
    } catch (error) {
      if (this.disposed) return;
      this.status.hidden = false;
      this.status.textContent = "The audio could not be loaded or decoded. Reload the page; if that does not help, try another browser.";
      this.hooks.fail(error);
    }
  }

  arrived(index, buffer) {
    if (this.disposed) return;
    this.player.add(index, buffer);
    this.buttons[index].disabled = this.submitted;
    if (index !== 0) return this.update();
    this.wave = new Waveform(this.waveHost, buffer.getChannelData(0), this.player.duration, (a, b) => this.loop(a, b));
    this.waveHost.classList.toggle("mu-no-loop", !this.trial.loop);
    this.status.hidden = true;
    this.playButton.disabled = this.loopAll.disabled = false;
    this.update();
    this.tick();
  }

  // Slider positions live in the browser's storage until Next commits them (a reload keeps them).
  restore() {
    let saved = {};
    try { saved = JSON.parse(localStorage.getItem(this.storageKey) || "{}"); } catch (e) { saved = {}; }
    this.sliders.forEach((slider, i) => {
      const value = saved[this.ids[i + 1]];
      if (typeof value === "number") slider.set(value, true);
    });
  }

  rated() {
    const values = {};
    this.sliders.forEach((slider, i) => { if (slider.value !== null) values[this.ids[i + 1]] = slider.value; });
    try { localStorage.setItem(this.storageKey, JSON.stringify(values)); } catch (e) { /* private mode: no keeping */ }
    this.update();
  }

  switched(index, position) {
    const id = index === null ? null : this.ids[index];
    const now = performance.now();
    this.settle(now);
    this.since = index === null ? null : now;
    this.playingId = id;
    this.hooks.report(id, +position.toFixed(3), this.player.region.map((x) => +x.toFixed(3))).then(
      (heard) => { if (heard) this.heard = heard; this.update(); }, () => {});
  }

  // Locally, the open play's time so far joins what the server last said (the server decides at Next).
  settle(now) {
    if (this.since === null || !this.playingId) return;
    const [seconds, needed] = this.heard[this.playingId] || [0, this.needed()];
    this.heard[this.playingId] = [seconds + (now - this.since) / 1000, needed];
    this.since = now;
  }

  needed() {
    const [a, b] = this.player.region;
    return Math.min(this.trial.min_play, Math.max(this.trial.loop ? b - a : this.trial.duration, MIN_LOOP), this.trial.duration);
  }

  played(index) {
    const entry = this.heard[this.ids[index]];
    return !!entry && entry[0] >= Math.min(entry[1], this.needed()) + MARGIN;
  }

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

  loop(a, b) {
    if (!this.trial.loop || !this.wave) return;
    this.player.setRegion(a, b);
    this.wave.region = [a, b];
    this.audio.note("loop", { start: +a.toFixed(3), end: +b.toFixed(3) });
    this.update();
  }

  key(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || this.submitted) return;
    const target = event.composedPath()[0];
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    const k = event.key.toLowerCase();
    const slider = SLIDER_KEYS.indexOf(k);
    // A focused button would also act on Space/Enter (on key up); the shortcut alone should.
    if (target && target.tagName === "BUTTON") target.blur();
    if (k === "r") this.choose(0);
    else if (slider >= 0 && slider < this.sliders.length) this.choose(slider + 1);
    else if (k === " ") this.toggle();
    else if (k === "n") this.next();
    else if (k === "arrowup" || k === "arrowdown") this.nudge((k === "arrowup" ? 1 : -1) * (event.shiftKey ? 10 : 1));
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  nudge(step) {
    const current = this.player.current;
    if (current) this.sliders[current - 1].nudge(step);
  }

  // The library's rule, mirrored: every slider's stimulus heard long enough and (unless training) rated.
  blockers() {
    const unplayed = this.sliders.filter((_, i) => !this.played(i + 1)).length;
    const unrated = this.trial.rate ? this.sliders.filter((s) => s.value === null).length : 0;
    return { unplayed, unrated };
  }

  update() {
    const { playing, current } = this.player;
    this.buttons.forEach((button, i) => {
      button.classList.toggle("selected", current === i);
      button.classList.toggle("playing", playing && current === i);
      button.classList.toggle("played", this.played(i));
    });
    this.sliders.forEach((slider, i) => slider.enable(!this.submitted && current === i + 1));
    this.playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
    const [a, b] = this.player.region;
    const whole = a <= 0 && b >= this.player.duration;
    this.loopLabel.textContent = this.trial.loop ? (whole ? "Loop: whole excerpt (drag on the waveform to loop a part)" : `Loop: ${a.toFixed(2)}–${b.toFixed(2)} s`) : "";
    this.loopAll.hidden = !this.trial.loop || whole;
    const { unplayed, unrated } = this.blockers();
    const parts = [];
    if (unplayed) parts.push(`listen to ${unplayed} more sample${unplayed > 1 ? "s" : ""} (at least ${this.needed().toFixed(1)} s each)`);
    if (unrated) parts.push(`rate ${unrated} more sample${unrated > 1 ? "s" : ""}`);
    const training = this.trial.rate ? "" : "Training: your ratings here are not kept. ";
    this.hint.textContent = this.submitted ? "Saving…" : training + (parts.length ? `To continue, ${parts.join(" and ")}.` : "All done: press Next.");
    this.nextButton.disabled = this.submitted || parts.length > 0;
  }

  async next() {
    if (this.submitted || this.nextButton.disabled) return;
    this.player.pause();
    this.submitted = true;
    this.update();
    const ratings = {};
    this.sliders.forEach((slider, i) => { if (slider.value !== null) ratings[this.ids[i + 1]] = slider.value; });
    const client = this.audio.client({ ms_interactive: this.interactive ?? null, ms_all_audio: this.allAudio ?? null,
      loop: this.player.region.map((x) => +x.toFixed(3)) });
    const done = await this.hooks.submit(ratings, client);
    if (done) {
      try { localStorage.removeItem(this.storageKey); } catch (e) { /* nothing kept */ }
      return;
    }
    this.submitted = false; // refused: the listener can go on here
    this.update();
  }

  tick() {
    if (this.disposed) return;
    const position = this.player.position();
    this.wave.cursor = position;
    this.wave.draw();
    this.clock.textContent = `${fmt(position)} / ${fmt(this.player.duration)}`;
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
    if (this.wave) this.wave.dispose();
    this.audio.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The level check: one looping signal; confirm once it has been heard. `hooks`: confirm(settings), fail.

export class LevelView {
  constructor(root, ctx, level, hooks) {
    this.audio = new Audio(ctx);
    this.hooks = hooks;
    this.heard = 0;
    const row = el("div", "mu-level");
    this.playButton = el("button", "mu-play mu-big", "▶ Play the level signal");
    this.confirmButton = el("button", "mu-next", "The level is comfortable ▸");
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
    this.audio.resume();
    if (this.player.playing) this.player.pause();
    else this.player.select(0);
    this.playButton.textContent = this.player.playing ? "❚❚ Stop" : "▶ Play the level signal";
    this.playButton.classList.toggle("playing", this.player.playing);
    this.confirmButton.disabled = false;
  }

  async confirm() {
    if (this.player.playing) this.toggle();
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
