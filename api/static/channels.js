// Channels in the admin page: the list, a new channel, and a channel view — its members and what
// each is doing, its messages with who spoke and why (the score and the one-line explanation of
// the decision that made an agent speak, with feedback buttons), the observe/ignore decisions shown
// quietly under each message, and its members' tool calls waiting for a person.
//
// Loaded after app.js and uses its helpers ($, el, api, report, notice, state, streamEvents,
// stopStream, approvalCard, refreshApprovals). app.js calls refreshChannels() at sign-in and every
// 3 s, closeChannel() when a conversation is selected, showChannelApprovals() with every approvals
// refresh. Live updates come from the channel's event stream (GET /channels/{id}/events).
"use strict";

const FEEDBACK = ["useful", "ignored", "conflict", "inappropriate"];
const channel = { selected: null, lastSeq: 0, scores: new Map(), given: new Map() };

async function refreshChannels() {
  if (!state.key) return;
  try {
    const page = await api("GET", "/channels?page_size=100&running=true");
    $("channels").replaceChildren(...page.channels.map((c) => {
      const item = el("li", { "data-channel": c.channel_id, onclick: () => openChannel(c.channel_id) },
        el("span", { class: "cid", title: c.members.join(", ") }, `#${c.channel_id}`),
        el("span", { class: `badge ${c.state || ""}` }, c.awaiting_approval ? "⚠ approval" : c.state || "starting"));
      if (c.channel_id === channel.selected) item.classList.add("selected");
      return item;
    }));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
  }
}

async function openChannel(channelId) {
  if (channel.selected === channelId) return;
  stopStream();
  state.selected = null;
  document.querySelectorAll("#conversations li").forEach((li) => li.classList.remove("selected"));
  Object.assign(channel, { selected: channelId, lastSeq: 0, scores: new Map() });
  state.lastEventId = 0;
  $("chat-empty").hidden = true;
  $("chat-view").hidden = true;
  $("channel-view").hidden = false;
  $("channel-title").textContent = `#${channelId}`;
  $("channel-messages").replaceChildren();
  document.querySelectorAll("#channels li").forEach((li) => li.classList.toggle("selected", li.dataset.channel === channelId));
  await Promise.all([loadChannelStatus(), loadChannelMessages()]);
  await loadChannelScores();
  refreshApprovals();
  streamEvents(`/channels/${encodeURIComponent(channelId)}/events`, (event) => onChannelEvent(channelId, event),
    $("channel-stream"));
}

function closeChannel() {
  channel.selected = null;
  $("channel-view").hidden = true;
  document.querySelectorAll("#channels li").forEach((li) => li.classList.remove("selected"));
}

function channelPath(suffix = "") {
  return `/channels/${encodeURIComponent(channel.selected)}${suffix}`;
}

// --- status and members --------------------------------------------------------------------------

async function loadChannelStatus() {
  const id = channel.selected;
  try {
    const detail = await api("GET", channelPath());
    if (id !== channel.selected) return;
    const status = detail.status;
    showChannelState(detail.execution === "running" || status.state === "archived" ? status.state : "ended", status.details);
    const agents = status.agents.map((m) => el("li", { "data-agent": m.agent },
      el("strong", {}, m.agent), " ", el("span", { class: `badge ${m.state}` }, m.state.replace("_", " ")),
      el("span", { class: "muted" }, ` ${m.replies} replies · ${m.tokens} tokens`)));
    const people = status.people.length ? [el("li", { class: "muted" }, `people: ${status.people.join(", ")}`)] : [];
    $("channel-members").replaceChildren(...agents, ...people);
  } catch (err) { report(err); }
}

function showChannelState(value, details) {
  const badge = $("channel-state");
  badge.textContent = value;
  badge.className = `badge ${value}`;
  if (details !== undefined) $("channel-details").textContent = details;
}

// --- messages and why each agent spoke -----------------------------------------------------------

async function loadChannelMessages() {
  const id = channel.selected;
  try {
    for (;;) {
      const page = await api("GET", `${channelPath("/messages")}?after=${channel.lastSeq}&limit=200`);
      if (id !== channel.selected) return;
      for (const m of page.messages) {
        if (m.seq <= channel.lastSeq) continue;
        $("channel-messages").append(messageItem(m));
        channel.lastSeq = m.seq;
      }
      if (page.next_after === null) break;
    }
    renderReasons();
  } catch (err) { report(err); }
}

function messageItem(m) {
  const heading = m.kind === "agent" ? `${m.author} · #${m.seq} → #${m.answers}` : `${m.author} · #${m.seq}`;
  return el("li", { class: m.kind, "data-seq": String(m.seq), "data-author": m.author, "data-answers": String(m.answers ?? "") },
    el("span", { class: "role" }, m.kind === "note" ? `${heading} · note` : heading),
    el("div", { class: "why" }),
    el("div", { class: "text" }, m.content),
    el("div", { class: "quiet" }));
}

