// Pure pieces of the listener's player: no DOM, no audio, so node's test runner checks them (tests/js/).

/** Seconds of one switch's fade out, then the same fade in (BS.1534-style switching). */
export const FADE = 0.005;
/** Seconds: the shortest loop region (the server's playlog.MIN_LOOP_S). */
export const MIN_LOOP = 0.5;
/** Seconds heard beyond the need before the page calls a stimulus played (network jitter). */
export const MARGIN = 0.15;

/**
 * @typedef {Object} Clock  Where a shared play-head stands.
 * @property {boolean} playing
 * @property {number} t0        audio-clock time the current play started
 * @property {number} offset    position (s) at t0
 * @property {number} pausedAt  position (s) while paused
 * @property {boolean} looping
 * @property {[number, number]} region  loop region (s)
 * @property {number} duration  seconds of the shortest loaded buffer
 */

/**
 * @typedef {Object<string, [number, number]>} Heard  id -> [seconds heard, seconds needed], as the server last said.
 */

/**
 * A raised-cosine fade curve of `points` values from 0 to 1 (rising) or 1 to 0.
 * @param {number} points
 * @param {boolean} rising
 * @returns {Float32Array}
 */
export function raisedCosine(points, rising) {
  const curve = new Float32Array(points);
  for (let k = 0; k < points; k++) {
    const c = 0.5 * (1 - Math.cos((Math.PI * k) / (points - 1)));
    curve[k] = rising ? c : 1 - c;
  }
  return curve;
}

/**
 * A loop region at least MIN_LOOP long, grown around its middle and kept inside the signal.
 * @param {number} t1
 * @param {number} t2
 * @param {number} duration
 * @returns {[number, number]}
 */
