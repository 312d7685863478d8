// Signoff live monitor: lists runs, drives them, and follows the global SSE feed.
// Everything shown comes from the API and is written with textContent, never as HTML.
import { Problem, TOKEN_KEY, api, onSignedOut, runPath } from "./api.js";
import { $, ago, duration, el } from "./dom.js";
import { emptyText, lifecycleChoices, matches, readFilters, stateChoices } from "./filters.js";
import { clearEventForms, eventData, formProblem, renderEventForms } from "./decision.js";
import { fieldLabels, readFields, schemaFields } from "./forms.js";
import { Inbox } from "./inbox.js";
import { askVerdicts, forgetVerdicts, judge, verdict, verdicts } from "./permissions.js";
import { bindReplay, learnReplays, noteReplay, renderReplay } from "./replay.js";
import { StatsView } from "./stats.js";
import { renderTasks } from "./tasks.js";

const state = {
  runs: new Map(),        // id -> run view (the newest version seen)
  order: [],              // ids in the list under the current filters, newest first
  cursor: null,           // next page of the run list
  listed: false,          // the first page for the current filters has arrived
  selected: null,         // id of the run in the detail pane
  history: [],            // history entries of the selected run
  jobs: [],               // jobs of the selected run, with their attempts
  definitions: new Map(), // name -> definition (states, events)
  lastSeq: null,          // last feed entry seen: where a reconnect resumes
  source: null,
  me: null,               // {actor, roles, groups, open} from /api/me
  view: "runs",           // "inbox" (Awaiting me) or "runs"
};

const stats = new StatsView({ definitions: state.definitions, failed: showError });

const inbox = new Inbox({
  definitions: state.definitions,
  stateName: (definition, id) => state.definitions.get(definition)?.states.find((s) => s.id === id)?.name ?? id,
  open: (id) => select(id, { reveal: true }),
  failed: showError,
});

const LABELS = {
  process: "Process", approve: "Approve", reject: "Reject", retry: "Retry",
  pause: "Pause", resume: "Resume", cancel: "Cancel",
};
const WITH_REASON = new Set(["approve", "reject", "retry", "process"]);
// One column (the CSS breakpoint): the detail is below the list, out of sight after a tap.
const NARROW = window.matchMedia("(max-width: 800px)");

// --- who may do what ------------------------------------------------------------------------

function may(role) {
  const roles = state.me?.roles || [];
  return roles.includes("admin") || roles.includes(role) || role === "viewer";
}

// The approver groups a user decides for; null: every group (admin, or an open server).
function decidesIn() {
  if (state.me?.open || (state.me?.roles || []).includes("admin")) return null;
  return state.me?.groups || [];
}

// Approval regions of a run (parallel states reviewed separately): each with whether it is
// still open and the approvals it counted this round, read off the configuration and context.
function regionsOf(run) {
  const definition = state.definitions.get(run.definition);
  if (!definition?.regions?.length || !run.configuration.includes(definition.regions[0].name)) return [];
  const ctx = run.context || {};
  return definition.regions.map((region) => {
    const finals = definition.states.filter((s) => s.parent === region.name && s.final).map((s) => s.id);
    const approvedBy = (ctx.decisions || [])
      .filter((d) => d.round === ctx.round && d.region === region.name && d.decision === "approve")
      .map((d) => d.actor);
    return {
      ...region,
      open: !finals.some((id) => run.configuration.includes(id)),
      approvedBy,
      needed: ctx.needed?.[region.name] ?? 1,
    };
  });
}

// The role an event needs, as the server's definition says (a decision needs an approver);
// control events and anything the definition does not list need an operator.
function roleOf(run, event) {
  const definition = state.definitions.get(run.definition);
  return definition?.events.find((e) => e.name === event)?.role || "operator";
}

// The groups that decide in the run's current wait states, as its definition declares.
function decidingGroups(run) {
  const definition = state.definitions.get(run.definition);
  return (definition?.states || [])
    .filter((s) => s.decided_by && run.configuration.includes(s.id))
    .map((s) => s.decided_by);
}

