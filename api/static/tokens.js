// Live tokens on the admin page (issue 16): the model's reply shown while it is written.
//
// A `token` event places its text at its offset in the reply being written at transcript `seq`
// (one <li class="assistant streaming"> per seq); `token_reset` (a retried model call) empties it;
// when the stored message of that seq arrives (loadMessages), the streaming line is replaced by it.
"use strict";

const streamingReplies = new Map(); // seq -> { attempt, text }

function streamingLine(seq) {
  let li = document.querySelector(`#messages li.streaming[data-stream-seq="${seq}"]`);
  if (!li) {
    li = el("li", { class: "assistant streaming", "data-stream-seq": String(seq) },
      el("span", { class: "role" }, "assistant · writing"), el("span", { class: "text" }, ""));
    $("messages").append(li);
  }
  return li;
}

function showToken(data) {
  if (data.seq <= state.lastSeq) return; // already stored and shown
  const reply = streamingReplies.get(data.seq) || { attempt: data.attempt, text: "" };
  if (data.attempt < reply.attempt) return; // a batch of an attempt that was reset
  if (data.attempt > reply.attempt) { reply.attempt = data.attempt; reply.text = ""; }
  reply.text = reply.text.slice(0, data.offset) + data.text;
  streamingReplies.set(data.seq, reply);
  streamingLine(data.seq).querySelector(".text").textContent = reply.text;
  const box = $("chat");
  box.scrollTop = box.scrollHeight;
}

function resetTokens(data) {
  streamingReplies.set(data.seq, { attempt: data.attempt, text: "" });
  const li = streamingLine(data.seq);
  li.querySelector(".text").textContent = "";
  li.querySelector(".role").textContent = `assistant · writing (attempt ${data.attempt}: the model starts over)`;
}

// The stored reply of `seq` is on the page: the streamed one goes.
function replyStored(seq) {
  streamingReplies.delete(seq);
  const li = document.querySelector(`#messages li.streaming[data-stream-seq="${seq}"]`);
  if (li) li.remove();
}

function clearStreaming() {
  streamingReplies.clear();
}
