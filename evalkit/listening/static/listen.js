// evalkit MUSHRA listener page: one page for every step, driven by the JSON API in evalkit.mushra.web.
//
// The link carries the listener's token (?t=...); every request sends it in a header. Each step is one
// request whose answer is the next page, so the server (and its database) always decides where the
// listener stands; reloading the tab asks again and lands in the same place.

import { LevelView, TrialView, el } from "./player.js";

const token = new URLSearchParams(location.search).get("t");
const app = document.getElementById("app");
let view = null;
let current = null; // the page on screen
let context = null; // one AudioContext for the page's lifetime (browsers limit how many there may be)

class RequestError extends Error {
  constructor(message, status, problems) {
    super(message);
    Object.assign(this, { status, problems });
  }
}

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
  let data = {};
  try { data = await response.json(); } catch (error) { data = {}; }
  if (!response.ok) throw new RequestError(data.error || `The server answered ${response.status}; please reload the page.`, response.status, data.problems);
  return data;
}

function key(page) {
  return page.trial ? `${page.phase}:${page.trial.phase}:${page.trial.position}` : page.phase;
}

function audioContext(rate) {
  if (!context || (rate && context.sampleRate !== rate)) {
    if (context) context.close();
    context = new AudioContext(rate ? { sampleRate: rate } : undefined);
  }
  return context;
}

function flash(text, kind = "warning") {
  const box = document.getElementById("flash");
  if (!box) return;
  box.replaceChildren();
  if (text) box.append(el("p", `message ${kind}`, text));
}

// -- one render per page ---------------------------------------------------------------------------

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
  ({ consent, instructions, level_check: level, training: trial, trials: trial, questionnaire, done })[page.phase](body, page);
  window.__mushra = view; // inspected by the browser test; holds opaque ids only
}

async function step(body, button) {
  if (button) button.disabled = true;
  flash(null);
  try {
    render(await api("POST", "/api/listen/step", body));
    return true;
  } catch (error) {
    if (button) button.disabled = false;
    await recover(error);
    return false;
  }
}

// A refused step: say why; if the listener is elsewhere by now (another tab moved on), go there.
async function recover(error) {
  if (error.status === 409 || error.status === 403) {
    try {
      const page = await api("GET", "/api/listen/page");
      if (key(page) !== key(current)) render(page);
    } catch (ignored) { /* keep the page as it is */ }
  }
  flash(error.message, error.status >= 500 || error.status === 0 ? "error" : "warning");
  return error;
}

function report(kind, error) {
  api("POST", "/api/listen/event", { kind, payload: { message: String(error && error.message ? error.message : error).slice(0, 500) } }).catch(() => {});
}

function button(label, onClick, className = "primary") {
  const node = el("button", className, label);
  node.addEventListener("click", () => onClick(node));
  return node;
}

function rich(html) {
  const box = el("div", "text");
  box.innerHTML = html; // made on the server from escaped text (evalkit.mushra.safetext); nothing in it loads
  return box;
}

// -- the steps -------------------------------------------------------------------------------------

function consent(body, page) {
  body.append(el("h2", null, "Before you start"), rich(page.html),
    button("I agree, continue", (b) => step({ action: "consent" }, b)));
}

function instructions(body, page) {
  const keys = el("p", "text");
  keys.append(el("strong", null, "On each page "), "press Reference and every numbered sample (all play in sync; switching is seamless), then move each sample's slider. A slider works while its sample is selected. Drag on the waveform to repeat a short part. ",
    el("strong", null, "Keys: "), "R reference · 1–9 samples · Space play/pause · ↑/↓ adjust the rating (Shift for steps of 10) · N next page.");
  body.append(el("h2", null, "How the test works"), rich(page.html), keys,
    button("Start", (b) => step({ action: "instructions" }, b)));
}