// One button per event, or per event and open region the user may decide in: what the
// server's definition says this user's roles and groups may send now.
function actionsFor(run) {
  const permitted = run.allowed_events.filter((event) => may(roleOf(run, event)));
  const regions = regionsOf(run);
  const groups = decidesIn();
  const deciding = decidingGroups(run);
  const inGroup = groups === null || !deciding.length || deciding.some((g) => groups.includes(g));
  // One person approves once per round, in whichever region: no button that would be refused.
  const approved = regions.some((region) => region.approvedBy.includes(state.me?.actor));
  const actions = [];
  for (const event of permitted) {
    const decision = roleOf(run, event) === "approver";
    if (regions.length && decision) {
      if (event === "approve" && approved) continue;
      for (const region of regions) {
        if (region.open && (groups === null || groups.includes(region.group))) {
          actions.push({ event, region: region.name, label: `${LABELS[event] || event} ${region.name}` });
        }
      }
    } else if (!decision || inGroup) {
      actions.push({ event, label: LABELS[event] || event });
    }
  }
  return actions;
}

// A reason goes with decisions and with the events that restart work.
function takesReason(run, event) {
  return WITH_REASON.has(event) || roleOf(run, event) === "approver";
}

function renderRegions(run) {
  const regions = regionsOf(run);
  $("review").hidden = !regions.length;
  $("regions").replaceChildren(...regions.map((region) => {
    const status = region.open ? "open" : "approved";
    const who = region.approvedBy.length ? ` (${region.approvedBy.join(", ")})` : "";
    const text = region.open ? `${region.approvedBy.length} of ${region.needed} approvals${who}` : `approved${who}`;
    return el("li", { dataset: { region: region.name, status } }, el("strong", {}, region.name), ` · ${text}`);
  }));
}

function showLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  forgetVerdicts(); // they were this user's
  if (state.source) state.source.close();
  state.source = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("stats-open").hidden = true;
  $("whoami").textContent = "";
  setConnection("connecting", "signed out");
}

