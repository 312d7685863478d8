// The stats view's charts, drawn as SVG: every bar and point is an element that names its
// numbers (data-* attributes, and a <title> a pointer or a screen reader finds), styled by
// classes from stats.css (the page's CSP allows no inline styles).
import { duration } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 600; // the charts' own units: about a pixel each in a half-width card
// Ticks of the time axis, on a log scale: stays run from seconds (a job) to weeks.
const TICKS = [[1, "1 s"], [10, "10 s"], [60, "1 min"], [600, "10 min"], [3600, "1 h"],
  [21600, "6 h"], [86400, "1 d"], [604800, "1 w"], [2592000, "30 d"]];
const QUANTILES = [["p50_s", "p50"], ["p90_s", "p90"], ["p99_s", "p99"]];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

const title = (text) => svg("title", {}, text);

// Time in state: per state, its p50, p90 and p99 as bars on a log scale, its SLA as a line;
// a state whose stays broke its SLA is marked.
export function stayChart(states) {
  const shown = states.filter((s) => s.stays > 0 || s.sla_s !== null);
  if (!shown.length) return null;
  const values = shown.flatMap((s) => [s.p99_s, s.sla_s]).filter((v) => v !== null && v > 0);
  const low = Math.min(1, ...values);
  const high = Math.max(60, ...values) * 1.6;
  const left = 160;
  const right = WIDTH - 64;
  const x = (seconds) => left + ((Math.log10(Math.max(seconds, low)) - Math.log10(low))
    / (Math.log10(high) - Math.log10(low))) * (right - left);
  const rowHeight = 52;
  const top = 26;
  const height = top + shown.length * rowHeight + 8;
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "stay-chart", role: "group",
    "aria-label": "Time in state: p50, p90 and p99 per state, and its SLA" });
  for (const [seconds, label] of TICKS.filter(([s]) => s >= low && s <= high)) {
    chart.append(svg("line", { x1: x(seconds), x2: x(seconds), y1: top - 6, y2: height - 6, class: "grid" }),
      svg("text", { x: x(seconds), y: top - 10, class: "tick", "text-anchor": "middle" }, label));
  }
  shown.forEach((state, i) => chart.append(stayRow(state, top + i * rowHeight, x, left)));
  return chart;
}

function stayRow(state, y, x, left) {
  const breached = state.breaches > 0;
  const said = QUANTILES.map(([key, name]) => `${name} ${state[key] === null ? "none" : duration(state[key])}`);
  if (state.sla_s !== null) said.push(`SLA ${duration(state.sla_s)}, ${state.breaches} breached`);
  const row = svg("g", { class: breached ? "stay-row breached" : "stay-row", role: "img",
    "aria-label": `${state.state}: ${said.join(", ")}`, "data-state": state.state,
    "data-stays": state.stays, "data-breaches": state.breaches,
    "data-sla": state.sla_s ?? "" });
  row.append(svg("text", { x: left - 10, y: y + 16, class: "state-name", "text-anchor": "end" }, state.state),
    svg("text", { x: left - 10, y: y + 33, class: "state-note", "text-anchor": "end" },
      breached ? `${state.breaches} over SLA` : `${state.stays} stays`));
  QUANTILES.forEach(([key, name], i) => {
    const value = state[key];
    if (value === null) return;
    const top = y + 4 + i * 13;
    const width = Math.max(2, x(value) - left);
    const over = state.sla_s !== null && value > state.sla_s;
    row.append(svg("rect", { x: left, y: top, width, height: 11, rx: 2,
      class: `bar ${name}${over ? " over" : ""}`, "data-quantile": name, "data-seconds": value },
      title(`${state.state} ${name}: ${duration(value)}`)),
    svg("text", { x: left + width + 4, y: top + 9, class: "bar-label" }, `${name} ${duration(value)}`));
  });
  if (state.sla_s !== null) {
    row.append(svg("line", { x1: x(state.sla_s), x2: x(state.sla_s), y1: y, y2: y + 44, class: "sla",
      "data-seconds": state.sla_s }, title(`SLA of ${state.state}: ${duration(state.sla_s)}`)));
  }
  return row;
}

// Finished runs per day: a line per lifecycle state they ended in, and their total.
export function throughputChart(days) {
  const outcomes = [...new Set(days.flatMap((d) => Object.keys(d.outcomes)))].sort();
  const top = Math.max(1, ...days.map((d) => d.finished));
  const step = niceStep(top);
  const ceiling = Math.ceil(top / step) * step;
  const [left, right, upper, lower] = [32, WIDTH - 18, 12, 190];
  const height = lower + 26;
  const x = (i) => days.length === 1 ? (left + right) / 2 : left + (i / (days.length - 1)) * (right - left);
  const y = (n) => lower - (n / ceiling) * (lower - upper);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "throughput-chart", role: "group",
    "aria-label": "Finished runs per day" });
  for (let n = 0; n <= ceiling; n += step) {
    chart.append(svg("line", { x1: left, x2: right, y1: y(n), y2: y(n), class: "grid" }),
      svg("text", { x: left - 6, y: y(n) + 4, class: "tick", "text-anchor": "end" }, String(n)));
  }
  const every = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((d, i) => {
    const last = i === days.length - 1;
    if ((i % every === 0 && days.length - 1 - i >= every / 2) || last) {
      chart.append(svg("text", { x: x(i), y: lower + 18, class: "tick", "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  const series = [["finished", (d) => d.finished], ...outcomes.map((o) => [o, (d) => d.outcomes[o] || 0])];
  for (const [name, count] of series) {
    const points = days.map((d, i) => `${x(i)},${y(count(d))}`).join(" ");
    const line = svg("g", { class: `series ${name}`, "data-series": name });
    line.append(svg("polyline", { points, class: "line" }));
    if (name === "finished") {
      days.forEach((d, i) => line.append(svg("circle", { cx: x(i), cy: y(d.finished), r: 3.5, class: "point",
        "data-day": d.day, "data-finished": d.finished },
      title(`${d.day}: ${d.finished} finished${outcomeText(d.outcomes)}`))));
    }
    chart.append(line);
  }
  return chart;
}

function outcomeText(outcomes) {
  const parts = Object.entries(outcomes).map(([k, n]) => `${n} ${k}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function niceStep(top) {
  for (const step of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) if (top / step <= 5) return step;
  return 10 ** Math.ceil(Math.log10(top / 5));
}

// The legend of the series a throughput chart draws.
export function seriesOf(days) {
  return ["finished", ...new Set(days.flatMap((d) => Object.keys(d.outcomes)))];
}
