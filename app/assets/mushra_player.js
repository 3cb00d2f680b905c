// evalkit MUSHRA player (Streamlit components v2, Web Audio). It knows opaque ids and audio bytes only.
//
// Trial mode: the reference button first, then one slider per stimulus. Every buffer plays from one
// shared play-head; switching fades the audible signal out over 5 ms (raised cosine) and only then
// fades the next one in, so two signals are never heard at once. Level mode: one looping signal and
// a confirm button. The page learns the outcome through triggers: "submit", "confirm", "error".

const FADE = 0.005; // s, BS.1534-style switching: 5 ms out, then 5 ms in
const LEAD = 0.01; // s, schedule slightly ahead of the audio clock's render quantum
const MIN_LOOP = 0.5; // s, the shortest loop region
const SLIDER_KEYS = "1234567890-=";
const MAX_PIECES = 32; // play-log entries per continuous play (long loops are summarised)
const MAX_EVENTS = 200;

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

function decodeBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes.buffer;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(seconds) {
  return `${Math.max(0, seconds).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------
// Audio: every buffer on one play-head, one audible at a time.

class Player {
  constructor(ctx, buffers, looping) {
    this.ctx = ctx;
    this.buffers = buffers;
    this.looping = looping;
    this.duration = Math.min(...buffers.map((b) => b.duration));
    this.region = [0, this.duration];
    this.gains = buffers.map(() => {
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
    this.segment = null;
    this.onSegment = () => {}; // (index, startPosition, seconds, ctxTime)
    this.onStop = () => {};
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
    if (!this.playing) return this.start(index, this.resumePosition());
    if (index === this.current) return;
    const t = this.when();
    this.closeSegment(t + FADE);
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t + FADE, FADE);
    this.busyUntil = t + 2 * FADE;
    this.current = index;
    this.openSegment(index, t + FADE);
  }

  resumePosition() {
    const [a, b] = this.region;
    const p = this.pausedAt;
    return p >= a && p < b - 0.05 ? p : a;
  }

  start(index, position) {
    const t = this.when();
    const [a, b] = this.region;
    this.sources = this.buffers.map((buffer, i) => {
      const source = new AudioBufferSourceNode(this.ctx, { buffer, loop: this.looping, loopStart: a, loopEnd: b });
      source.connect(this.gains[i]);
      source.start(t, position);
      return source;
    });
    if (!this.looping) this.sources[0].onended = () => this.ended();
    this.gains[index].gain.setValueCurveAtTime(FADE_IN, t, FADE);
    Object.assign(this, { busyUntil: t + FADE, t0: t, offset: position, playing: true, current: index });
    this.openSegment(index, t);
  }

  pause() {
    if (!this.playing) return;
    const t = this.when();
    const end = t + FADE;
    this.gains[this.current].gain.setValueCurveAtTime(FADE_OUT, t, FADE);
    this.closeSegment(end);
    this.pausedAt = this.positionAt(end);
    this.retire(end);
    this.busyUntil = end + 0.002; // the next sources start once these have stopped
  }

  retire(at) {
    for (const source of this.sources) {
      source.onended = () => source.disconnect();
      source.stop(at);
    }
    this.sources = null;
    this.playing = false;
    this.onStop();
  }

  ended() {
    // Natural end of a non-looping play: the signal is over, the gain is reset for the next start.
    const end = this.t0 + (this.duration - this.offset);
    this.closeSegment(end);
    this.gains[this.current].gain.cancelScheduledValues(0);
    this.gains[this.current].gain.setValueAtTime(0, this.ctx.currentTime);
    this.pausedAt = 0;
    this.retire(this.ctx.currentTime);
  }

  setRegion(a, b) {
    this.region = [a, b];
    if (!this.playing) return;
    const index = this.current;
    this.pause();
    this.start(index, a);
  }

  openSegment(index, t) {
    this.segment = { index, t, position: this.positionAt(t) };
  }

  closeSegment(t) {
    const segment = this.segment;
    if (!segment) return;
    this.segment = null;
    this.onSegment(segment.index, segment.position, Math.max(0, t - segment.t), segment.t);
  }

  dispose() {
    if (this.sources) this.sources.forEach((s) => { s.onended = null; try { s.stop(); } catch (e) { /* already */ } });
    this.sources = null;
  }
}

// Turn one continuous play (start position, seconds heard) into file spans, split where it loops.
function pieces(position, seconds, region, looping, duration) {
  const [a, b] = looping ? region : [0, duration];
  const spans = [];
  let p = position;
  let left = seconds;
  while (left > 1e-4 && spans.length < MAX_PIECES) {
    const step = Math.min(left, b - p);
    spans.push([p, p + step]);
    left -= step;
    if (!looping) break;
    p = a;
  }
  return spans.length ? spans : [[position, position]];
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
      const peak = Math.max(hi, -lo);
      const h = Math.max(1, (peak / top) * height * 0.9); // scaled to the excerpt's peak
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

  set(value) {
    this.value = Math.min(100, Math.max(0, Math.round(value)));
    this.track.classList.remove("unrated");
    this.track.setAttribute("aria-valuenow", String(this.value));
    this.fill.style.height = `${this.value}%`;
    this.thumb.style.bottom = `${this.value}%`;
    this.readout.textContent = String(this.value);
    this.onChange();
  }

  enable(on) {
    this.enabled = on;
    this.track.classList.toggle("off", !on);
    this.track.setAttribute("aria-disabled", String(!on));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared by both modes: the audio context, its resume on the first gesture, and a client record.

class Session {
  constructor(data, setTriggerValue) {
    this.data = data;
    this.trigger = setTriggerValue;
    this.ctx = new AudioContext({ sampleRate: data.sampleRate || undefined });
    this.mounted = performance.now();
    this.events = [];
    this.resume = () => {
      if (this.ctx.state === "suspended") this.ctx.resume().then(() => this.note("audio_resumed"));
    };
    window.addEventListener("pointerdown", this.resume, true);
    window.addEventListener("keydown", this.resume, true);
  }

  ms() {
    return Math.round(performance.now() - this.mounted);
  }

  note(kind, detail) {
    if (this.events.length < MAX_EVENTS) this.events.push({ kind, ms: this.ms(), ...(detail || {}) });
  }

  async decode(clips) {
    const started = performance.now();
    const buffers = await Promise.all(clips.map((clip) => this.ctx.decodeAudioData(decodeBase64(clip.audio))));
    this.decodeMs = Math.round(performance.now() - started);
    return buffers;
  }

  client(extra) {
    return {
      ms_on_page: this.ms(), ms_decode: this.decodeMs, sample_rate: this.ctx.sampleRate,
      base_latency: this.ctx.baseLatency ?? null, output_latency: this.ctx.outputLatency ?? null,
      events: this.events, ...extra,
    };
  }

  fail(error) {
    this.trigger("error", { message: String(error && error.message ? error.message : error) });
  }

  dispose() {
    window.removeEventListener("pointerdown", this.resume, true);
    window.removeEventListener("keydown", this.resume, true);
    this.ctx.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Trial mode.

class Trial {
  constructor(root, data, session) {
    this.data = data;
    this.session = session;
    this.ids = [data.ref.id, ...data.stimuli.map((s) => s.id)];
    this.played = new Set();
    this.plays = [];
    this.submitted = false;
    this.root = root;
    this.build(root);
    this.keys = (e) => this.key(e);
    window.addEventListener("keydown", this.keys, true); // capture: before Streamlit's own "r" (rerun) key
    session.decode([data.ref, ...data.stimuli]).then((b) => this.ready(b), (e) => this.failed(e));
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
    root.append(top, this.waveHost, this.status, this.buildBoard(), this.buildFooter());
    this.playButton.addEventListener("click", () => this.toggle());
    this.loopAll.addEventListener("click", () => this.loop(0, this.player.duration));
    this.setDisabled(true);
  }

  buildBoard() {
    const board = el("div", "mu-board");
    const scale = el("div", "mu-scale");
    for (const [label, low, high] of this.data.scale) {
      const band = el("div", "mu-band", label);
      band.style.bottom = `${low}%`;
      band.style.height = `${high - low}%`;
      scale.append(band);
    }
    const rows = el("div", "mu-columns");
    this.buttons = [];
    this.sliders = [];
    rows.append(this.column("Reference", 0, null));
    this.data.stimuli.forEach((_, i) => rows.append(this.column(String(i + 1), i + 1, SLIDER_KEYS[i])));
    board.append(scale, rows);
    return board;
  }

  column(label, index, key) {
    const column = el("div", index === 0 ? "mu-col mu-ref" : "mu-col");
    const body = el("div", "mu-body");
    const readout = el("div", "mu-value");
    if (index === 0) body.append(el("div", "mu-ref-note", "Listen to the reference, then rate each sample against it"));
    else this.sliders.push(new Slider(body, readout, () => this.update()));
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

  ready(buffers) {
    this.player = new Player(this.session.ctx, buffers, this.data.loop);
    this.player.onSegment = (index, position, seconds, t) => this.logged(index, position, seconds, t);
    this.player.onStop = () => this.update();
    const samples = buffers[0].getChannelData(0);
    this.wave = new Waveform(this.waveHost, samples, this.player.duration, (a, b) => this.loop(a, b));
    this.waveHost.classList.toggle("mu-no-loop", !this.data.loop);
    this.status.textContent = "";
    this.status.hidden = true;
    this.setDisabled(false);
    this.update();
    this.tick();
  }

  failed(error) {
    this.status.textContent = "This browser could not decode the audio. Please try another browser (Chrome, Firefox, Edge or Safari).";
    this.session.fail(error);
  }

  setDisabled(on) {
    for (const node of [this.playButton, this.loopAll, ...this.buttons]) node.disabled = on;
    this.nextButton.disabled = true;
  }

  choose(index) {
    if (!this.player || this.submitted) return;
    this.session.resume();
    if (this.player.playing && this.player.current === index) this.player.pause();
    else this.player.select(index);
    this.played.add(index);
    this.update();
  }

  toggle() {
    if (!this.player || this.submitted) return;
    if (this.player.playing) this.player.pause();
    else this.choose(this.player.current ?? 0);
    this.update();
  }

  loop(a, b) {
    if (!this.data.loop || !this.player) return;
    this.player.setRegion(a, b);
    this.wave.region = [a, b];
    this.session.note("loop", { start: +a.toFixed(3), end: +b.toFixed(3) });
    this.update();
  }

  logged(index, position, seconds, t) {
    const at = this.session.ms() + (t - this.session.ctx.currentTime) * 1000;
    const region = this.player.region;
    for (const [start, end] of pieces(position, seconds, region, this.data.loop, this.player.duration)) {
      this.plays.push({ stimulus: this.ids[index], start: +start.toFixed(4), end: +end.toFixed(4), at: Math.round(at) });
    }
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
    const current = this.player && this.player.current;
    if (current) this.sliders[current - 1].nudge(step);
  }

  // The library's next_allowed rule, mirrored: every slider's stimulus played and (unless training) rated.
  blockers() {
    const unplayed = this.sliders.filter((_, i) => !this.played.has(i + 1)).length;
    const unrated = this.data.rate ? this.sliders.filter((s) => s.value === null).length : 0;
    return { unplayed, unrated };
  }

  update() {
    if (!this.player) return;
    const { playing, current } = this.player;
    this.buttons.forEach((button, i) => {
      button.classList.toggle("selected", current === i);
      button.classList.toggle("playing", playing && current === i);
      button.classList.toggle("played", this.played.has(i));
    });
    this.sliders.forEach((slider, i) => slider.enable(!this.submitted && current === i + 1));
    this.playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
    const [a, b] = this.player.region;
    const whole = a <= 0 && b >= this.player.duration;
    this.loopLabel.textContent = this.data.loop ? (whole ? "Loop: whole excerpt (drag on the waveform to loop a part)" : `Loop: ${a.toFixed(2)}–${b.toFixed(2)} s`) : "";
    this.loopAll.hidden = !this.data.loop || whole;
    this.updateNext();
  }

  updateNext() {
    const { unplayed, unrated } = this.blockers();
    const parts = [];
    if (unplayed) parts.push(`play ${unplayed} more sample${unplayed > 1 ? "s" : ""}`);
    if (unrated) parts.push(`rate ${unrated} more sample${unrated > 1 ? "s" : ""}`);
    const training = this.data.rate ? "" : "Training: your ratings here are not kept. ";
    this.hint.textContent = this.submitted ? "Saving…" : training + (parts.length ? `To continue, ${parts.join(" and ")}.` : "All done: press Next.");
    this.nextButton.disabled = this.submitted || parts.length > 0;
  }

  next() {
    if (this.submitted || !this.player) return;
    const { unplayed, unrated } = this.blockers();
    if (unplayed || unrated) return;
    this.player.pause();
    this.submitted = true;
    const ratings = {};
    this.sliders.forEach((slider, i) => { if (slider.value !== null) ratings[this.ids[i + 1]] = slider.value; });
    const client = this.session.client({ loop: this.player.region.map((x) => +x.toFixed(3)), plays_logged: this.plays.length });
    this.setDisabled(true);
    this.update();
    this.session.trigger("submit", { ratings, plays: this.plays, client });
  }

  tick() {
    if (this.disposed) return;
    if (this.player) {
      const position = this.player.position();
      this.wave.cursor = position;
      this.wave.draw();
      this.clock.textContent = `${fmt(position)} / ${fmt(this.player.duration)}`;
    }
    this.frame = requestAnimationFrame(() => this.tick());
  }

  dispose() {
    this.disposed = true;
    cancelAnimationFrame(this.frame);
    window.removeEventListener("keydown", this.keys, true);
    if (this.player) this.player.dispose();
    if (this.wave) this.wave.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Level mode: one looping signal; confirm once it has been heard.

class LevelCheck {
  constructor(root, data, session) {
    this.session = session;
    this.heard = 0;
    const row = el("div", "mu-level");
    this.playButton = el("button", "mu-play mu-big", "▶ Play the level signal");
    this.confirmButton = el("button", "mu-next", "The level is comfortable ▸");
    this.hint = el("span", "mu-hint", "Loading audio…");
    row.append(this.playButton, this.confirmButton);
    root.append(row, this.hint);
    this.playButton.disabled = true;
    this.confirmButton.disabled = true;
    this.playButton.addEventListener("click", () => this.toggle());
    this.confirmButton.addEventListener("click", () => this.confirm());
    session.decode([data.ref]).then((b) => this.ready(b, data.ref.id), (e) => session.fail(e));
  }

  ready(buffers, id) {
    this.player = new Player(this.session.ctx, buffers, true);
    this.player.onSegment = (_, position, seconds) => { this.heard += seconds; };
    this.playButton.disabled = false;
    this.hint.textContent = "Play the signal and set your volume; it repeats until you stop it.";
    this.id = id;
  }

  toggle() {
    this.session.resume();
    if (this.player.playing) this.player.pause();
    else this.player.select(0);
    this.playButton.textContent = this.player.playing ? "❚❚ Stop" : "▶ Play the level signal";
    this.playButton.classList.toggle("playing", this.player.playing);
    this.confirmButton.disabled = false;
  }

  confirm() {
    this.player.pause();
    this.playButton.textContent = "▶ Play the level signal";
    this.playButton.classList.remove("playing");
    this.confirmButton.disabled = this.playButton.disabled = true;
    this.session.trigger("confirm", this.session.client({ seconds_heard: +this.heard.toFixed(2) }));
  }

  dispose() {
    if (this.player) this.player.dispose();
  }
}

export default function mount(component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".mu") || parentElement.appendChild(el("div", "mu"));
  root.replaceChildren();
  const session = new Session(data, setTriggerValue);
  const view = data.mode === "level" ? new LevelCheck(root, data, session) : new Trial(root, data, session);
  root.__mushra = view; // inspected by the browser test; holds opaque ids only
  return () => {
    view.dispose();
    session.dispose();
  };
}
