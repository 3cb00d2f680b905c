// evalkit's listener page: one page for every step of every test type, driven by the JSON API in
// evalkit.listening.web. Trial pages are drawn by the view the server names (views.js).
//
// The link carries the listener's token (?t=...); every request sends it in a header. Each step is one
// request whose answer is the next page, so the server (and its database) always decides where the
// listener stands; reloading the tab asks again and lands in the same place.

import { el } from "./audio.js";
import { safeLink } from "./core.js";
import { LevelView } from "./level.js";
import { VIEWS } from "./views.js";

/**
 * @typedef {Object} Question  One question of the qualification or the questionnaire.
 * @property {string} id
 * @property {string} text
 * @property {string} type  "choice" | "number" | "text"
 * @property {boolean} required
 * @property {string[]} choices
 * @property {number|null} min
 * @property {number|null} max
 */

/**
 * @typedef {Object} Page  What the server answers for every step (evalkit.listening.web.page_json); a phase's
 * page carries the fields that phase needs.
 * @property {string} phase
 * @property {string} title
 * @property {string} participant
 * @property {string} [html]
 * @property {string|null} [completion_code]
 * @property {string|null} [redirect]
 * @property {Question[]} [questions]
 * @property {import("./trial.js").Trial} [trial]
 * @property {number} [total]
 * @property {number} [done]
 * @property {number} [sample_rate]
 * @property {{id: string, url: string}} [level]
 */

/** @typedef {{dispose?: () => void}} View */

const token = new URLSearchParams(location.search).get("t") || "";
const app = /** @type {HTMLElement} */ (document.getElementById("app"));
/** @type {View|null} */
let view = null;
/** @type {Page|null} */
let current = null; // the page on screen
/** @type {AudioContext|null} */
let context = null; // one AudioContext for the page's lifetime (browsers limit how many there may be)

class RequestError extends Error {
  /** @param {string} message @param {number} status @param {Object<string, string>} [problems] */
  constructor(message, status, problems) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

/** A refused or failed request as a RequestError (anything else thrown becomes one with status 0). @param {unknown} error */
function requestError(error) {
  return error instanceof RequestError ? error : new RequestError(String(error), 0);
}

/**
 * @param {string} method @param {string} path @param {Object} [body]
 * @returns {Promise<any>} the answer's JSON (a Page for the steps)
 */
async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method, cache: "no-store", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-listener-token": token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new RequestError("The server cannot be reached. Check your connection; your ratings so far are saved.", 0);
  }
  /** @type {{error?: string, problems?: Object<string, string>}} */
  let data = {};
  try { data = await response.json(); } catch (error) { data = {}; }
  if (!response.ok) throw new RequestError(data.error || `The server answered ${response.status}; please reload the page.`, response.status, data.problems);
  return data;
}

/** @param {Page} page */
function key(page) {
  return page.trial ? `${page.phase}:${page.trial.phase}:${page.trial.position}` : page.phase;
}

/** @param {number} [rate] */
function audioContext(rate) {
  if (!context || (rate && context.sampleRate !== rate)) {
    if (context) context.close();
    context = new AudioContext(rate ? { sampleRate: rate } : undefined);
  }
  return context;
}

/** @param {string|null} text @param {string} [kind] */
function flash(text, kind = "warning") {
  const box = document.getElementById("flash");
  if (!box) return;
  box.replaceChildren();
  if (text) box.append(el("p", `message ${kind}`, text));
}

// -- one render per page ---------------------------------------------------------------------------

/** @param {Page} page */
function render(page) {
  if (view && view.dispose) view.dispose();
  view = null;
  current = page;
  document.title = page.title;
  app.replaceChildren();
  app.dataset.phase = page.phase;
  app.dataset.key = key(page);
  app.append(el("h1", "title", page.title), Object.assign(el("div"), { id: "flash" }));
  const body = el("section", `step step-${page.phase}`);
  app.append(body);
  /** @type {Object<string, (body: HTMLElement, page: Page) => void>} */
  const steps = { consent, qualification, instructions, level_check: level, environment: trial, training: trial,
    trials: trial, questionnaire, done, screened_out: done, expired: ended };
  (steps[page.phase] || ended)(body, page);
  Object.assign(window, { __mushra: view, __listen: view }); // inspected by the browser tests; holds opaque ids only
}

/** @param {Object} body @param {HTMLButtonElement} [button] */
async function step(body, button) {
  if (button) button.disabled = true;
  flash(null);
  try {
    render(await api("POST", "/api/listen/step", body));
    return true;
  } catch (error) {
    if (button) button.disabled = false;
    await recover(requestError(error));
    return false;
  }
}

