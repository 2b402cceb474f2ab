// Daemonflow admin page: plain JS, no build step. Talks to the same API as everyone else.
//
// The key is typed once and kept in sessionStorage (or localStorage when "remember" is ticked).
// Live events are read with fetch() streaming, not EventSource: EventSource cannot send the
// Authorization header, and a key in a URL would end up in logs. Everything from the server is
// put on the page with textContent, never as HTML.
"use strict";

const KEY_NAME = "daemonflow.apiKey";
const state = {
  key: sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || "",
  selected: null,      // conversation id shown in the chat view
  lastSeq: 0,          // last message seq shown
  lastEventId: 0,      // last live event seen (Last-Event-ID on reconnect)
  stream: null,        // AbortController of the live event stream
  timers: [],
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function notice(text, isError = false) {
  const box = $("notice");
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.hidden = !text;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    if (res.status === 401) signedOut("The API key was refused; type it again.");
    throw new ApiError(res.status, data || {});
  }
  return data;
}

function report(err) {
  notice(err instanceof ApiError ? `${err.problem.title || "Error"}: ${err.message}` : String(err), true);
}

// --- key ---------------------------------------------------------------------------------------

function signedOut(message) {
  sessionStorage.removeItem(KEY_NAME);
  localStorage.removeItem(KEY_NAME);
  state.key = "";
  stopStream();
  state.timers.forEach(clearInterval);
  state.timers = [];
  $("app").hidden = true;
  $("key-form").hidden = false;
  $("whoami").hidden = true;
  if (message) notice(message, true);
}

async function signIn(key, remember) {
  state.key = key;
  try {
    await api("GET", "/agents").then(fillAgents);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
    return;
  }
  (remember ? localStorage : sessionStorage).setItem(KEY_NAME, key);
  $("key-form").hidden = true;
  $("whoami").hidden = false;
  $("key-status").textContent = "key accepted";
  $("app").hidden = false;
  notice("");
  refreshConversations();
  refreshApprovals();
  refreshHealth();
  refreshDashboard();
  refreshChannels();
  refreshMessages();  // messages.js
  state.timers.push(setInterval(refreshMessages, 3000));
  refreshNotifications();  // notifications.js
  state.timers.push(setInterval(refreshNotifications, 5000));
  state.timers.push(setInterval(refreshConversations, 3000));
  state.timers.push(setInterval(refreshChannels, 3000));
  state.timers.push(setInterval(refreshApprovals, 2000));
  state.timers.push(setInterval(refreshHealth, 10000));
  state.timers.push(setInterval(refreshDashboard, DASHBOARD_REFRESH_MS));
}

// --- conversations -------------------------------------------------------------------------------

function fillAgents(agents) {
  const select = $("new-agent");
  select.replaceChildren(...agents.map((a) => el("option", { value: a.name }, `${a.name}${a.description ? " — " + a.description : ""}`)));
}

async function refreshConversations() {
  try {
    const running = $("running-only").checked ? "&running=true" : "";
    const page = await api("GET", `/conversations?page_size=100${running}`);
    $("conversations").replaceChildren(
      ...page.conversations.map((c) => {
        const shown = c.execution === "running" ? c.state || "starting" : c.state === "archived" ? "archived" : c.execution;
        const item = el("li", { "data-conversation": c.conversation_id, onclick: () => select(c.conversation_id) },
          el("span", { class: "cid", title: c.conversation_id }, `${c.conversation_id} · ${c.agent || "?"}`),
          el("span", { class: `badge ${shown}` }, c.awaiting_approval ? "⚠ approval" : shown));
        if (c.conversation_id === state.selected) item.classList.add("selected");
        return item;
      })
    );
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
  }
}

