// "Awaiting me": what the signed-in user may decide now (GET /api/tasks), sorted by due time
// or age, filtered by definition, with a count that follows the live feed; several tasks
// picked and decided at once with one reason (POST /api/tasks/decisions).
import { api } from "./api.js";
import { $, ago, due, el } from "./dom.js";
import { fieldLabels, readFields, schemaFields } from "./forms.js";

const LATER_MS = 300; // entries of one burst on the feed cost one request

const keyOf = (task) => `${task.run_id}\x1f${task.slot}`;

function label(task) {
  return task.ref_type || task.ref_id ? `${task.ref_type ?? ""} ${task.ref_id ?? ""}`.trim() : task.run_id.slice(-12);
}

export class Inbox {
  // `definitions`: name → definition, as the page knows them; `open(runId)` shows a run;
  // `failed(err)` shows a problem.
  constructor({ definitions, stateName, open, failed }) {
    Object.assign(this, { definitions, stateName, open, failed });
    this.items = [];
    this.picked = new Map(); // key → task
    this.selected = null; // the run in the detail pane
    this.timer = null;
    this.loading = false;
    this.again = false;
    this.dataFor = null; // the event and definition whose data fields are shown
  }

  bind() {
    $("inbox-sort").addEventListener("change", () => this.load());
    $("inbox-definition").addEventListener("change", () => this.load());
    $("bulk-event").addEventListener("change", () => this.renderBulk());
    $("bulk").addEventListener("submit", (event) => { event.preventDefault(); this.decide(); });
  }

