// The player's pure functions (evalkit/listening/static/core.js), run with `node --test tests/js/`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MARGIN, MIN_LOOP, PERCENT, choose, decimals, fraction, needed, pickResponse, pieces, played, positionAt, raisedCosine,
  restoreChoice, restoreRatings, resumePosition, safeLink, settle, snap, widen,
} from "../../evalkit/listening/static/core.js";

const clock = (changes) => ({ playing: true, t0: 10, offset: 0, pausedAt: 0, looping: false, region: [0, 4], duration: 4, ...changes });

test("raisedCosine runs from 0 to 1 (or back), monotone, symmetric", () => {
  const up = raisedCosine(64, true);
  const down = raisedCosine(64, false);
  assert.equal(up.length, 64);
  assert.equal(up[0], 0);
  assert.ok(Math.abs(up[63] - 1) < 1e-6);
  for (let k = 1; k < 64; k++) assert.ok(up[k] >= up[k - 1]);
  for (let k = 0; k < 64; k++) assert.ok(Math.abs(up[k] + down[k] - 1) < 1e-6 && Math.abs(up[k] - down[63 - k]) < 1e-6);
});

test("widen keeps a long region, grows a short one to MIN_LOOP around its middle, inside the signal", () => {
  assert.deepEqual(widen(3, 1, 10), [1, 3]);
  assert.deepEqual(widen(5, 5.1, 10), [5.05 - MIN_LOOP / 2, 5.05 + MIN_LOOP / 2]);
  assert.deepEqual(widen(0, 0.1, 10), [0, MIN_LOOP]); // at the start: pushed right
  assert.deepEqual(widen(9.95, 10, 10), [10 - MIN_LOOP, 10]); // at the end: pushed left
  assert.deepEqual(widen(0.1, 0.2, 0.3), [0, 0.3]); // a signal shorter than MIN_LOOP: all of it
  for (let k = 0; k < 200; k++) { // any drag: inside [0, duration], at least MIN_LOOP (or all of a short signal)
    const duration = 0.2 + (k % 17);
    const [a, b] = widen(((k * 7919) % 997) / 997 * duration, ((k * 104729) % 991) / 991 * duration, duration);
    assert.ok(a >= 0 && b <= duration + 1e-12 && a <= b);
    assert.ok(b - a >= Math.min(MIN_LOOP, duration) - 1e-9);
  }
});

test("positionAt follows the clock, wraps in the loop region, stops at the end, holds while paused", () => {
  assert.equal(positionAt(clock(), 11.5), 1.5);
  assert.equal(positionAt(clock(), 9), 0); // scheduled but not yet started
  assert.equal(positionAt(clock(), 20), 4); // not looping: the end
  assert.equal(positionAt(clock({ looping: true, region: [1, 2], offset: 1 }), 12.25), 1.25); // 1 + 2.25 wraps to 1.25
  assert.equal(positionAt(clock({ looping: true, region: [0, 4] }), 14.5), 0.5);
  assert.equal(positionAt(clock({ playing: false, pausedAt: 2.5 }), 99), 2.5);
  assert.equal(positionAt(clock({ duration: 3 }), 13.5), 3); // the shortest buffer ends the page's signal
});

test("resumePosition resumes inside the region, else from its start", () => {
  assert.equal(resumePosition(1.5, [1, 3]), 1.5);
  assert.equal(resumePosition(0.5, [1, 3]), 1);
  assert.equal(resumePosition(2.98, [1, 3]), 1); // at the very end: start again
});

test("needed: the minimum, or the loop region or whole stimulus when shorter, never under MIN_LOOP", () => {
  const trial = { min_play: 3, loop: true, duration: 8 };
  assert.equal(needed(trial, [0, 8]), 3);
  assert.equal(needed(trial, [2, 3]), 1);
  assert.equal(needed(trial, [2, 2.1]), MIN_LOOP);
  assert.equal(needed({ min_play: 8, loop: false, duration: 8 }, [2, 3]), 8); // not looping: the region does not count
  assert.equal(needed({ min_play: 5, loop: false, duration: 1 }, [0, 1]), 1);
});