async function loadChannelScores() {
  const id = channel.selected;
  try {
    const page = await api("GET", `${channelPath("/scores")}?limit=500`);
    if (id !== channel.selected) return;
    channel.scores = new Map();
    for (const s of page.items) {
      if (!channel.scores.has(s.message_id)) channel.scores.set(s.message_id, []);
      channel.scores.get(s.message_id).push(s);
    }
    renderReasons();
  } catch (err) { report(err); }
}

// An agent's message shows the decision that made it speak (on the message it answers) and feedback
// buttons; every scored message lists, quietly, who only observed it and who ignored it.
function renderReasons() {
  for (const li of $("channel-messages").children) {
    const scores = channel.scores.get(li.dataset.seq) || [];
    const quiet = scores.filter((s) => s.decision !== "intervene" && s.decision !== "reflect").sort((a, b) => b.score - a.score);
    li.querySelector(".quiet").replaceChildren(...quiet.map((s) =>
      el("span", { class: `decision ${s.decision}`, title: s.explanation }, `${s.agent}: ${s.explanation}`)));
    if (li.dataset.answers) {
      const spoke = (channel.scores.get(li.dataset.answers) || []).find((s) => s.agent === li.dataset.author);
      if (spoke) li.querySelector(".why").replaceChildren(el("span", {}, spoke.explanation), feedbackButtons(spoke));
    }
  }
}

function feedbackButtons(score) {
  const mine = channel.given.get(score.id) || (score.feedback.length ? score.feedback[score.feedback.length - 1].feedback : null);
  return el("span", { class: "feedback" }, ...FEEDBACK.map((verdict) =>
    el("button", { type: "button", class: `small${verdict === mine ? " chosen" : ""}`, "data-feedback": verdict,
      onclick: () => giveFeedback(score, verdict) }, verdict)));
}

async function giveFeedback(score, verdict) {
  try {
    await api("POST", "/relevance/feedback", { score_id: score.id, feedback: verdict });
    channel.given.set(score.id, verdict);
    notice(`feedback recorded: ${verdict} on ${score.agent}'s decision (score ${score.id})`);
    await loadChannelScores();
  } catch (err) { report(err); }
}

// --- live events ---------------------------------------------------------------------------------

function onChannelEvent(channelId, event) {
  if (channelId !== channel.selected) return false;
  if (event.id !== null) state.lastEventId = Number(event.id);
  const data = event.data && event.data.data !== undefined ? event.data.data : event.data;
  switch (event.type) {
    case "state":  // a post's end among others: its records are all written by then
      showChannelState(data.state, data.details);
      loadChannelStatus();
      loadChannelScores();
      return data.state === "ended" || data.state === "archived";
    case "message":
      if (data.seq > channel.lastSeq) loadChannelMessages();
      return false;
    case "scored":
    case "observed":
    case "not_answered":
      loadChannelScores();
      return false;
    case "waiting":
    case "turn_requested":
      loadChannelStatus();
      refreshApprovals();
      return false;
    default:
      return false;
  }
}

// --- the members' approvals, acted on here or in the approvals panel -------------------------------

function showChannelApprovals(items) {
  if (!channel.selected) return;
  const mine = items.filter((item) => item.channel === channel.selected);
  $("channel-approvals").replaceChildren(...mine.map((item) => approvalCard(item, false)));
  $("channel-approvals-panel").hidden = mine.length === 0;
}

// --- actions ---------------------------------------------------------------------------------------

async function channelSignal(action, body) {
  if (!channel.selected) return;
  try {
    await api("POST", channelPath(`/${action}`), body);
    notice(`${action} sent to #${channel.selected}`);
  } catch (err) { report(err); }
}

function splitNames(text) {
  return text.split(",").map((name) => name.trim()).filter(Boolean);
}

function wireChannels() {
  $("channel-pause").addEventListener("click", () => channelSignal("pause", { reason: "paused from the admin page" }));
  $("channel-resume").addEventListener("click", () => channelSignal("resume"));
  $("channel-end").addEventListener("click", () => {
    if (confirm(`End channel #${channel.selected} and its agents' conversations?`)) channelSignal("end", { reason: "ended from the admin page" });
  });
  $("channel-post").addEventListener("submit", async (e) => {
    e.preventDefault();
    const content = $("channel-text").value;
    if (!content.trim() || !channel.selected) return;
    try {
      await api("POST", `${channelPath("/posts")}?wait=false`, { content, author: $("channel-author").value.trim() });
      $("channel-text").value = "";
      await loadChannelMessages();
    } catch (err) { report(err); }
  });
  $("new-channel").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { agents: splitNames($("new-channel-agents").value), people: splitNames($("new-channel-people").value) };
    if ($("new-channel-id").value.trim()) body.channel_id = $("new-channel-id").value.trim();
    try {
      const created = await api("POST", "/channels", body);
      await refreshChannels();
      openChannel(created.channel_id);
    } catch (err) { report(err); }
  });
}

wireChannels();