function showError(err) {
  $("error-title").textContent = err.title || "Error";
  $("error-detail").textContent = err.message || String(err);
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

// --- rendering -------------------------------------------------------------------------------

function stateName(run, id) {
  const definition = state.definitions.get(run.definition);
  const found = definition?.states.find((s) => s.id === id);
  return found ? found.name : id;
}

function badge(node, id, label) {
  node.textContent = label;
  node.dataset.state = id;
}

function renderList() {
  const where = readFilters($("filters"));
  const runs = state.order.map((id) => state.runs.get(id)).filter((run) => matches(run, where));
  const items = runs.map((run) => {
    const stateBadge = el("span", { className: "badge" });
    badge(stateBadge, run.state, stateName(run, run.state));
    const lifeBadge = el("span", { className: "badge" });
    badge(lifeBadge, run.lifecycle, run.lifecycle);
    const ref = run.ref_type || run.ref_id ? `${run.ref_type ?? ""} ${run.ref_id ?? ""}` : run.definition;
    const button = el("button", { type: "button", dataset: { runId: run.id } },
      el("span", { className: "id" }, run.id.slice(-12)), stateBadge,
      el("span", { className: "when" }, `${ref} · ${ago(run.updated_at)}`), lifeBadge);
    button.setAttribute("aria-current", String(run.id === state.selected));
    button.addEventListener("click", () => select(run.id, { reveal: true }));
    return el("li", {}, button);
  });
  $("run-list").replaceChildren(...items);
  $("more").hidden = !state.cursor;
  $("empty").hidden = !state.listed || runs.length > 0;
  $("empty-text").textContent = emptyText(where, may("operator"));
  $("clear-filters").hidden = !Object.keys(where).length;
}

function renderDetail() {
  const run = state.runs.get(state.selected);
  $("detail").hidden = !run;
  if (!run) return;
  $("run-title").textContent = `${run.definition} v${run.definition_version} · ${run.id}`;
  $("run-ref").textContent = run.ref_type || run.ref_id ? `${run.ref_type ?? ""} ${run.ref_id ?? ""}` : "";
  badge($("business-state"), run.state, stateName(run, run.state));
  badge($("lifecycle-state"), run.lifecycle, run.lifecycle);
  $("run-version").textContent = String(run.version);
  const ctx = run.context || {};
  $("ctx-output").textContent = ctx.output ?? "–";
  $("ctx-attempts").textContent = ctx.attempts ?? "–";
  $("ctx-error").textContent = ctx.last_error ?? "–";
  $("run-input").textContent = JSON.stringify(run.input, null, 1);
  renderRegions(run);
  const actions = actionsFor(run);
  const buttons = actions.map(({ event, region, label }) => {
    const dataset = region ? { event, region } : { event };
    const button = el("button", { type: "button", dataset }, label);
    button.addEventListener("click", () => act(run, event, button, region));
    return button;
  });
  $("actions").replaceChildren(...buttons);
  $("reason").hidden = !actions.some(({ event }) => takesReason(run, event));
  $("not-loaded").hidden = run.definition_loaded !== false;
  renderEventForms(run, state.definitions.get(run.definition), actions.map(({ event }) => event), LABELS);
  const tasks = renderTasks(run, {
    me: state.me,
    stateName: (id) => stateName(run, id),
    done: (updated) => { clearError(); if (remember(updated) && updated.id === state.selected) renderDetail(); renderList(); },
    failed: showError,
  });
  $("tasks").replaceChildren(...tasks);
  $("tasks-card").hidden = !tasks.length;
  renderReplay(run, { canReplay: may("operator") && run.definition_loaded !== false, open: (id) => select(id) });
  judgeButtons(run);
  renderTimeline();
  renderJobs();
}

// Each button as the server judges it for this user now: disabled, with the reasons as its
// tooltip, if the event would be refused. Asked again whenever the run changes version.
function judgeButtons(run) {
  if (run.definition_loaded === false) return; // nothing to ask: it takes no events here
  const events = verdicts(run);
  if (!events) {
    if (!$("detail").querySelector("#actions button, #tasks button")) return;
    askVerdicts(run).then(() => {
      const now = state.runs.get(state.selected);
      if (now?.id === run.id && now.version === run.version) judgeButtons(now);
    }, () => {}); // the buttons stay as they are; pressing one gets the server's answer
    return;
  }
  for (const button of $("actions").querySelectorAll("button")) {
    judge(button, verdict(events, button.dataset.event, { region: button.dataset.region ?? null }));
  }
  for (const button of $("tasks").querySelectorAll('button[data-action="claim"], button[data-action="release"]')) {
    judge(button, verdict(events, `task.${button.dataset.action}`, { slot: button.dataset.slot }));
  }
}

function renderJobs() {
  const items = state.jobs.map((job) => {
    const tries = job.attempt_log.map((a) => {
      const spent = a.ended_at ? ` in ${duration((Date.parse(a.ended_at) - Date.parse(a.started_at)) / 1000)}` : "";
      return el("li", { dataset: { result: a.result } }, `#${a.number} ${a.result}${spent}`,
        a.error ? el("span", { className: "muted" }, ` · ${a.error}`) : "");
    });
    return el("li", { dataset: { job: job.id, status: job.status } },
      el("strong", {}, job.kind), ` in ${job.state} · ${job.status} · ${job.attempts} of ${job.max_attempts} attempts`,
      el("ol", { className: "attempts" }, ...tries));
  });
  $("jobs").replaceChildren(...items);
  $("jobs-card").hidden = !items.length;
}

async function loadJobs(id) {
  try {
    const page = await api(`/api/runs/${encodeURIComponent(id)}/jobs`);
    if (id !== state.selected) return;
    state.jobs = page.items;
    renderJobs();
  } catch (err) {
    showError(err);
  }
}

function renderTimeline() {
  const run = state.runs.get(state.selected);
  const entries = state.history;
  const items = entries.map((entry, i) => {
    const next = entries[i + 1];
    const until = next ? Date.parse(next.at) : run?.lifecycle === "completed" || run?.lifecycle === "cancelled" ? Date.parse(entry.at) : Date.now();
    const spent = (until - Date.parse(entry.at)) / 1000;
    const to = entry.business.to.join(", ");
    const life = entry.lifecycle.to.filter((s) => s !== "active").join(", ");
    const li = el("li", { dataset: { seq: entry.seq } },
      el("span", { className: "event" }, entry.event),
      entry.data?.region ? ` (${entry.data.region})` : "", ` by ${entry.actor} → ${to} (${life})`,
      el("span", { className: "spent" }, next || !["completed", "cancelled"].includes(run?.lifecycle) ? ` · ${duration(spent)} there` : ""));
    if (entry.reason) li.append(el("div", { className: "muted" }, `“${entry.reason}”`));
    li.append(el("div", { className: "muted" }, new Date(entry.at).toLocaleString()));
    return li;
  });
  $("timeline").replaceChildren(...items);
}

let diagramVersion = null;
async function renderDiagram() {
  const run = state.runs.get(state.selected);
  if (!run || diagramVersion === `${run.id}@${run.version}`) return;
  diagramVersion = `${run.id}@${run.version}`;
  if (run.definition_loaded === false) { // this server has no chart to draw for it
    $("diagram").replaceChildren();
    return;
  }
  try {
    const svg = await api(`/api/runs/${encodeURIComponent(run.id)}/diagram?format=svg`, { headers: { Accept: "image/svg+xml" } });
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const root = doc.documentElement;
    if (root.nodeName !== "svg") throw new Problem({ title: "Diagram", detail: "not an SVG" }, 0);
    root.querySelectorAll("script").forEach((node) => node.remove());
    $("diagram").replaceChildren(document.importNode(root, true));
    $("diagram").dataset.version = String(run.version);
  } catch (err) {
    diagramVersion = null;
    showError(err);
  }
}

// --- state changes ---------------------------------------------------------------------------

function list(id) {
  if (state.order.includes(id)) return;
  state.order.push(id);
  state.order.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)); // ids are time-ordered
}

