"""Reading a conversation's live SSE stream as a client does: frames, and the reply text they build."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Frame:
    id: int | None
    event: str
    data: dict


@dataclass
class Replies:
    """The text a client shows per reply seq: token batches placed at their offset, a reset drops
    what earlier attempts showed, the stored ``message`` replaces it all."""

    text: dict[int, str] = field(default_factory=dict)
    attempt: dict[int, int] = field(default_factory=dict)
    stored: dict[int, str] = field(default_factory=dict)
    misplaced: list[dict] = field(default_factory=list)
    """Token batches that did not start where the shown text ended (lost or repeated text)."""

    def apply(self, frame: Frame) -> None:
        data = frame.data
        if frame.event == "token_reset":
            self.text[data["seq"]] = ""
            self.attempt[data["seq"]] = data["attempt"]
        elif frame.event == "token":
            seq = data["seq"]
            if data["attempt"] != self.attempt.get(seq, data["attempt"]):
                return  # a batch of an attempt already reset
            self.attempt[seq] = data["attempt"]
            shown = self.text.get(seq, "")
            if data["offset"] != len(shown):
                self.misplaced.append(data)
            self.text[seq] = shown[: data["offset"]] + data["text"]
        elif frame.event == "message" and data["data"]["role"] == "assistant":
            self.stored[data["data"]["seq"]] = data["data"]["content"]


def parse(lines: list[str]) -> Frame | None:
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        fields[name] = value
    if "event" not in fields:
        return None
    return Frame(int(fields["id"]) if "id" in fields else None, fields["event"], json.loads(fields.get("data", "{}")))


async def read_frames(http: httpx.AsyncClient, cid: str, until: Callable[[list[Frame]], bool],
                      last_event_id: int | None = None) -> list[Frame]:  # fmt: skip
    """Frames of ``/conversations/{cid}/events`` until ``until(frames)`` holds or the stream ends."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    frames: list[Frame] = []
    pending: list[str] = []
    async with http.stream("GET", f"/conversations/{cid}/events", headers=headers) as stream:
        assert stream.status_code == 200, await stream.aread()
        async for line in stream.aiter_lines():
            if line:
                if not line.startswith(":"):
                    pending.append(line)
                continue
            frame, pending = parse(pending), []
            if frame is not None:
                frames.append(frame)
                if until(frames):
                    return frames
    return frames


def reply_stored(seq: int | None = None) -> Callable[[list[Frame]], bool]:
    """Until an assistant ``message`` event (of ``seq``, or any)."""

    def done(frames: list[Frame]) -> bool:
        last = frames[-1]
        return last.event == "message" and last.data["data"]["role"] == "assistant" and seq in (None, last.data["data"]["seq"])

    return done


def replies(frames: list[Frame]) -> Replies:
    shown = Replies()
    for frame in frames:
        shown.apply(frame)
    return shown