test("played needs the need plus a margin, and only what the server reported for that id", () => {
  const heard = { a: [1.0, 1.0], b: [1.0 + MARGIN, 1.0], c: [0.6 + MARGIN, 3.0] };
  assert.equal(played(heard, "a", 1), false);
  assert.equal(played(heard, "b", 1), true);
  assert.equal(played(heard, "c", 0.6), true); // a shorter loop region lowers the need
  assert.equal(played(heard, "d", 0.1), false);
  // "all" of a 1 s stimulus needs 0.9 s; the server counts at most 1 s of a play that does not loop
  assert.equal(played({ e: [1.0, 0.9] }, "e", 0.9), false);
  assert.equal(played({ e: [0.97, 0.9] }, "e", 0.9, 1.0), true); // a play to the end, by arrival times
  assert.equal(played({ e: [0.94, 0.9] }, "e", 0.9, 1.0), false);
});

test("settle adds the open play's seconds to its id only, without changing the input", () => {
  const heard = { a: [1, 2] };
  const after = settle(heard, "a", 1000, 1500, 2);
  assert.deepEqual(after, { a: [1.5, 2] });
  assert.deepEqual(heard, { a: [1, 2] });
  assert.deepEqual(settle(heard, "b", 0, 250, 3), { a: [1, 2], b: [0.25, 3] });
  assert.equal(settle(heard, null, 0, 250, 3), heard);
  assert.equal(settle(heard, "a", null, 250, 3), heard);
});

test("pieces says what is left, in words, and nothing when all is done", () => {
  assert.deepEqual(pieces({ unplayed: 0, unrated: 0, need: 1 }), []);
  assert.deepEqual(pieces({ unplayed: 2, unrated: 1, need: 1.25 }),
    ["listen to 2 more samples (at least 1.3 s each)", "rate 1 more sample"]);
  assert.deepEqual(pieces({ unplayed: 1, unchosen: true, need: 4 }), ["listen to 1 more sample (at least 4.0 s each)", "choose an answer"]);
});

test("slider state: on the scale at its steps; kept ratings only for this page's ids", () => {
  assert.equal(snap(49.6), 50);
  assert.equal(snap(-3), 0);
  assert.equal(snap(250), 100);
  for (const bad of [NaN, Infinity, "50", null, undefined, true, {}]) assert.equal(snap(bad), null);
  const grades = { low: 1, high: 5, step: 0.1 }; // BS.1116's impairment scale
  assert.equal(snap(4.349, grades), 4.3);
  assert.equal(snap(4.36, grades), 4.4);
  assert.equal(snap(0.2, grades), 1);
  assert.equal(snap(5.04, grades), 5);
  for (let k = 0; k <= 400; k++) { // every value a slider can give has at most one decimal, as the server wants
    const value = snap(1 + k / 100, grades);
    assert.ok(Math.abs(value * 10 - Math.round(value * 10)) < 1e-9 && value >= 1 && value <= 5, String(value));
  }
  assert.deepEqual([decimals(1), decimals(0.1), decimals(0.25)], [0, 1, 2]);
  assert.equal(fraction(3, grades), 0.5);
  assert.equal(fraction(80, PERCENT), 0.8);
  assert.deepEqual(restoreRatings(["x", "y", "z"], { x: 40, y: "60", z: 101, other: 5 }), { x: 40, z: 100 });
  assert.deepEqual(restoreRatings(["x"], { x: 4.26 }, grades), { x: 4.3 });
  assert.deepEqual(restoreRatings(["x"], null), {});
  assert.deepEqual(restoreRatings(["x"], "garbage"), {});
});

test("choice state: only the page's options; a kept choice from another page is dropped", () => {
  const options = [{ value: 5, label: "Excellent" }, { value: 1, label: "Bad" }];
  assert.equal(choose(options, null, 5), 5);
  assert.equal(choose(options, 5, 1), 1);
  assert.equal(choose(options, 5, 3), 5); // not an option: unchanged
  assert.equal(choose(options, null, "5"), null); // types matter: the server compares values
  assert.equal(restoreChoice(options, 1), 1);
  assert.equal(restoreChoice(options, "id-of-another-page"), null);
  assert.deepEqual(pickResponse(1), { choice: 1 });
  assert.equal(pickResponse(null), null);
  const ab = [{ value: "k3j", label: "A" }, { value: "q9z", label: "B" }, { value: "none", label: "No preference" }];
  assert.equal(choose(ab, null, "none"), "none");
  assert.equal(choose(ab, "k3j", "x"), "k3j");
});

test("safeLink lets only http(s) links through", () => {
  assert.equal(safeLink("https://app.prolific.com/submissions/complete?cc=AB"), "https://app.prolific.com/submissions/complete?cc=AB");
  for (const bad of ["javascript:alert(1)", "//evil.example", "data:text/html,x", null, 3]) assert.equal(safeLink(bad), null);
});