// A run the page learnt of (from the feed, an action, a click): newest version wins, and it
// joins the list only if the filters let it; one that stops matching is hidden by renderList.
function remember(run) {
  const known = state.runs.get(run.id);
  if (known && known.version > run.version) return false;
  state.runs.set(run.id, run);
  if (matches(run, readFilters($("filters")))) list(run.id);
  return true;
}

async function loadRuns(more = false) {
  const where = readFilters($("filters"));
  const params = new URLSearchParams({ limit: "50", ...where });
  if (more && state.cursor) params.set("cursor", state.cursor);
  const page = await api(`/api/runs?${params}`);
  // The filters changed while this page was on its way: a newer request fills the list.
  if (JSON.stringify(where) !== JSON.stringify(readFilters($("filters")))) return;
  for (const run of page.items) {
    const known = state.runs.get(run.id);
    if (!known || known.version <= run.version) state.runs.set(run.id, run);
    list(run.id);
  }
  state.cursor = page.next_cursor;
  state.listed = true;
  renderList();
}

// The list starts over under new filters; runs the feed brings meanwhile are kept if they match.
function refilter() {
  state.order = [];
  state.cursor = null;
  state.listed = false;
  renderList();
  loadRuns().catch(showError);
}

function clearFilters() {
  $("filters").reset();
  renderStateChoices();
  refilter();
  $("search").focus();
}

async function select(id, { reveal = false } = {}) {
  clearError();
  state.selected = id;
  inbox.mark(id);
  try {
    const [run, history] = await Promise.all([
      api(`/api/runs/${encodeURIComponent(id)}`),
      api(`/api/runs/${encodeURIComponent(id)}/history`),
    ]);
    remember(run);
    learnReplays(run);
    state.history = history.items;
    state.jobs = [];
  } catch (err) {
    showError(err);
  }
  renderList();
  renderDetail();
  loadJobs(id);
  if (reveal && NARROW.matches) $("detail").scrollIntoView({ block: "start" });
  renderDiagram();
}

