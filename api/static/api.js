// The server's API as the page calls it: the token of this tab, JSON in and out, problems as
// errors that carry the server's title and detail.

export const TOKEN_KEY = "signoff-token"; // sessionStorage: this tab only, gone when it closes

export class Problem extends Error {
  constructor(body, status) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.title = body.title || `HTTP ${status}`;
    this.status = status;
  }
}

let signedOut = () => {};

// What the page does when the server no longer knows its token.
export function onSignedOut(handler) {
  signedOut = handler;
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new Problem({ title: "Network error", detail: String(err) }, 0);
  }
  const text = await response.text();
  const data = text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (response.status === 401 && path !== "/api/me") signedOut();
  if (!response.ok) throw new Problem(typeof data === "object" ? data : { detail: text }, response.status);
  return data;
}

export const runPath = (id, tail = "") => `/api/runs/${encodeURIComponent(id)}${tail}`;