async function select(conversationId) {
  if (state.selected === conversationId) return;
  stopStream();
  closeChannel();
  state.selected = conversationId;
  state.lastSeq = 0;
  state.lastEventId = 0;
  clearStreaming(); // tokens.js
  $("messages").replaceChildren();
  $("chat-empty").hidden = true;
  $("chat-view").hidden = false;
  $("chat-title").textContent = conversationId;
  document.querySelectorAll("#conversations li").forEach((li) =>
    li.classList.toggle("selected", li.dataset.conversation === conversationId));
  await loadStatus();
  await loadMessages();
  follow(conversationId);
}

async function loadStatus() {
  const id = state.selected;
  try {
    const detail = await api("GET", `/conversations/${encodeURIComponent(id)}`);
    if (id !== state.selected) return;
    showState(detail.execution === "running" || detail.status.state === "archived" ? detail.status.state : "ended");
    $("auto-accept").checked = detail.status.auto_accept;
  } catch (err) { report(err); }
}

function showState(value) {
  const badge = $("chat-state");
  badge.textContent = value;
  badge.className = `badge ${value}`;
}

// Stored messages are appended once, by seq; the last page ends with what the model has not seen
// yet (injected notes, queued messages: `pending`), redrawn after the stored ones on every load.
async function loadMessages() {
  const id = state.selected;
  try {
    for (;;) {
      const page = await api("GET", `/conversations/${encodeURIComponent(id)}/messages?after=${state.lastSeq}&limit=200`);
      if (id !== state.selected) return;
      $("messages").querySelectorAll("li.pending").forEach((li) => li.remove());
      for (const m of page.messages) {
        if (m.pending) {
          $("messages").append(el("li", { class: `${m.role} pending` }, el("span", { class: "role" }, `${m.role} · pending`), m.content));
          continue;
        }
        if (m.seq <= state.lastSeq) continue;
        replyStored(m.seq); // tokens.js
        $("messages").append(el("li", { class: m.role, "data-seq": String(m.seq) }, el("span", { class: "role" }, m.role), m.content));
        state.lastSeq = m.seq;
      }
      if (page.next_after === null) break;
    }
    const box = $("chat");
    box.scrollTop = box.scrollHeight;
  } catch (err) { report(err); }
}

function eventLine(text) {
  $("messages").append(el("li", { class: "event" }, text));
}

// --- live events (fetch streaming, so the key goes in a header) ----------------------------------

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function follow(conversationId) {
  return streamEvents(`/conversations/${encodeURIComponent(conversationId)}/events`,
    (event) => onEvent(conversationId, event), $("chat-stream"));
}

// Reads a conversation's or a channel's events; handle(event) returns true once its subject ended.
// Reconnects after a drop, resuming after state.lastEventId.
async function streamEvents(path, handle, label) {
  const controller = new AbortController();
  state.stream = controller;
  label.textContent = "live";
  let ended = false;
  try {
    const res = await fetch(path, {
      headers: { Authorization: `Bearer ${state.key}`, "Last-Event-ID": String(state.lastEventId) },
      signal: controller.signal,
    });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = parseEvent(block);
        if (event && handle(event)) ended = true;
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof ApiError) { report(err); return; }
  }
  if (state.stream !== controller) return;
  label.textContent = ended ? "ended" : "reconnecting…";
  if (!ended) setTimeout(() => { if (state.stream === controller) streamEvents(path, handle, label); }, 2000);
}

function parseEvent(block) {
  const event = { id: null, type: "message", data: "" };
  let seen = false;
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
    else if (field === "data") { event.data += (event.data ? "\n" : "") + value; seen = true; }
  }
  if (!seen) return null;
  try { event.data = JSON.parse(event.data); } catch { /* leave as text */ }
  return event;
}

