// A run's open tasks: who may take each, who has it, when it is due; claim and release them,
// reassign (operators) or delegate (the assignee) to someone named.
import { api, runPath } from "./api.js";
import { due, el } from "./dom.js";
import { judge, verdict } from "./permissions.js";

// "user:mia" → "mia", "group:hr" → "group hr", "*" → "any approver".
export function who(candidate) {
  if (candidate === "*") return "any approver";
  const [kind, name] = candidate.split(/:(.*)/s);
  return kind === "group" ? `group ${name}` : name;
}

function status(task) {
  if (!task.assignee) return "unassigned";
  return task.acting_for ? `${task.assignee} (for ${task.acting_for})` : task.assignee;
}

// The items of `run`'s tasks panel; `me` is /api/me, `events` the permissions verdicts (null: not yet
// known), `done` receives the run view an action returns, `failed` its problem.
export function renderTasks(run, { me, events, stateName, done, failed }) {
  const operator = me.open || me.roles.includes("admin") || me.roles.includes("operator");
  return run.tasks.map((task) => {
    const overdue = task.due_at !== null && task.due_at !== undefined && Date.parse(task.due_at) < Date.now();
    const head = el("div", {},
      el("strong", {}, task.slot === task.state ? stateName(task.state) : task.slot),
      ` · for ${task.candidates.map(who).join(", ")}`);
    const facts = el("div", { className: "muted" },
      "assignee: ", el("span", { className: "assignee" }, status(task)),
      task.due_at ? el("span", { className: overdue ? "due overdue" : "due" }, ` · ${due(task.due_at)}`) : "",
      task.escalated ? " · escalated" : "",
      task.voters.length ? ` · decided: ${task.voters.join(", ")}` : "");
    const buttons = [];
    const send = async (button, action, body = {}) => {
      button.disabled = true;
      try {
        done(await api(runPath(run.id, `/tasks/${action}`), {
          method: "POST", body: { slot: task.slot, ...body }, headers: { "If-Match": `"${run.version}"` },
        }));
      } catch (err) {
        button.disabled = false;
        failed(err);
      }
    };
    const claimOrRelease = task.assignee ? ["release", "Release"] : ["claim", "Claim"];
    const [action, label] = claimOrRelease;
    const button = el("button", { type: "button", className: "secondary", dataset: { action, slot: task.slot } }, label);
    judge(button, verdict(events, `task.${action}`, { slot: task.slot }));
    button.addEventListener("click", () => send(button, action));
    buttons.push(button);
    // Reassigning is an operator's; delegating, the assignee's.
    const handOn = [];
    if (operator) handOn.push(["reassign", "Reassign"]);
    if (task.assignee && task.assignee === me.actor) handOn.push(["delegate", "Delegate"]);
    if (handOn.length) {
      const to = el("input", { className: "task-to", placeholder: "to whom", maxLength: 200, dataset: { slot: task.slot }, "aria-label": "to whom" });
      buttons.push(to);
      for (const [act, text] of handOn) {
        const hand = el("button", { type: "button", className: "secondary", dataset: { action: act, slot: task.slot } }, text);
        hand.addEventListener("click", () => {
          const name = to.value.trim();
          if (!name) { to.focus(); return; }
          send(hand, act, { to: name });
        });
        buttons.push(hand);
      }
    }
    return el("li", { dataset: { slot: task.slot, overdue: String(overdue) } },
      head, facts, el("div", { className: "buttons" }, ...buttons));
  });
}
