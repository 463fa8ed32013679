"""A small Server-Sent Events parser that follows the WHATWG HTML rules, and nothing else.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- The stream is decoded as UTF-8 (invalid bytes become U+FFFD); one leading BOM is dropped.
- CRLF, LF and a lone CR all end a line, also when a CRLF pair is split across two chunks.
- `field: value` — only one space after the colon is stripped; a line without a colon is a field
  with an empty value; a line starting with a colon is a comment.
- `data` lines are joined with LF; `event` sets the type; `id` sets the last-event-id buffer unless
  it contains NUL (the id is sticky: events without `id:` keep the last one); `retry` only counts
  when it is all ASCII digits; other fields are ignored.
- A blank line dispatches. The event source's "last event ID string" is set from the buffer at
  every dispatch attempt (even when no event fires because the data buffer is empty). An event cut
  off by the end of the stream is discarded.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field


@dataclass
class Event:
    type: str
    data: str
    last_event_id: str
    # The id field of this very event, if it had one (None: it inherited the sticky id).
    own_id: str | None = None
    _json: object = field(default=None, repr=False)

    @property
    def json(self):
        if self._json is None:
            self._json = json.loads(self.data)
        return self._json

    @property
    def id(self) -> str:
        return self.last_event_id


class SSEParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._started = False
        self._after_cr = False
        self._data: list[str] = []
        self._has_data = False
        self._type = ""
        self._id_buffer = ""
        self._own_id: str | None = None
        # What EventSource would send as Last-Event-ID when reconnecting now.
        self.last_event_id = ""
        self.retry: int | None = None
        self.comments: list[str] = []
        self.events: list[Event] = []
        self.bytes_fed = 0

    def feed(self, chunk: bytes) -> list[Event]:
        """Feeds raw stream bytes; returns the events dispatched by them (also kept in .events)."""
        self.bytes_fed += len(chunk)
        text = self._decoder.decode(chunk)
        return self._feed_text(text)

    def _feed_text(self, text: str) -> list[Event]:
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._after_cr and text:
            # The LF of a CRLF pair that was split across two chunks.
            if text.startswith("\n"):
                text = text[1:]
            self._after_cr = False
        buf = self._text + text
        out: list[Event] = []
        start = 0
        n = len(buf)
        while True:
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            if cr < 0 and lf < 0:
                break
            if cr >= 0 and (lf < 0 or cr < lf):
                line = buf[start:cr]
                if cr + 1 < n:
                    start = cr + 2 if buf[cr + 1] == "\n" else cr + 1
                else:
                    start = cr + 1
                    self._after_cr = True
            else:
                line = buf[start:lf]
                start = lf + 1
            ev = self._line(line)
            if ev is not None:
                out.append(ev)
        self._text = buf[start:]
        self.events.extend(out)
        return out

    def close(self) -> None:
        """End of stream: whatever was not dispatched is discarded."""
        self._decoder.decode(b"", final=True)
        self._text = ""
        self._data = []
        self._has_data = False
        self._type = ""

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
                self._own_id = value
        elif name == "retry":
            if value and all("0" <= c <= "9" for c in value):
                self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self.last_event_id = self._id_buffer
        own_id, self._own_id = self._own_id, None
        if not self._has_data:
            self._data = []
            self._type = ""
            return None
        ev = Event(
            type=self._type or "message",
            data="\n".join(self._data),
            last_event_id=self.last_event_id,
            own_id=own_id,
        )
        self._data = []
        self._has_data = False
        self._type = ""
        return ev


def _self_test() -> None:
    p = SSEParser()
    evs = p.feed(b"\xef\xbb\xbfretry: 500\n\n: hi\r\nid: 1\r\ndata:a\r")
    assert evs == [] and p.retry == 500 and p.comments == [" hi"]
    evs = p.feed(b"\ndata:  b\r\rdata\nevent: x\nid\n\n")
    assert [e.data for e in evs] == ["a\n b", ""], evs
    assert evs[0].last_event_id == "1" and evs[1].type == "x" and evs[1].last_event_id == ""
    evs = p.feed(b"id: 7\n\ndata: q\n\nretry: 1x\n\nid: a\x00b\ndata: z\n\n")
    assert [e.last_event_id for e in evs] == ["7", "7"] and p.retry == 500
    p.feed(b"id: 9\ndata: cut")
    p.close()
    assert p.last_event_id == "7"


_self_test()
