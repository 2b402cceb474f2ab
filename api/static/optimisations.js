// The optimisation hints in force, in the monitoring panel: what the review applied, why, until when,
// and a Revert button (operators and admins; a viewer's click is refused by the API, and the page
// says so). GET /optimisations, POST /optimisations/{id}/revert. Loaded before app.js; uses its
// helpers ($, el, api, notice, report) only when called. refreshDashboard() calls refreshHints().
"use strict";

async function refreshHints() {
  const list = $("dash-hints");
  let hints;
  try {
    hints = await api("GET", "/optimisations?limit=20");
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, failure({ reason: err })));
    return;
  }
  $("dash-hints-count").textContent = String(hints.length);
  list.replaceChildren(...(hints.length
    ? hints.map((h) => el("li", { class: "hint", "data-hint": String(h.id), title: h.reason },
        `#${h.id} ${h.agent}: ${h.kind} = ${h.value} (was ${h.previous}) until ${new Date(h.expires_at).toLocaleString()} `,
        el("button", { type: "button", class: "small", onclick: () => revertHint(h) }, "Revert")))
    : [el("li", { class: "muted" }, "no optimisation hint in force")]));
}

async function revertHint(hint) {
  try {
    const done = await api("POST", `/optimisations/${hint.id}/revert`, { reason: "reverted from the admin page" });
    notice(`reverted #${done.id}: ${done.agent}'s ${done.kind} is ${done.previous} again for new conversations`);
  } catch (err) {
    report(err);
  }
  await refreshHints();
}