async function act(run, event, button, region) {
  clearError();
  let form = null;
  let data;
  try {
    [form, data] = eventData(event);
  } catch (err) {
    formProblem(err.form, err.message);
    return;
  }
  button.disabled = true;
  const reason = $("reason").value.trim();
  // Every event goes to /events, the one route that takes any event of any definition.
  const body = { event };
  if (reason && takesReason(run, event)) body.reason = reason;
  if (region) data.region = region;
  if (Object.keys(data).length) body.data = data;
  try {
    // If-Match: act only on the version on screen; a stale page gets 412, not a wrong decision.
    const updated = await api(runPath(run.id, "/events"), {
      method: "POST", body, headers: { "If-Match": `"${run.version}"` },
    });
    if (form) clearEventForms();
    if (remember(updated) && updated.id === state.selected) renderDetail();
    $("reason").value = "";
    renderList();
    renderDiagram();
  } catch (err) {
    // The server's word on the data (which field, why) goes next to the form it is about.
    if (form && (err.status === 400 || err.status === 422)) formProblem(form, err.message);
    else showError(err);
  } finally {
    button.disabled = false;
  }
}

async function create(event) {
  event.preventDefault();
  clearError();
  let input;
  try {
    input = JSON.parse($("create-input").value || "{}");
  } catch (err) {
    showError(new Problem({ title: "Input is not JSON", detail: String(err.message) }, 0));
    return;
  }
  readFields($("create-fields"), input);
  const body = { definition: $("create-definition").value, input };
  const refType = $("create-ref-type").value.trim();
  const refId = $("create-ref-id").value.trim();
  if (refType) body.ref_type = refType;
  if (refId) body.ref_id = refId;
  try {
    const run = await api("/api/runs", { method: "POST", body });
    remember(run);
    renderList();
    select(run.id, { reveal: true });
  } catch (err) {
    showError(err);
  }
}

function onTransition(message) {
  const entry = JSON.parse(message.data);
  state.lastSeq = entry.seq;
  stats.changed(entry);
  const fresh = remember(entry.run);
  if (entry.event === "create" && noteReplay(entry.run) && entry.run.replay_of === state.selected) renderDetail();
  if (entry.run_id === state.selected) {
    if (!state.history.some((known) => known.seq === entry.seq)) {
      state.history.push(entry);
      state.history.sort((a, b) => a.seq - b.seq);
    }
    renderDetail();
    renderDiagram();
    loadJobs(entry.run_id);
  }
  if (fresh) renderList();
  if (hasInbox()) inbox.soon(); // any transition may give the user a task or take one away
}

function setConnection(kind, text) {
  const node = $("connection");
  node.dataset.state = kind;
  node.textContent = text;
}

async function connect() {
  if ($("app").hidden) return; // signed out: start() connects again after signing in
  // EventSource resends Last-Event-ID itself when it reconnects; after a hard failure we
  // open a new one that resumes from the last seq we saw. It cannot send an Authorization
  // header, so a protected server gets a short-lived signed token in the URL instead.
  const params = new URLSearchParams();
  if (state.lastSeq !== null) params.set("last_event_id", String(state.lastSeq));
  if (!state.me.open) {
    try {
      params.set("token", (await api("/api/stream-tokens", { method: "POST" })).token);
    } catch (err) {
      setConnection("reconnecting", "reconnecting…");
      setTimeout(() => { if (!state.source) connect(); }, 2000);
      return;
    }
  }
  const source = new EventSource(`/api/stream?${params}`);
  state.source = source;
  source.addEventListener("open", () => {
    setConnection("live", "live");
    if (hasInbox()) inbox.soon(); // what changed while the page was away
  });
  source.addEventListener("transition", onTransition);
  source.addEventListener("error", () => {
    setConnection("reconnecting", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => { if (state.source === source) { state.source = null; connect(); } }, 2000);
    }
  });
}

function options(select, choices) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "all"),
    ...choices.map(([value, text]) => el("option", { value }, text)));
  select.value = choices.some(([value]) => value === chosen) ? chosen : "";
}

// The state filter offers only states a listed run can be in: the chosen definition's.
function renderStateChoices() {
  const chosen = state.definitions.get($("definition-filter").value);
  options($("state-filter"), stateChoices(chosen ? [chosen] : state.definitions.values()));
}

// The fields of a definition's input, from its JSON Schema; none when it has no schema (the
// JSON box takes the input).
function renderCreateFields() {
  const definition = state.definitions.get($("create-definition").value);
  const fields = schemaFields(definition?.input_schema);
  $("create-fields").replaceChildren(...fieldLabels(fields));
  // The JSON box takes what the fields do not (a field's value wins over the same key there).
  $("create-input-label").firstChild.textContent = fields.length ? "Other input (JSON) " : "Input (JSON) ";
}

