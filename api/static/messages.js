// Private messages in the admin page: send one to an agent, follow the recent ones (state, reason,
// the agent's question with a box to answer it, the reply), and the collaboration tracker (who
// messages whom, and how it went). Loaded after app.js and uses its helpers ($, el, api, report,
// notice, state); app.js calls refreshMessages() at sign-in and every 3 s.
"use strict";

async function refreshMessages() {
  if (!state.key) return;
  try {
    const [page, collaboration] = await Promise.all([api("GET", "/messages?limit=20"), api("GET", "/analytics/collaboration")]);
    showMessages(page.items);
    showCollaboration(collaboration);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
  }
}

function showMessages(items) {
  const typing = document.activeElement;
  if (typing && typing.matches("#pm-list input") && typing.value) return;  // never redraw under someone typing
  $("pm-list").replaceChildren(...items.map((m) => {
    const item = el("li", { "data-message": m.message_id, "data-state": m.state },
      el("span", { class: "pm-head" }, `${m.sender} → ${m.recipient} `),
      el("span", { class: `badge ${m.state}` }, m.state.replace("_", " ")));
    const said = m.question ? `asks: ${m.question}` : m.reply || m.reason || "";
    if (said) item.append(el("div", { class: "pm-text" }, said));
    if (m.deepthink_conversation_id) item.append(el("div", { class: "muted" }, `deepthink: ${m.deepthink_conversation_id}`));
    if (m.state === "input_required") item.append(answerForm(m.message_id));
    return item;
  }));
}

function answerForm(messageId) {
  const input = el("input", { type: "text", placeholder: "your answer", "aria-label": "answer", required: "" });
  return el("form", { class: "pm-answer", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/messages/${encodeURIComponent(messageId)}/input`, { content: input.value });
      notice(`answered message ${messageId}`);
      document.activeElement.blur();
      refreshMessages();
    } catch (err) { report(err); }
  } }, input, el("button", { type: "submit" }, "Answer"));
}

function showCollaboration(report) {
  $("pm-collaboration").replaceChildren(...report.pairs.map((p) => el("tr", { "data-pair": `${p.sender}>${p.recipient}` },
    el("td", {}, `${p.sender} → ${p.recipient}`), el("td", {}, String(p.sent)), el("td", {}, String(p.accepted)),
    el("td", {}, String(p.refused)), el("td", {}, String(p.completed)), el("td", {}, String(p.failed)),
    el("td", {}, p.mean_duration_ms === null ? "—" : (p.mean_duration_ms / 1000).toFixed(1)),
    el("td", {}, p.trust === null ? "—" : p.trust.toFixed(2)))));
}

document.addEventListener("DOMContentLoaded", () => {
  $("pm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { to: $("pm-to").value.trim(), content: $("pm-text").value, deepthink: $("pm-deepthink").checked };
    try {
      const sent = await api("POST", "/messages", body);
      notice(`message ${sent.message_id} sent to ${sent.recipient}`);
      $("pm-text").value = "";
      refreshMessages();
    } catch (err) { report(err); }
  });
});