// Returns true when the conversation has ended.
function onEvent(conversationId, event) {
  if (conversationId !== state.selected) return false;
  if (event.id !== null) state.lastEventId = Number(event.id);
  const data = event.data && event.data.data !== undefined ? event.data.data : event.data;
  switch (event.type) {
    case "state":
      showState(data.state);
      eventLine(`state: ${data.details || data.state}`);
      return data.state === "ended" || data.state === "archived";  // archived: a new message revives it
    case "message":
      if (data.seq > state.lastSeq) loadMessages();
      return false;
    case "tool_call":
      eventLine(`tool call ${data.tool_call_id}: ${data.tool} → ${data.decision} (${data.source || ""})`);
      return false;
    case "approval_requested":
      eventLine(`approval requested for ${data.tool_call_id}: ${data.tool}`);
      refreshApprovals();
      return false;
    case "approval_decided":
      eventLine(`approval ${data.tool_call_id}: ${data.decision}${data.approver ? " by " + data.approver : ""}`);
      refreshApprovals();
      return false;
    case "tool_result":
      eventLine(`tool result ${data.tool_call_id}: ${data.success ? "ok" : "failed"}${data.exit_code !== null && data.exit_code !== undefined ? " (exit " + data.exit_code + ")" : ""}`);
      return false;
    case "token": // tokens.js
      showToken(data);
      return false;
    case "token_reset":
      resetTokens(data);
      return false;
    case "turn_completed":
      eventLine(`turn ${data.turn} completed`);
      return false;
    case "gap":
      eventLine(`(events ${data.missing_from}–${data.missing_to} are no longer kept)`);
      loadMessages();
      return false;
    case "error":
      $("chat-stream").textContent = `stream problem: ${data.detail}`;
      return false;
    case "recovered":
      $("chat-stream").textContent = "live";
      return false;
    default:
      eventLine(`${event.type}`);
      return false;
  }
}

// --- approvals ---------------------------------------------------------------------------------

async function refreshApprovals() {
  if (!state.key) return;
  let items;
  try {
    items = await api("GET", "/approvals");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
    return;
  }
  $("approvals-count").textContent = String(items.length);
  showChannelApprovals(items);
  const list = $("approvals");
  const open = new Set([...list.querySelectorAll("li.editing")].map((li) => li.dataset.key));
  list.replaceChildren(...items.map((item) => approvalCard(item, open.has(`${item.conversation_id}/${item.tool_call_id}`))));
}

function approvalCard(item, editing) {
  const key = `${item.conversation_id}/${item.tool_call_id}`;
  const exact = JSON.stringify(item.arguments, null, 2);
  const editor = el("textarea", { rows: "4", "aria-label": "edited arguments (JSON)" });
  editor.value = exact;
  const reason = el("input", { type: "text", placeholder: "reason (told to the model on deny)", "aria-label": "reason" });
  const editBox = el("div", { class: "edit" }, editor,
    el("button", { type: "button", class: "primary", onclick: () => {
      let args;
      try { args = JSON.parse(editor.value); } catch (err) { notice(`edited arguments are not JSON: ${err.message}`, true); return; }
      decide(item, "edit", { arguments: args, reason: reason.value || null });
    } }, "Run edited arguments"));
  editBox.hidden = !editing;
  const card = el("li", { "data-key": key, "data-tool-call": item.tool_call_id },
    el("div", {}, el("strong", {}, item.tool), " ", el("span", { class: "muted" }, `call ${item.tool_call_id}`)),
    el("div", { class: "muted" }, "in ",
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(item.conversation_id); } }, item.conversation_id),
      item.agent ? ` (${item.agent})` : "", item.channel ? ` · channel #${item.channel}` : ""),
    item.reason ? el("div", { class: "muted" }, `why: ${item.reason}`) : "",
    el("pre", { class: "args", title: `sha256 ${item.args_hash}` }, exact),
    reason,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", onclick: () => decide(item, "approve", { reason: reason.value || null }) }, "Approve"),
      el("button", { type: "button", onclick: () => decide(item, "approve_always", { reason: reason.value || null }) }, "Approve always"),
      el("button", { type: "button", class: "danger", onclick: () => decide(item, "deny", { reason: reason.value || null }) }, "Deny"),
      el("button", { type: "button", onclick: () => { editBox.hidden = !editBox.hidden; card.classList.toggle("editing", !editBox.hidden); } }, "Edit…")),
    editBox);
  if (editing) card.classList.add("editing");
  return card;
}

