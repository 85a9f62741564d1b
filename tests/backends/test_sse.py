"""myninja.backends.sse.LineSplitter on its own: the same lines whatever the chunking of the bytes.

The gateway tests stream through a real server; here every way of cutting a body in up to
three pieces is tried, which no server run could cover."""

from __future__ import annotations

import itertools

from myninja.backends.sse import LineSplitter

# A byte-order mark, raw line separators inside a line, every line end, a four-byte
# character, a blank line made of CR CR, and an unterminated last line.
BODY = "\ufeffdata: x\u2028y\r\ndata: \u2029\u0085é\rid: 7\n\r\n:c😀\r\rtail".encode()
LINES = ["data: x\u2028y", "data: \u2029\u0085é", "id: 7", "", ":c😀", "", "tail"]


def split(*pieces: bytes) -> list[str]:
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)]
    return lines + splitter.close()


def test_whole_body() -> None:
    assert split(BODY) == LINES


def test_every_cut_in_two_or_three_pieces() -> None:
    for i, j in itertools.combinations_with_replacement(range(len(BODY) + 1), 2):
        assert split(BODY[:i], BODY[i:j], BODY[j:]) == LINES, (i, j)


def test_one_byte_at_a_time() -> None:
    assert split(*(BODY[i : i + 1] for i in range(len(BODY)))) == LINES


def test_a_cr_at_the_end_ends_the_line_once() -> None:
    assert split(b"a\r") == ["a"]
    assert split(b"a\r", b"") == ["a"]
    assert split(b"a\r", b"\n", b"\n") == ["a", ""]


def test_bad_utf8_becomes_the_replacement_character() -> None:
    assert split(b"data: \xff\xe2\x80\n") == ["data: \ufffd\ufffd"]
