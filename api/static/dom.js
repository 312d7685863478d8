// Building the page: every text from the API goes in with textContent, never as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// How long ago, or how long, as a person reads it.
export function ago(iso) {
  return duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000)) + " ago";
}

export function duration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

// "due in 2 d" or "overdue by 3 h", for a task's due time.
export function due(iso) {
  const left = (Date.parse(iso) - Date.now()) / 1000;
  return left >= 0 ? `due in ${duration(left)}` : `overdue by ${duration(-left)}`;
}