  // The feed brought an entry: ask again shortly, once for a whole burst.
  soon() {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => { this.timer = null; this.load(); }, LATER_MS);
  }

  query() {
    const params = new URLSearchParams({ sort: $("inbox-sort").value, limit: "200" });
    const definition = $("inbox-definition").value;
    if (definition) params.set("definition", definition);
    return params.toString();
  }

  async load() {
    if (this.loading) { this.again = true; return; }
    this.loading = true;
    try {
      const query = this.query();
      const page = await api(`/api/tasks?${query}`);
      // The badge counts everything awaiting, whatever the list is filtered by.
      const all = query.includes("definition=") ? (await api("/api/tasks?limit=1")).counts : page.counts;
      if (query === this.query()) {
        this.items = page.items;
        this.counts = all;
        this.shown = page.counts;
        this.render();
      }
    } catch (err) {
      this.failed(err);
    } finally {
      this.loading = false;
      if (this.again) { this.again = false; this.load(); }
    }
  }

  render() {
    const { total, overdue, by_definition: byDefinition } = this.counts;
    // Past the server's count limit the figures are lower bounds: "1000+".
    const more = this.counts.exact === false ? "+" : "";
    const late = overdue === total ? more : "";
    const count = $("inbox-count");
    count.textContent = `${total}${more}`;
    count.dataset.count = String(total);
    count.dataset.exact = String(!more);
    count.dataset.overdue = String(overdue);
    count.title = `${total}${more} awaiting you, ${overdue}${late} overdue`;
    const shown = this.shown.exact === false ? `${this.shown.total}+` : String(this.shown.total);
    $("inbox-summary").textContent = total
      ? `${total}${more} awaiting you${overdue ? `, ${overdue}${late} overdue` : ""}`
        + (this.shown.total !== total ? ` (${shown} shown)` : "")
      : "";
    const choice = $("inbox-definition");
    const chosen = choice.value;
    const names = [...this.definitions.keys()];
    choice.replaceChildren(el("option", { value: "" }, "all"),
      ...names.map((name) => el("option", { value: name }, byDefinition[name] ? `${name} (${byDefinition[name]}${more})` : name)));
    choice.value = chosen;
    const listed = new Map(this.items.map((task) => [keyOf(task), task]));
    for (const key of [...this.picked.keys()]) if (!listed.has(key)) this.picked.delete(key);
    $("inbox-list").replaceChildren(...this.items.map((task) => this.item(task)));
    $("inbox-empty").hidden = this.items.length > 0;
    this.renderBulk();
  }

  item(task) {
    const key = keyOf(task);
    const pick = el("input", { type: "checkbox", className: "pick", checked: this.picked.has(key),
      dataset: { runId: task.run_id, slot: task.slot }, "aria-label": `Select ${label(task)}` });
    pick.addEventListener("change", () => {
      if (pick.checked) this.picked.set(key, task); else this.picked.delete(key);
      this.renderBulk();
    });
    const state = el("span", { className: "badge", dataset: { state: task.state } }, this.stateName(task.definition, task.state));
    const facts = [task.definition];
    if (task.slot !== task.state) facts.push(task.slot);
    if (task.assignee) facts.push(`claimed by ${task.assignee}`);
    facts.push(task.due_at ? due(task.due_at) : `waiting ${ago(task.opened_at).replace(/ ago$/, "")}`);
    const open = el("button", { type: "button", className: "open", dataset: { runId: task.run_id } },
      el("span", { className: "ref" }, label(task)), state,
      el("span", { className: "when" }, facts.join(" · ")),
      task.overdue ? el("span", { className: "badge overdue" }, "overdue") : "");
    open.setAttribute("aria-current", String(task.run_id === this.selected));
    open.addEventListener("click", () => this.open(task.run_id));
    return el("li", { dataset: { runId: task.run_id, slot: task.slot, overdue: String(task.overdue) } }, pick, open);
  }

  // The run shown in the detail pane is marked in the list.
  mark(runId) {
    this.selected = runId;
    for (const button of $("inbox-list").querySelectorAll("button.open")) {
      button.setAttribute("aria-current", String(button.dataset.runId === runId));
    }
  }

  // The decisions the picked tasks' definitions take (all listed ones' if none is picked).
  decisions() {
    const tasks = this.picked.size ? [...this.picked.values()] : this.items;
    const events = new Set();
    for (const name of new Set(tasks.map((task) => task.definition))) {
      for (const event of this.definitions.get(name)?.events || []) {
        if (event.role === "approver" && !event.internal) events.add(event.name);
      }
    }
    return [...events];
  }

  // The schema of the chosen decision's data, from the first picked definition declaring one.
  schema(event) {
    for (const task of this.picked.values()) {
      const schema = this.definitions.get(task.definition)?.event_data?.[event];
      if (schema) return [task.definition, schema];
    }
    return [null, null];
  }

  renderBulk() {
    const select = $("bulk-event");
    const chosen = select.value;
    const events = this.decisions();
    select.replaceChildren(...events.map((event) => el("option", { value: event }, event)));
    if (events.includes(chosen)) select.value = chosen;
    const [definition, schema] = this.schema(select.value);
    const dataFor = `${select.value}@${definition}`;
    if (dataFor !== this.dataFor) {
      this.dataFor = dataFor;
      $("bulk-data").replaceChildren(...fieldLabels(schemaFields(schema), { hints: true }));
    }
    const n = this.picked.size;
    $("bulk-selected").textContent = String(n);
    $("bulk-apply").disabled = n === 0 || !events.length;
    $("bulk").hidden = !this.items.length && !$("bulk-results").children.length;
  }

  async decide() {
    const tasks = [...this.picked.values()];
    if (!tasks.length) return;
    const body = {
      event: $("bulk-event").value,
      runs: tasks.map((task) => {
        const regions = this.definitions.get(task.definition)?.regions || [];
        return regions.some((r) => r.name === task.slot) ? { run_id: task.run_id, region: task.slot } : { run_id: task.run_id };
      }),
    };
    const reason = $("bulk-reason").value.trim();
    if (reason) body.reason = reason;
    const data = readFields($("bulk-data"));
    if (Object.keys(data).length) body.data = data;
    const names = new Map(tasks.map((task) => [task.run_id, label(task)]));
    $("bulk-apply").disabled = true;
    $("bulk-problem").hidden = true;
    try {
      const outcome = await api("/api/tasks/decisions", { method: "POST", body });
      $("bulk-summary").textContent = `${body.event}: ${outcome.decided} decided, ${outcome.refused} refused`;
      $("bulk-results").replaceChildren(...outcome.results.map((result) => el("li",
        { dataset: { runId: result.run_id, status: String(result.status) } },
        el("strong", {}, names.get(result.run_id) || result.run_id), " · ",
        result.status === 200 ? `decided (version ${result.version})`
          : `refused: ${result.problem?.detail || result.problem?.title || result.status}`)));
      // Refused ones stay picked, to try again; decided ones leave the list.
      const decided = new Set(outcome.results.filter((r) => r.status === 200).map((r) => r.run_id));
      for (const task of tasks) if (decided.has(task.run_id)) this.picked.delete(keyOf(task));
      $("bulk-reason").value = "";
      this.dataFor = null;
      await this.load();
    } catch (err) {
      $("bulk-problem").textContent = err.message;
      $("bulk-problem").hidden = false;
      this.renderBulk();
    }
  }
}