function level(body, page) {
  body.append(el("h2", null, "Set your listening level"),
    el("p", "text", "Put on your headphones, play the signal and set your volume to a comfortable level. Keep it there for the rest of the test."));
  view = new LevelView(body, audioContext(page.sample_rate), page.level, {
    confirm: (settings) => step({ action: "level", settings }),
    fail: (error) => report("error", error),
  });
}

function trial(body, page) {
  const t = page.trial;
  if (t.phase === "training") {
    body.append(el("h2", null, `Training ${t.position + 1} of ${t.count}`),
      el("p", "caption", "Get to know the samples and the scale. Ratings on training pages are not kept."));
  } else {
    const bar = el("div", "progress");
    bar.append(Object.assign(el("progress"), { max: Math.max(page.total, 1), value: page.done }), el("span", null, `Page ${t.position + 1} of ${t.count}`));
    body.append(bar);
  }
  view = new TrialView(body, audioContext(t.sample_rate), t, {
    report: (stimulus, offset, loop) => playReport({ phase: t.phase, position: t.position, stimulus, offset, loop }),
    submit: (ratings, client) => afterReports().then(() => step({ action: "trial", phase: t.phase, position: t.position, ratings, client })),
    fail: (error) => report("error", error),
  });
}

// Play reports go out in order, one at a time, and Next waits for them: the server sees what happened when.
let reports = Promise.resolve();

function playReport(body) {
  const sent = reports.then(() => api("POST", "/api/listen/play", body)).then((data) => data.heard, (error) => {
    if (error.status === 429) flash(error.message);
    return null;
  });
  reports = sent;
  return sent;
}

function afterReports() {
  return reports.catch(() => null);
}

function questionnaire(body, page) {
  body.append(el("h2", null, "A few questions"));
  const form = el("form", "questions");
  form.noValidate = true; // the server checks every answer and says what is wrong, per question
  const inputs = {};
  for (const question of page.questions) {
    const field = el("fieldset", "question");
    field.dataset.question = question.id;
    field.append(el("legend", null, question.text + (question.required ? "" : " (optional)")));
    inputs[question.id] = ask(field, question);
    field.append(el("p", "problem"));
    form.append(field);
  }
  const finish = el("button", "primary", "Finish");
  finish.type = "submit";
  form.append(finish);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = Object.fromEntries(Object.entries(inputs).map(([id, read]) => [id, read()]));
    finish.disabled = true;
    flash(null);
    try {
      render(await api("POST", "/api/listen/step", { action: "questionnaire", answers }));
    } catch (error) {
      finish.disabled = false;
      for (const field of form.querySelectorAll(".question")) {
        field.querySelector(".problem").textContent = (error.problems || {})[field.dataset.question] || "";
      }
      if (!error.problems) await recover(error);
    }
  });
  body.append(form);
}

function ask(field, question) {
  if (question.type === "choice") {
    const name = `q-${question.id}`;
    for (const choice of question.choices) {
      const label = el("label", "choice");
      const input = Object.assign(el("input"), { type: "radio", name, value: choice });
      label.append(input, " ", choice);
      field.append(label);
    }
    return () => { const picked = field.querySelector("input:checked"); return picked ? picked.value : null; };
  }
  const input = question.type === "number" ? Object.assign(el("input"), { type: "number", step: "any", inputMode: "decimal" })
    : Object.assign(el("textarea"), { rows: 3, maxLength: 5000 });
  if (question.type === "number") {
    if (question.min !== null) input.min = String(question.min);
    if (question.max !== null) input.max = String(question.max);
  }
  input.setAttribute("aria-label", question.text);
  field.append(input);
  return () => (input.value.trim() === "" ? null : question.type === "number" ? Number(input.value) : input.value);
}

function done(body, page) {
  body.append(el("p", "message success", "Thank you! Your ratings are saved."), el("p", null, "Your completion code:"),
    el("code", "completion", page.completion_code), el("p", "caption", `Participant ${page.participant} · you can close this tab.`));
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
    app.replaceChildren(el("h1", "title", "Listening test"), el("p", "message error", error.message));
  }
}

start();