// A refused step: say why; if the listener is elsewhere by now (another tab moved on), go there.
/** @param {RequestError} error */
async function recover(error) {
  if (error.status === 409 || error.status === 403) {
    try {
      const page = await api("GET", "/api/listen/page");
      if (!current || key(page) !== key(current)) render(page);
    } catch (ignored) { /* keep the page as it is */ }
  }
  flash(error.message, error.status >= 500 || error.status === 0 ? "error" : "warning");
  return error;
}

/** @param {string} kind @param {unknown} error */
function report(kind, error) {
  const message = error instanceof Error ? error.message : String(error);
  api("POST", "/api/listen/event", { kind, payload: { message: message.slice(0, 500) } }).catch(() => {});
}

/** @param {string} label @param {(node: HTMLButtonElement) => void} onClick @param {string} [className] */
function button(label, onClick, className = "primary") {
  const node = /** @type {HTMLButtonElement} */ (el("button", className, label));
  node.addEventListener("click", () => onClick(node));
  return node;
}

/** @param {string} [html] */
function rich(html) {
  const box = el("div", "text");
  box.innerHTML = html || ""; // made on the server from escaped text (evalkit.mushra.safetext); nothing in it loads
  return box;
}

// -- the steps -------------------------------------------------------------------------------------

/** @param {HTMLElement} body @param {Page} page */
function consent(body, page) {
  body.append(el("h2", null, "Before you start"), rich(page.html),
    button("I agree, continue", (b) => step({ action: "consent" }, b)));
}

/** @param {HTMLElement} body @param {Page} page */
function instructions(body, page) {
  const keys = el("p", "text");
  keys.append(el("strong", null, "On each page "), "play every sample to the end of what the page asks (switching between samples is seamless), then answer. ",
    el("strong", null, "Keys: "), "each page lists its own; Space plays and pauses, N goes to the next page.");
  body.append(el("h2", null, "How the test works"), rich(page.html), keys,
    button("Start", (b) => step({ action: "instructions" }, b)));
}

/** @param {HTMLElement} body @param {Page} page */
function level(body, page) {
  body.append(el("h2", null, "Set your listening level"),
    el("p", "text", "Put on your headphones, play the signal and set your volume to a comfortable level. Keep it there for the rest of the test."));
  view = new LevelView(body, audioContext(page.sample_rate), /** @type {{id: string, url: string}} */ (page.level), {
    confirm: (/** @type {Object} */ settings) => step({ action: "level", settings }),
    fail: (error) => report("error", error),
  });
}

/** @param {HTMLElement} body @param {Page} page */
function trial(body, page) {
  const t = /** @type {import("./trial.js").Trial} */ (page.trial);
  if (t.phase === "training") {
    body.append(el("h2", null, `Training ${t.position + 1} of ${t.count}`),
      el("p", "caption", "Get to know the samples and the scale. Answers on training pages are not kept."));
  } else if (t.phase === "environment") {
    body.append(el("h2", null, `Headphone check ${t.position + 1} of ${t.count}`),
      el("p", "caption", "Play the sound to its end, then answer."));
  } else {
    const bar = el("div", "progress");
    bar.append(Object.assign(el("progress"), { max: Math.max(page.total || 0, 1), value: page.done || 0 }), el("span", null, `Page ${t.position + 1} of ${t.count}`));
    body.append(bar);
  }
  const View = VIEWS[t.view];
  if (!View) {
    body.append(el("p", "message error", "This page cannot be shown in this browser; please tell the experimenter."));
    return;
  }
  view = new View(body, audioContext(t.sample_rate), t, {
    report: (stimulus, offset, loop) => playReport({ phase: t.phase, position: t.position, stimulus, offset, loop }),
    submit: (response, client) => afterReports().then(() => step({ action: "trial", phase: t.phase, position: t.position, response, client })),
    fail: (error) => report("error", error),
  });
}

// Play reports go out in order, one at a time, and Next waits for them: the server sees what happened when.
let reports = Promise.resolve();

/** @param {Object} body @returns {Promise<Object|null>} */
function playReport(body) {
  const sent = reports.then(() => api("POST", "/api/listen/play", body)).then((data) => data.heard, (error) => {
    if (error instanceof RequestError && error.status === 429) flash(error.message);
    return null;
  });
  reports = sent;
  return sent;
}