export function widen(t1, t2, duration) {
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

/**
 * The play-head's position (s) at audio-clock time `t`: wrapped into the loop region, never past the end.
 * @param {Clock} clock
 * @param {number} t
 * @returns {number}
 */
export function positionAt(clock, t) {
  if (!clock.playing) return clock.pausedAt;
  let p = clock.offset + Math.max(0, t - clock.t0);
  const [a, b] = clock.region;
  if (clock.looping && p >= b) p = a + ((p - a) % (b - a));
  return Math.min(p, clock.duration);
}

/**
 * Where a paused play resumes: where it stopped, unless that is outside the region or at its very end.
 * @param {number} pausedAt
 * @param {[number, number]} region
 * @returns {number}
 */
export function resumePosition(pausedAt, region) {
  const [a, b] = region;
  return pausedAt >= a && pausedAt < b - 0.05 ? pausedAt : a;
}

/**
 * Seconds a stimulus must be heard: the trial's minimum, or the loop region (or the whole stimulus) if shorter.
 * @param {{min_play: number, loop: boolean, duration: number}} trial
 * @param {[number, number]} region
 * @returns {number}
 */
export function needed(trial, region) {
  const [a, b] = region;
  return Math.min(trial.min_play, Math.max(trial.loop ? b - a : trial.duration, MIN_LOOP), trial.duration);
}

/**
 * Whether the stimulus `id` counts as heard (with MARGIN, so the server, which decides, agrees). `most` is the
 * most one play can count (a stimulus that does not loop: its duration): the margin stays under half the way
 * there, since the server counts a play to its end by arrival times that may fall a little short of it.
 * @param {Heard} heard
 * @param {string} id
 * @param {number} need
 * @param {number} [most]
 * @returns {boolean}
 */
export function played(heard, id, need, most = Infinity) {
  const entry = heard[id];
  const least = Math.min(entry ? entry[1] : need, need);
  return !!entry && entry[0] >= Math.min(least + MARGIN, (least + most) / 2);
}

/**
 * `heard` with the open play's seconds since `since` (ms) added to `id` (the server decides at Next).
 * @param {Heard} heard
 * @param {string|null} id
 * @param {number|null} since  performance.now() when the open play was last counted
 * @param {number} now
 * @param {number} need  used when the server has not reported this id yet
 * @returns {Heard}
 */
export function settle(heard, id, since, now, need) {
  if (since === null || !id) return heard;
  const [seconds, wanted] = heard[id] || [0, need];
  return { ...heard, [id]: [seconds + (now - since) / 1000, wanted] };
}

/**
 * The pieces of the hint under a page: what is still to do before Next.
 * @param {{unplayed: number, unrated?: number, unchosen?: boolean, need: number, noun?: string}} todo
 * @returns {string[]}
 */
export function pieces(todo) {
  const noun = todo.noun || "sample";
  const parts = [];
  if (todo.unplayed) {
    parts.push(`listen to ${todo.unplayed} more ${noun}${todo.unplayed > 1 ? "s" : ""} (at least ${todo.need.toFixed(1)} s each)`);
  }
  if (todo.unrated) parts.push(`rate ${todo.unrated} more ${noun}${todo.unrated > 1 ? "s" : ""}`);
  if (todo.unchosen) parts.push("choose an answer");
  return parts;
}

/**
 * @typedef {Object} Range  A continuous scale as a slider covers it.
 * @property {number} low
 * @property {number} high
 * @property {number} step  the resolution (MUSHRA: 1; BS.1116: 0.1)
 */

/** @type {Range} MUSHRA's 0-100 scale, whole numbers. */
export const PERCENT = { low: 0, high: 100, step: 1 };

/**
 * Decimals a step needs on the page (1: 0, 0.1: 1, 0.25: 2).
 * @param {number} step
 * @returns {number}
 */
export function decimals(step) {
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

/**
 * A slider's value: on [low, high] at a whole number of steps from low, or null for anything not a finite number.
 * @param {unknown} value
 * @param {Range} [range]
 * @returns {number|null}
 */
export function snap(value, range = PERCENT) {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const snapped = range.low + Math.round((value - range.low) / range.step) * range.step;
  return +Math.min(range.high, Math.max(range.low, snapped)).toFixed(decimals(range.step));
}

/**
 * Where a value sits on the scale, 0 (low) to 1 (high).
 * @param {number} value
 * @param {Range} range
 * @returns {number}
 */
export function fraction(value, range) {
  return (value - range.low) / (range.high - range.low);
}

/**
 * Slider ratings kept in the browser's storage, read back for this page's ids only.
 * @param {string[]} ids
 * @param {unknown} saved  what was parsed from storage
 * @param {Range} [range]
 * @returns {Object<string, number>}
 */
export function restoreRatings(ids, saved, range = PERCENT) {
  /** @type {Object<string, number>} */
  const ratings = {};
  if (!saved || typeof saved !== "object") return ratings;
  for (const id of ids) {
    const value = snap(/** @type {Object<string, unknown>} */ (saved)[id], range);
    if (value !== null) ratings[id] = value;
  }
  return ratings;
}

/**
 * @typedef {Object} Option  One answer a page offers: the value sent back and the words shown.
 * @property {number|string} value
 * @property {string} label
 */

/**
 * The choice after the listener picks `value`: one of the page's options, else the previous choice.
 * @param {Option[]} options
 * @param {number|string|null} previous
 * @param {unknown} value
 * @returns {number|string|null}
 */
export function choose(options, previous, value) {
  return options.some((option) => option.value === value) ? /** @type {number|string} */ (value) : previous;
}

/**
 * A kept choice read back: valid only if it is still one of the page's options.
 * @param {Option[]} options
 * @param {unknown} saved
 * @returns {number|string|null}
 */
export function restoreChoice(options, saved) {
  return choose(options, null, saved);
}

/**
 * The answer a pick page sends: {choice} (the server checks it against the page's layout), or null if none yet.
 * @param {number|string|null} choice
 * @returns {{choice: number|string}|null}
 */
export function pickResponse(choice) {
  return choice === null ? null : { choice };
}

/**
 * A redirect back to the listener's panel, shown only if it is an http(s) URL.
 * @param {unknown} url
 * @returns {string|null}
 */
export function safeLink(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}