async function decide(item, decision, extra) {
  try {
    const result = await api("POST", `/approvals/${encodeURIComponent(item.conversation_id)}/${encodeURIComponent(item.tool_call_id)}`,
      { decision, arguments_hash: item.args_hash, ...extra });
    const runs = result.arguments === null ? "nothing runs" : `runs ${JSON.stringify(result.arguments)}`;
    notice(`${result.decision} applied to ${item.tool} (${item.tool_call_id}): ${runs}`);
  } catch (err) { report(err); }
  refreshApprovals();
}

// --- health --------------------------------------------------------------------------------------

async function refreshHealth() {
  if (!state.key) return;
  let report_;
  try {
    const res = await fetch("/health", { headers: { Authorization: `Bearer ${state.key}` } });
    report_ = await res.json();
    if (res.status === 401) return signedOut("The API key was refused; type it again.");
  } catch (err) { return; }
  const badge = $("health-status");
  badge.textContent = report_.status;
  badge.className = `badge ${report_.status}`;
  const rows = [];
  const components = [["temporal", report_.temporal], ["store", report_.store],
    ...Object.entries(report_.model_servers || {}), ["workers", report_.workers]];
  for (const [name, c] of components) {
    if (!c) continue;
    rows.push(el("dt", {}, `${c.ok ? "✔" : "✖"} ${name}`),
      el("dd", {}, `${c.latency_ms !== null && c.latency_ms !== undefined ? c.latency_ms.toFixed(1) + " ms · " : ""}${c.detail}`));
  }
  $("health").replaceChildren(...rows);
}

// --- actions -------------------------------------------------------------------------------------

async function control(path, body) {
  if (!state.selected) return;
  try {
    await api(path === "auto-accept" ? "PUT" : "POST", `/conversations/${encodeURIComponent(state.selected)}/${path}`, body);
    notice(`${path} sent`);
  } catch (err) { report(err); }
}

function wire() {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("api-key").value.trim(), $("remember-key").checked);
    $("api-key").value = "";
  });
  $("forget-key").addEventListener("click", () => signedOut(""));
  $("running-only").addEventListener("change", refreshConversations);
  $("btn-pause").addEventListener("click", () => control("pause", { reason: "paused from the admin page" }));
  $("btn-resume").addEventListener("click", () => control("resume"));
  $("btn-end").addEventListener("click", () => {
    if (confirm(`End conversation ${state.selected} for good?`)) control("end", { reason: "ended from the admin page" });
  });
  $("auto-accept").addEventListener("change", (e) => control("auto-accept", { enabled: e.target.checked }));
  $("send-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("send-text").value;
    if (!text.trim() || !state.selected) return;
    const mode = $("send-mode").value;
    const id = encodeURIComponent(state.selected);
    try {
      if (mode === "message") await api("POST", `/conversations/${id}/messages?wait=false`, { content: text });
      else await api("POST", `/conversations/${id}/inject`, { content: text, role: mode === "inject-system" ? "system" : "user", priority: "next" });
      $("send-text").value = "";
      await loadMessages();  // shown at once, as pending until the model sees it
    } catch (err) { report(err); }
  });
  $("new-conversation").addEventListener("submit", async (e) => {
    e.preventDefault();
    const message = $("new-message").value;
    try {
      const created = await api("POST", "/conversations?wait=false", { agent: $("new-agent").value, message: message.trim() ? message : null });
      $("new-message").value = "";
      await refreshConversations();
      select(created.conversation_id);
    } catch (err) { report(err); }
  });
}

wire();
if (state.key) signIn(state.key, Boolean(localStorage.getItem(KEY_NAME)));
