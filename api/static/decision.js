// A decision's data, typed beside its button: one form per decision on screen that declares
// its data (a JSON Schema, ChartInfo.event_data), and the server's word on it shown there.
import { Problem } from "./api.js";
import { $, el } from "./dom.js";
import { fieldLabels, readFields, schemaFields, takesMore } from "./forms.js";

let drawnFor = null; // drawn again only when the run or its decisions change: typing is kept

export function renderEventForms(run, definition, events, labels) {
  const typed = [...new Set(events)].filter((event) => definition?.event_data?.[event]);
  const key = `${run.id}:${typed.join(",")}`;
  if (key === drawnFor) return;
  drawnFor = key;
  $("event-forms").replaceChildren(...typed.map((event) => {
    const schema = definition.event_data[event];
    const fields = schemaFields(schema);
    const parts = fieldLabels(fields, { hints: true });
    if (takesMore(schema)) {
      const raw = el("textarea", { rows: 2, spellcheck: false, dataset: { raw: "" }, value: "{}" });
      parts.push(el("label", {}, fields.length ? "Other data (JSON) " : "Data (JSON) ", raw));
    }
    return el("fieldset", { className: "event-data", dataset: { event } },
      el("legend", {}, `${labels[event] || event}: data`), ...parts,
      el("p", { className: "problem", role: "alert", hidden: true }));
  }));
}

// The next decision starts from empty forms.
export function clearEventForms() {
  drawnFor = null;
}

// [its form, the data typed there] ([null, {}] when the event has no form); a JSON box that
// is not JSON throws a Problem that names the form.
export function eventData(event) {
  const form = $("event-forms").querySelector(`fieldset[data-event="${CSS.escape(event)}"]`);
  if (!form) return [null, {}];
  const raw = form.querySelector("textarea[data-raw]");
  let data = {};
  try {
    data = raw ? JSON.parse(raw.value || "{}") : {};
  } catch (err) {
    throw Object.assign(new Problem({ title: "Data is not JSON", detail: String(err.message) }, 0), { form });
  }
  return [form, readFields(form, data)];
}

export function formProblem(form, message) {
  const problem = form.querySelector(".problem");
  problem.textContent = message || "";
  problem.hidden = !message;
}