function afterReports() {
  return reports.catch(() => null);
}

/** @param {HTMLElement} body @param {Page} page */
function questionnaire(body, page) {
  body.append(el("h2", null, "A few questions"));
  body.append(questions(page, "questionnaire", "Finish"));
}

/** @param {HTMLElement} body @param {Page} page */
function qualification(body, page) {
  body.append(el("h2", null, "Before the test: a few questions"));
  body.append(questions(page, "qualification", "Continue"));
}

// A form of the page's questions; the server checks every answer and says what is wrong, per question.
/** @param {Page} page @param {string} action @param {string} label */
function questions(page, action, label) {
  const form = /** @type {HTMLFormElement} */ (el("form", "questions"));
  form.noValidate = true;
  /** @type {Object<string, () => string|number|null>} */
  const inputs = {};
  for (const question of page.questions || []) {
    const field = el("fieldset", "question");
    field.dataset.question = question.id;
    field.append(el("legend", null, question.text + (question.required ? "" : " (optional)")));
    inputs[question.id] = ask(field, question);
    field.append(el("p", "problem"));
    form.append(field);
  }
  const finish = /** @type {HTMLButtonElement} */ (el("button", "primary", label));
  finish.type = "submit";
  form.append(finish);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = Object.fromEntries(Object.entries(inputs).map(([id, read]) => [id, read()]));
    finish.disabled = true;
    flash(null);
    try {
      render(await api("POST", "/api/listen/step", { action, answers }));
    } catch (thrown) {
      const error = requestError(thrown);
      finish.disabled = false;
      for (const field of /** @type {NodeListOf<HTMLFieldSetElement>} */ (form.querySelectorAll(".question"))) {
        const problem = field.querySelector(".problem");
        if (problem) problem.textContent = (error.problems || {})[field.dataset.question || ""] || "";
      }
      if (!error.problems) await recover(error);
    }
  });
  return form;
}

/**
 * @param {HTMLElement} field @param {Question} question
 * @returns {() => string|number|null} reads the answer
 */
function ask(field, question) {
  if (question.type === "choice") {
    const name = `q-${question.id}`;
    for (const choice of question.choices) {
      const label = el("label", "choice");
      const input = Object.assign(el("input"), { type: "radio", name, value: choice });
      label.append(input, " ", choice);
      field.append(label);
    }
    return () => {
      const picked = /** @type {HTMLInputElement|null} */ (field.querySelector("input:checked"));
      return picked ? picked.value : null;
    };
  }
  const input = question.type === "number" ? numberInput(question)
    : Object.assign(/** @type {HTMLTextAreaElement} */ (el("textarea")), { rows: 3, maxLength: 5000 });
  input.setAttribute("aria-label", question.text);
  field.append(input);
  return () => (input.value.trim() === "" ? null : question.type === "number" ? Number(input.value) : input.value);
}

/** @param {Question} question */
function numberInput(question) {
  const input = Object.assign(/** @type {HTMLInputElement} */ (el("input")), { type: "number", step: "any", inputMode: "decimal" });
  if (question.min !== null) input.min = String(question.min);
  if (question.max !== null) input.max = String(question.max);
  return input;
}

/** @param {HTMLElement} body @param {Page} page */
function done(body, page) {
  const thanks = page.phase === "done" ? "Thank you! Your answers are saved." : "Thank you. This test ends here for you.";
  body.append(el("p", "message success", thanks));
  if (page.completion_code) body.append(el("p", null, "Your completion code:"), el("code", "completion", page.completion_code));
  const link = safeLink(page.redirect);
  if (link) {
    const back = Object.assign(el("a", "primary back", "Return to the study site"), { href: link, rel: "noreferrer" });
    body.append(el("p", null), back);
  }
  body.append(el("p", "caption", `Participant ${page.participant} · you can close this tab.`));
}

/** @param {HTMLElement} body @param {Page} page */
function ended(body, page) {
  body.append(page.html ? rich(page.html) : el("p", "message", "This listening test is not open for you now."));
}

// -- start -----------------------------------------------------------------------------------------

async function start() {
  if (!token) {
    app.replaceChildren(el("h1", "title", "Listening test"), el("p", "message", "Open the link you were given to take part (it ends in ?t=… or ?open=…)."));
    return;
  }
  try {
    render(await api("POST", "/api/listen/enter", {}));
  } catch (error) {
    app.replaceChildren(el("h1", "title", "Listening test"), el("p", "message error", requestError(error).message));
  }
}

start();