async function loadDefinitions() {
  const data = await api("/api/definitions");
  for (const definition of data.items) state.definitions.set(definition.name, definition);
  const names = data.items.map((definition) => [definition.name, definition.name]);
  $("create-definition").replaceChildren(...names.map(([value]) => el("option", { value }, value)));
  renderCreateFields();
  options($("definition-filter"), names);
  options($("lifecycle-filter"), lifecycleChoices(data.lifecycle));
  renderStateChoices();
}

function toggleZoom() {
  const full = $("diagram").dataset.zoom !== "full";
  $("diagram").dataset.zoom = full ? "full" : "fit";
  $("diagram-zoom").setAttribute("aria-pressed", String(full));
  $("diagram-zoom").textContent = full ? "Fit" : "Enlarge";
}

// A signed-in approver (or admin) has an inbox and opens on it; an open server has no "me".
function hasInbox() {
  const roles = state.me?.roles || [];
  return !state.me?.open && (roles.includes("approver") || roles.includes("admin"));
}

function show(view) {
  state.view = view;
  $("inbox").hidden = view !== "inbox";
  $("runs-card").hidden = view !== "runs";
  $("create-form").hidden = view !== "runs" || !may("operator");
  $("tab-inbox").setAttribute("aria-selected", String(view === "inbox"));
  $("tab-runs").setAttribute("aria-selected", String(view === "runs"));
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  await start();
}

async function start() {
  try {
    state.me = await api("/api/me");
  } catch (err) {
    if (err.status === 401) {
      showLogin();
      if (sessionStorage.getItem(TOKEN_KEY) === null && $("login").dataset.tried) showError(err);
      $("login").dataset.tried = "1";
      return;
    }
    showError(err);
    return;
  }
  clearError();
  $("login").hidden = true;
  $("app").hidden = false;
  const groups = state.me.groups?.length ? ` @ ${state.me.groups.join(", ")}` : "";
  $("whoami").textContent = state.me.open ? "open server" : `${state.me.actor} · ${state.me.roles.join(", ")}${groups}`;
  $("logout").hidden = state.me.open;
  $("views").hidden = !hasInbox();
  show(hasInbox() ? "inbox" : "runs");
  connect(); // first, so nothing that changes while the list loads is missed
  try {
    await loadDefinitions();
    stats.ready();
    if (hasInbox()) await inbox.load();
    await loadRuns();
  } catch (err) {
    showError(err);
  }
}

async function main() {
  onSignedOut(showLogin);
  $("error-close").addEventListener("click", clearError);
  $("login").addEventListener("submit", signIn);
  $("logout").addEventListener("click", showLogin);
  $("create-form").addEventListener("submit", create);
  $("create-definition").addEventListener("change", renderCreateFields);
  const filters = $("filters");
  let typing = null;
  filters.addEventListener("submit", (event) => { event.preventDefault(); clearTimeout(typing); refilter(); });
  // Typing asks the API once the user pauses, not once per key.
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(refilter, 250); });
  $("definition-filter").addEventListener("change", () => { renderStateChoices(); refilter(); });
  $("state-filter").addEventListener("change", refilter);
  $("lifecycle-filter").addEventListener("change", refilter);
  $("clear-filters").addEventListener("click", clearFilters);
  $("diagram-zoom").addEventListener("click", toggleZoom);
  $("more").addEventListener("click", () => loadRuns(true).catch(showError));
  $("tab-inbox").addEventListener("click", () => show("inbox"));
  $("tab-runs").addEventListener("click", () => show("runs"));
  inbox.bind();
  stats.bind();
  bindReplay({
    current: () => state.runs.get(state.selected),
    started: (run) => { remember(run); renderList(); select(run.id, { reveal: true }); },
    failed: showError,
  });
  await start();
  setInterval(() => { renderList(); if (state.selected) renderTimeline(); }, 15000);
}

document.addEventListener("DOMContentLoaded", main);
