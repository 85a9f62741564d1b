"""Server-sent events read from an httpx response, lines split as the SSE spec splits them.

httpx's `aiter_lines()` splits with `str.splitlines()`, which also breaks at U+2028, U+2029,
U+0085 and a few control characters. JSON may hold those raw (pydantic's `to_json` writes
them so), so a `data:` line would come apart mid-string. Here a line ends at CR, LF or CRLF
only, and the bytes are decoded as UTF-8 whatever charset the headers claim, as the spec says.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator

import httpx

_LINE_END = re.compile(r"\r\n|\r|\n")
SSE_FIELDS = frozenset({"data", "event", "id", "retry"})


class NotServerSentEvents(ValueError):
    """A line in a stream that is no server-sent event field (a chunk without `data: `, say)."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class LineSplitter:
    """Bytes in, whole lines out, in any chunking: a character or a CRLF may straddle two."""

    def __init__(self) -> None:
        # utf-8-sig drops the one byte-order mark the spec allows at the start of a stream.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._partial: list[str] = []  # text since the last line end
        self._after_cr = False  # the last text ended in CR: an LF next is part of that line end

    def feed(self, data: bytes) -> list[str]:
        return self._split(self._decoder.decode(data))

    def close(self) -> list[str]:
        """The lines left at the end of the stream, an unterminated last one included."""
        lines = self._split(self._decoder.decode(b"", final=True))
        if self._partial:
            lines.append("".join(self._partial))
            self._partial = []
        return lines

    def _split(self, text: str) -> list[str]:
        if not text:  # the decoder is holding half a character; nothing has changed yet
            return []
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        self._after_cr = text.endswith("\r")
        *lines, rest = _LINE_END.split(text)
        if lines:
            lines[0] = "".join(self._partial) + lines[0]
            self._partial = []
        if rest:
            self._partial.append(rest)
        return lines


async def sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The lines of an event stream, without their line ends."""
    splitter = LineSplitter()
    async for data in response.aiter_bytes():  # content-decoded (gzip), not yet text
        for line in splitter.feed(data):
            yield line
    for line in splitter.close():
        yield line


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent event stream, one event at a time.

    Comments (":"), event names, ids and retry hints carry nothing we use. Any other line is
    refused rather than skipped as the SSE spec would: from a chat-completions server it is a
    broken chunk (one sent without its `data: ` prefix), and skipping it would drop part of the
    reply without a word."""
    lines: list[str] = []
    async for line in sse_lines(response):
        if line == "":
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
        elif not line.startswith(":") and line.partition(":")[0] not in SSE_FIELDS:
            raise NotServerSentEvents(line)
    if lines:
        yield "\n".join(lines)
