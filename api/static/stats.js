// The stats view: a definition's time in state, SLA breaches, decisions per approver and
// finished runs per day (GET /api/definitions/{name}/stats), kept fresh by the live feed.
import { api } from "./api.js";
import { $, duration, el } from "./dom.js";
import { seriesOf, stayChart, throughputChart } from "./stats-charts.js";

const REFRESH_MS = 2000; // at most one reload per this while transitions stream in

const seconds = (value) => (value === null ? "–" : duration(value));

export class StatsView {
  constructor({ definitions, failed }) {
    this.definitions = definitions; // name -> definition, as the monitor loaded them
    this.failed = failed;
    this.open = false;
    this.timer = null;
  }

  bind() {
    $("stats-open").addEventListener("click", () => this.toggle());
    $("stats-definition").addEventListener("change", () => this.load());
    $("stats-since").addEventListener("change", () => this.load());
    $("stats-until").addEventListener("change", () => this.load());
  }

  // Signed in, with the definitions loaded: the view can be opened.
  ready() {
    const select = $("stats-definition");
    const chosen = select.value;
    select.replaceChildren(...[...this.definitions.keys()].map((name) => el("option", { value: name }, name)));
    if (chosen && this.definitions.has(chosen)) select.value = chosen;
    $("stats-open").hidden = false;
    if (this.open) this.load();
  }

  close() {
    this.open = false;
    $("app").dataset.view = "monitor";
    $("stats-view").hidden = true;
    $("stats-open").setAttribute("aria-pressed", "false");
    $("stats-open").textContent = "Stats";
  }

  toggle() {
    if (this.open) return this.close();
    this.open = true;
    $("app").dataset.view = "stats";
    $("stats-view").hidden = false;
    $("stats-open").setAttribute("aria-pressed", "true");
    $("stats-open").textContent = "Back to runs";
    return this.load();
  }

  // A transition committed somewhere: the numbers moved, so reload (not more than every 2 s).
  changed(entry) {
    if (!this.open || entry.run.definition !== $("stats-definition").value || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.load(); }, REFRESH_MS);
  }

  async load() {
    const name = $("stats-definition").value;
    if (!name) return;
    const params = new URLSearchParams();
    if ($("stats-since").value) params.set("since", $("stats-since").value);
    if ($("stats-until").value) params.set("until", $("stats-until").value);
    let stats;
    try {
      stats = await api(`/api/definitions/${encodeURIComponent(name)}/stats?${params}`);
    } catch (err) {
      this.failed(err);
      return;
    }
    if (name !== $("stats-definition").value) return; // another definition was chosen meanwhile
    this.render(stats);
  }

  render(stats) {
    $("stats-since").value = stats.since;
    $("stats-until").value = stats.until;
    $("stats-view").dataset.definition = stats.definition;
    this.renderSummary(stats);
    const stays = stayChart(stats.states);
    $("stay-chart").replaceChildren(stays ?? el("p", { className: "empty" }, "No stay ended in this period."));
    $("throughput-chart").replaceChildren(throughputChart(stats.days));
    $("throughput-legend").replaceChildren(...seriesOf(stats.days).map((name) =>
      el("span", { className: `swatch ${name}` }, name)));
    this.renderStates(stats.states);
    this.renderApprovers(stats.approvers);
  }

  renderSummary(stats) {
    const finished = Object.values(stats.finished).reduce((a, b) => a + b, 0);
    const breaches = stats.states.reduce((a, s) => a + s.breaches, 0);
    const now = stats.states.reduce((a, s) => a + s.now, 0);
    const figure = (id, value, text, extra = "") =>
      el("div", { className: `figure ${extra}`, id }, el("strong", {}, String(value)), el("span", {}, text));
    $("stats-summary").replaceChildren(
      figure("stats-finished", finished, "finished"),
      figure("stats-breaches", breaches, "SLA breaches", breaches ? "bad" : ""),
      figure("stats-now", now, "runs in progress"),
      figure("stats-decisions", stats.approvers.reduce((a, p) => a + p.decisions, 0), "decisions"));
  }

  renderStates(states) {
    $("state-rows").replaceChildren(...states.map((s) => el("tr",
      { dataset: { state: s.state, breaches: String(s.breaches) }, className: s.breaches ? "breached" : "" },
      el("th", { scope: "row" }, s.state), el("td", {}, String(s.entered)), el("td", {}, String(s.now)),
      el("td", {}, seconds(s.p50_s)), el("td", {}, seconds(s.p90_s)), el("td", {}, seconds(s.p99_s)),
      el("td", {}, seconds(s.sla_s)), el("td", { className: "breaches" }, s.sla_s === null ? "–" : String(s.breaches)))));
  }

  renderApprovers(approvers) {
    $("approver-rows").replaceChildren(...approvers.map((a) => el("tr", { dataset: { actor: a.actor } },
      el("th", { scope: "row" }, a.actor), el("td", {}, String(a.decisions)),
      el("td", {}, seconds(a.p50_s)), el("td", {}, seconds(a.p90_s)))));
    $("approvers-empty").hidden = approvers.length > 0;
  }
}
