// The notification centre (GET /notifications): a badge in the header with how many things want a
// person — approvals waiting, open monitoring alerts, channel budgets that ended a chain — and the
// list, newest first, opened and closed by the badge's button. Loaded after app.js and uses its
// helpers ($, el, api, report, state, openChannel); app.js calls refreshNotifications() at sign-in
// and every 5 s. Text from the server goes on the page with textContent only.
"use strict";

const NOTIFICATION_ICONS = { approval: "⚠", alert: "🔔", budget: "⏹", refused: "✋" };

async function refreshNotifications() {
  if (!state.key) return;
  try {
    const found = await api("GET", "/notifications?limit=50");
    const badge = $("notif-count");
    badge.textContent = String(found.count);
    badge.classList.toggle("alert", found.count > 0);
    $("notif-button").setAttribute("aria-label", `${found.count} notifications`);
    $("notifications").replaceChildren(...found.items.map(notificationItem));
    $("notifications-empty").hidden = found.items.length > 0;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) report(err);
  }
}

function notificationItem(n) {
  const when = n.at ? new Date(n.at).toLocaleString() : "";
  const item = el("li", { class: `notification ${n.kind}`, "data-kind": n.kind },
    el("span", { class: "icon", "aria-hidden": "true" }, NOTIFICATION_ICONS[n.kind] || "•"), " ",
    el("strong", {}, n.title), " ", el("span", { class: "muted" }, when),
    n.detail ? el("div", { class: "muted" }, n.detail) : "");
  if (n.data && n.data.conversation_id) item.setAttribute("data-conversation", n.data.conversation_id);
  const channelId = n.data && n.data.channel_id;
  if (channelId && typeof openChannel === "function") item.addEventListener("click", () => openChannel(channelId));
  return item;
}

document.addEventListener("DOMContentLoaded", () => {
  $("notif-button").addEventListener("click", () => {
    const panel = $("notifications-panel");
    panel.hidden = !panel.hidden;
    $("notif-button").setAttribute("aria-expanded", String(!panel.hidden));
  });
});
