"""Where a request ends, as the serving worker's loop judges it before a thread sees it.

COMPLETE hands the buffered request over whole; INCOMPLETE waits for more (within the
deadline); INVALID hands over what is buffered for gunicorn to refuse (400, 431, 501);
OVERSIZED hands over only the head of a request whose body over 4 MiB has been drained, for
the app's 413.
"""

from __future__ import annotations

import pytest

from webhook.worker import Framing, RequestFramer

HEAD = b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


def _bytewise(data: bytes, framer: RequestFramer | None = None) -> list[Framing]:
    """The verdict after each byte, as a trickling client would deliver them."""
    framer = framer or RequestFramer()
    buffer = bytearray()
    verdicts = []
    for byte in data:
        buffer.append(byte)
        verdicts.append(framer.feed(buffer))
    return verdicts


def _feed(data: bytes, framer: RequestFramer | None = None) -> Framing:
    return (framer or RequestFramer()).feed(bytearray(data))


def test_content_length_body_is_complete_at_its_last_byte() -> None:
    verdicts = _bytewise(HEAD + b"Content-Length: 5\r\n\r\nhello")
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}


def test_no_body_is_complete_at_the_blank_line() -> None:
    verdicts = _bytewise(b"GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n")
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}


def test_leading_empty_lines_are_skipped() -> None:
    assert _feed(b"\r\n\r\n" + HEAD) is Framing.INCOMPLETE
    assert _feed(b"\r\n\r\n" + HEAD + b"Content-Length: 2\r\n\r\n{}") is Framing.COMPLETE


def test_chunked_body_is_complete_after_the_last_chunk_and_trailers() -> None:
    verdicts = _bytewise(CHUNKED + b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}
    assert _bytewise(CHUNKED + b"1\r\na\r\n0\r\nX-T: 1\r\n\r\n")[-1] is Framing.COMPLETE


def test_a_chunked_body_is_kept_whole_in_the_buffer() -> None:
    request = CHUNKED + b"3\r\nabc\r\n0\r\n\r\n"
    buffer = bytearray(request)
    assert RequestFramer().feed(buffer) is Framing.COMPLETE
    assert bytes(buffer) == request


def test_pipelined_bytes_after_the_request_still_complete_it() -> None:
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert _feed(first + b"POST /validate HTTP/1.1\r\n") is Framing.COMPLETE


def test_the_framer_starts_over_after_reset() -> None:
    framer = RequestFramer()
    assert _feed(CHUNKED + b"0\r\n\r\n", framer) is Framing.COMPLETE
    framer.reset()
    assert _feed(HEAD + b"Content-Length: 3\r\n\r\nab", framer) is Framing.INCOMPLETE


def test_expect_100_continue_is_noticed() -> None:
    framer = RequestFramer()
    request = HEAD + b"Expect: 100-Continue\r\nContent-Length: 9\r\n\r\n"
    assert _feed(request, framer) is Framing.INCOMPLETE
    assert framer.expects_continue


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        HEAD + b"Content-Length: +5\r\n\r\n",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        CHUNKED + b"zz\r\n",
        CHUNKED + b"1\r\naXY",
        HEAD + b"X-Folded: a\r\n  b\r\n\r\n",
        HEAD + b"Content-Length : 5\r\n\r\n",
        b"POST /validate HTTP/1.1\nHost: webhook\n\n",
        HEAD + b"X-Big: " + b"a" * (64 * 1024 + 1),
    ],
    ids=[
        "two-content-lengths",
        "signed-content-length",
        "length-and-chunked",
        "chunked-not-alone",
        "bad-chunk-size",
        "chunk-without-crlf",
        "folded-header",
        "space-before-colon",
        "bare-lf",
        "head-over-the-limit",
    ],
)
def test_what_only_gunicorn_may_judge_is_invalid(request_bytes: bytes) -> None:
    assert _feed(request_bytes) is Framing.INVALID


def test_a_body_of_exactly_the_limit_is_buffered() -> None:
    framer = RequestFramer(body_limit=10, drain_limit=100)
    assert _feed(HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 9, framer) is Framing.INCOMPLETE
    framer.reset()
    assert _feed(HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 10, framer) is Framing.COMPLETE
    framer.reset()
    assert _feed(CHUNKED + b"5\r\naaaaa\r\n5\r\nbbbbb\r\n0\r\n\r\n", framer) is Framing.COMPLETE


def test_a_body_over_the_limit_is_drained_then_oversized() -> None:
    """Its bytes are dropped as they come (the buffer keeps the head), and once the whole
    body is in the head alone goes to the app, which answers 413."""
    framer = RequestFramer(body_limit=10, drain_limit=100)
    head = HEAD + b"Content-Length: 30\r\n\r\n"
    buffer = bytearray(head + b"x" * 20)
    assert framer.feed(buffer) is Framing.INCOMPLETE
    assert bytes(buffer) == head
    buffer += b"x" * 10
    assert framer.feed(buffer) is Framing.OVERSIZED
    assert framer.oversized_head() == head


def test_a_chunked_body_over_the_limit_is_drained_and_its_head_says_its_length() -> None:
    """The app is told the length it would have read (over the limit) in a Content-Length
    instead of the chunked framing, whose body is gone."""
    framer = RequestFramer(body_limit=10, drain_limit=100)
    verdicts = _bytewise(CHUNKED + b"8\r\naaaaaaaa\r\n8\r\nbbbbbbbb\r\n0\r\n\r\n", framer)
    assert verdicts[-1] is Framing.OVERSIZED
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}
    assert framer.oversized_head() == HEAD + b"Content-Length: 16\r\n\r\n"


def test_draining_stops_at_the_drain_limit() -> None:
    framer = RequestFramer(body_limit=10, drain_limit=20)
    assert _feed(HEAD + b"Content-Length: 21\r\n\r\n", framer) is Framing.OVERSIZED
    framer.reset()
    assert _feed(CHUNKED + b"20\r\n" + b"x" * 19, framer) is Framing.INCOMPLETE
    framer.reset()
    assert _feed(CHUNKED + b"20\r\n" + b"x" * 20, framer) is Framing.OVERSIZED


def test_a_framing_error_while_draining_is_still_oversized() -> None:
    framer = RequestFramer(body_limit=4, drain_limit=100)
    assert _feed(CHUNKED + b"5\r\naaaaa\r\nzz\r\n", framer) is Framing.OVERSIZED
