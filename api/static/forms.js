// Forms built from a JSON Schema: a run's input on the create form, a decision's data beside
// its button. One field per top-level property of a plain type (text, number, yes/no, a
// choice); what the fields cannot hold goes in a JSON box.
import { el } from "./dom.js";

const PLAIN = ["string", "number", "integer", "boolean"];

// The object schema at the root ($ref to $defs, as msgspec writes a Struct's schema).
function root(schema) {
  let node = schema || {};
  if (node.$ref) node = node.$defs?.[node.$ref.split("/").pop()] || {};
  return node;
}

export function schemaFields(schema) {
  const node = root(schema);
  const required = new Set(node.required || []);
  return Object.entries(node.properties || {}).map(([name, prop]) => {
    const types = (prop.anyOf || [prop]).map((p) => p.type).filter((t) => t && t !== "null");
    return { name, kind: types[0] || "string", required: required.has(name), prop };
  }).filter((f) => PLAIN.includes(f.kind));
}

// Whether the schema takes more than its plain fields (nested objects, lists, free keys).
export function takesMore(schema) {
  const node = root(schema);
  const props = node.properties || {};
  return Object.keys(props).length > schemaFields(schema).length
    || (!Object.keys(props).length && node.additionalProperties !== false);
}

function control({ name, kind, required, prop }) {
  const attrs = { dataset: { field: name, kind }, name, required };
  if (prop.enum) {
    const blank = required ? [] : [el("option", { value: "" }, "–")];
    return el("select", attrs, ...blank, ...prop.enum.map((v) => el("option", { value: String(v) }, String(v))));
  }
  if (kind === "boolean") return el("input", { ...attrs, type: "checkbox" });
  if (kind === "string") {
    Object.assign(attrs, { type: "text" });
    if (prop.maxLength) attrs.maxLength = prop.maxLength;
    if (prop.minLength) attrs.minLength = prop.minLength;
    if (prop.pattern) attrs.pattern = prop.pattern;
  } else {
    Object.assign(attrs, { type: "number", step: kind === "integer" ? "1" : "any" });
    const low = prop.minimum ?? prop.exclusiveMinimum;
    const high = prop.maximum ?? prop.exclusiveMaximum;
    if (low !== undefined) attrs.min = low;
    if (high !== undefined) attrs.max = high;
  }
  if (prop.default !== undefined) attrs.value = prop.default;
  return el("input", attrs);
}

// One label per field; `hints` adds what the schema says of it (its range, its length).
export function fieldLabels(fields, { hints = false } = {}) {
  return fields.map((field) => {
    const hint = hints ? describe(field.prop) : "";
    return el("label", {}, `${field.name}${field.required ? " *" : ""}${hint ? ` (${hint})` : ""} `, control(field));
  });
}

function describe(prop) {
  const parts = [];
  if (prop.minimum !== undefined) parts.push(`≥ ${prop.minimum}`);
  if (prop.exclusiveMinimum !== undefined) parts.push(`> ${prop.exclusiveMinimum}`);
  if (prop.maximum !== undefined) parts.push(`≤ ${prop.maximum}`);
  if (prop.exclusiveMaximum !== undefined) parts.push(`< ${prop.exclusiveMaximum}`);
  if (prop.maxLength !== undefined) parts.push(`up to ${prop.maxLength} characters`);
  return parts.join(", ");
}

// The fields' values into `into`; an empty field is left out, so the server names it if it
// is required. A number that does not parse goes as typed, for the server to refuse.
export function readFields(container, into = {}) {
  for (const field of container.querySelectorAll("[data-field]")) {
    const name = field.dataset.field;
    if (field.type === "checkbox") into[name] = field.checked;
    else if (field.value.trim() === "") continue;
    else if (field.dataset.kind === "string") into[name] = field.value;
    else if (field.dataset.kind === "boolean") into[name] = field.value === "true";
    else into[name] = Number.isNaN(Number(field.value)) ? field.value : Number(field.value);
  }
  return into;
}
