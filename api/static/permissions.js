// "Why can't I?": the server's verdict on each event of a run for the signed-in user
// (GET /api/runs/{id}/permissions), asked once per run version. A button the user may not
// press is disabled and says why when hovered.
import { api, runPath } from "./api.js";

let known = { key: null, events: null };
let asking = { key: null, promise: null };
let generation = 0; // bumped when the user changes: answers asked for before are dropped

const keyOf = (run) => `${run.id}@${run.version}`;

// Another user signs in: what the server said was for the one before.
export function forgetVerdicts() {
  known = { key: null, events: null };
  asking = { key: null, promise: null };
  generation += 1;
}

// The verdicts on this version of the run, if they have arrived.
export function verdicts(run) {
  return known.key === keyOf(run) ? known.events : null;
}

// Ask for them (once per version, however often the run is drawn meanwhile).
export function askVerdicts(run) {
  const key = keyOf(run);
  if (known.key === key) return Promise.resolve(known.events);
  if (asking.key === key) return asking.promise;
  const asked = generation;
  const promise = api(runPath(run.id, "/permissions")).then((answer) => {
    if (asked !== generation) return null;
    if (asking.key === key) asking = { key: null, promise: null };
    // The server answers for the run as it is now, which may be newer than the page's copy;
    // the newer copy comes over the feed and is judged again.
    known = { key, events: answer.events };
    return answer.events;
  }, (err) => {
    if (asking.key === key) asking = { key: null, promise: null };
    throw err;
  });
  asking = { key, promise };
  return promise;
}

// The verdict on one event (for a region, or a task's slot); undefined if the server gave none.
export function verdict(events, event, { region = null, slot = null } = {}) {
  return events?.find((p) => p.event === event && (p.region ?? null) === region && (p.slot ?? null) === slot);
}

export function judge(button, permission) {
  if (!permission) return;
  button.disabled = !permission.allowed;
  button.dataset.allowed = String(permission.allowed);
  if (!permission.allowed) {
    button.title = permission.reasons.map((reason) => reason.message).join("\n");
    button.dataset.reasons = permission.reasons.map((reason) => reason.code).join(" ");
  } else {
    button.title = permission.needs_data ? `Fill in its data: ${permission.needs_data}` : "";
    delete button.dataset.reasons;
  }
}
