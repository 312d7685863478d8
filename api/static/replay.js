// Replay: a run's detail links it to the run it replays and to the runs replaying it, and its
// Replay button starts a new run with the same input and ref (POST /api/runs/{id}/replay).
import { api, runPath } from "./api.js";
import { $, el } from "./dom.js";

const replays = new Map(); // run id -> ids of the runs replaying it, newest first

// GET of one run says which runs replay it; the feed's run views do not carry that list.
export function learnReplays(run) {
  if (Array.isArray(run.replays)) replays.set(run.id, [...run.replays]);
}

// A new run that replays one we know of joins its list; true if the list changed.
export function noteReplay(run) {
  const known = run.replay_of ? replays.get(run.replay_of) : null;
  if (!known || known.includes(run.id)) return false;
  known.unshift(run.id);
  return true;
}

function link(id, open) {
  const button = el("button", { type: "button", className: "run-link", dataset: { runId: id } }, id);
  button.addEventListener("click", () => open(id));
  return button;
}

export function renderReplay(run, { canReplay, open }) {
  const lines = [];
  if (run.replay_of) lines.push(el("p", { id: "replay-of" }, "Replay of ", link(run.replay_of, open)));
  const mine = replays.get(run.id) || [];
  if (mine.length) lines.push(el("p", { id: "replays" }, "Replayed by ", ...mine.map((id) => link(id, open))));
  $("replay-links").replaceChildren(...lines);
  $("replay-controls").hidden = !canReplay;
}

// Wires the button once: `current` is the run on screen, `started` gets the new run.
export function bindReplay({ current, started, failed }) {
  $("replay-button").addEventListener("click", async () => {
    const run = current();
    if (!run) return;
    const button = $("replay-button");
    button.disabled = true;
    const query = $("replay-same-version").checked ? "?same_version=true" : "";
    // A key per press: a request the network repeats does not start a second run.
    const headers = crypto.randomUUID ? { "Idempotency-Key": crypto.randomUUID() } : {};
    try {
      const replay = await api(runPath(run.id, `/replay${query}`), { method: "POST", headers });
      noteReplay(replay);
      started(replay);
    } catch (err) {
      failed(err);
    } finally {
      button.disabled = false;
    }
  });
}
