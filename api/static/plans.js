// Task plans in the admin page: the list of plans, and a plan view — its line ("4/9 done · running:
// build, test · waiting: deploy"), pause / resume / end, and its tasks as a layered graph: layer n
// holds the tasks whose longest chain of dependencies is n long, each with its state, what it waits
// for, its attempts and the start of its result (or why it failed or was skipped).
//
// Loaded after app.js and uses its helpers ($, el, api, report, notice, state, stopStream). It starts
// itself: it refreshes the list every 3 s once a key is in, and closes the plan view when a
// conversation or a channel is picked (app.js and channels.js need not know about plans).
"use strict";

const plans = { selected: null };

async function refreshPlans() {
  if (!state.key || $("app").hidden) return;
  try {
    const page = await api("GET", "/plans?page_size=50");
    $("plans").replaceChildren(...page.plans.map((p) => {
      const item = el("li", { "data-plan": p.plan_id, onclick: () => openPlan(p.plan_id) },
        el("span", { class: "cid" }, p.plan_id),
        el("span", { class: `badge ${p.state || ""}` }, p.state || p.execution));
      if (p.plan_id === plans.selected) item.classList.add("selected");
      return item;
    }));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
  }
  if (plans.selected) await loadPlan();
}

async function openPlan(planId) {
  stopStream();
  state.selected = null;
  if (typeof closeChannel === "function") closeChannel();
  plans.selected = planId;
  $("chat-empty").hidden = true;
  $("chat-view").hidden = true;
  $("plan-view").hidden = false;
  $("plan-title").textContent = `plan ${planId}`;
  document.querySelectorAll("#plans li").forEach((li) => li.classList.toggle("selected", li.dataset.plan === planId));
  await loadPlan();
}

function closePlan() {
  plans.selected = null;
  $("plan-view").hidden = true;
  document.querySelectorAll("#plans li").forEach((li) => li.classList.remove("selected"));
}

async function loadPlan() {
  const planId = plans.selected;
  try {
    const detail = await api("GET", `/plans/${encodeURIComponent(planId)}`);
    if (plans.selected !== planId) return;
    const progress = detail.progress;
    $("plan-title").textContent = `plan ${planId}${progress.title ? " — " + progress.title : ""}`;
    $("plan-state").textContent = progress.state;
    $("plan-state").className = `badge ${progress.state}`;
    $("plan-details").textContent = progress.details;
    $("plan-graph").replaceChildren(...planLayers(progress.tasks));
  } catch (err) {
    report(err);
  }
}

function planLayers(tasks) {
  const byId = new Map(tasks.map((t) => [t.spec.id, t]));
  const level = new Map();
  const depth = (id) => {
    if (!level.has(id)) {
      level.set(id, 0);  // a guard: the server refuses cycles, this only stops a loop
      const deps = byId.get(id)?.spec.depends_on || [];
      level.set(id, deps.length ? 1 + Math.max(...deps.map(depth)) : 0);
    }
    return level.get(id);
  };
  const layers = [];
  for (const task of tasks) (layers[depth(task.spec.id)] ||= []).push(task);
  return layers.map((layer, n) => el("li", { class: "plan-layer", "data-layer": String(n) },
    el("span", { class: "muted" }, n === 0 ? "first" : `then (${n})`),
    el("ul", { class: "plain" }, ...layer.map(taskItem))));
}

function taskItem(task) {
  const spec = task.spec;
  const said = task.state === "succeeded" ? task.result : task.error || "";
  return el("li", { class: `plan-task ${task.state}`, "data-task": spec.id },
    el("strong", {}, spec.id), " ",
    el("span", { class: `badge ${task.state}` }, task.state), " ",
    el("span", { class: "muted" }, [spec.priority, spec.depends_on.length ? `after ${spec.depends_on.join(", ")}` : "",
      task.attempts > 1 ? `attempt ${task.attempts}` : ""].filter(Boolean).join(" · ")),
    spec.title ? el("div", {}, spec.title) : "",
    said ? el("div", { class: "plan-result" }, said) : "");
}

async function planSignal(action, body) {
  try {
    await api("POST", `/plans/${encodeURIComponent(plans.selected)}/${action}`, body);
    notice(`plan ${plans.selected}: ${action} sent`);
    await loadPlan();
  } catch (err) {
    report(err);
  }
}

function wirePlans() {
  $("plan-pause").addEventListener("click", () => planSignal("pause", { reason: "from the admin page" }));
  $("plan-resume").addEventListener("click", () => planSignal("resume"));
  $("plan-end").addEventListener("click", () => planSignal("cancel", { reason: "ended from the admin page" }));
  for (const list of ["conversations", "channels"]) $(list).addEventListener("click", closePlan, true);
  $("new-conversation").addEventListener("submit", closePlan, true);
  refreshPlans();
  setInterval(refreshPlans, 3000);
}

document.addEventListener("DOMContentLoaded", wirePlans);
