"""Where a request ends, as the serving worker's loop judges it before a thread sees it.

COMPLETE hands the buffered request over whole; INCOMPLETE waits for more (within the
deadline); UNBUFFERED hands it over at once for gunicorn and the app to answer (413, 400,
431), because it is too large to buffer or framed in a way only gunicorn may judge.
"""

from __future__ import annotations

import pytest

from webhook.worker import Framing, RequestFramer

HEAD = b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"


def _feed_bytewise(data: bytes, framer: RequestFramer | None = None) -> list[Framing]:
    """The verdict after each byte, as a trickling client would deliver them."""
    framer = framer or RequestFramer()
    return [framer.feed(data[: end + 1]) for end in range(len(data))]


def test_content_length_body_is_complete_at_its_last_byte() -> None:
    request = HEAD + b"Content-Length: 5\r\n\r\nhello"
    verdicts = _feed_bytewise(request)
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}


def test_no_body_is_complete_at_the_blank_line() -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n"
    verdicts = _feed_bytewise(request)
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}


def test_leading_empty_lines_are_skipped() -> None:
    framer = RequestFramer()
    assert framer.feed(b"\r\n\r\n" + HEAD) is Framing.INCOMPLETE
    assert framer.feed(b"\r\n\r\n" + HEAD + b"Content-Length: 2\r\n\r\n{}") is Framing.COMPLETE


def test_chunked_body_is_complete_after_the_last_chunk_and_trailers() -> None:
    request = HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    verdicts = _feed_bytewise(request)
    assert verdicts[-1] is Framing.COMPLETE
    assert set(verdicts[:-1]) == {Framing.INCOMPLETE}
    with_trailer = HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n"
    assert _feed_bytewise(with_trailer)[-1] is Framing.COMPLETE


def test_pipelined_bytes_after_the_request_still_complete_it() -> None:
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert RequestFramer().feed(first + b"POST /validate HTTP/1.1\r\n") is Framing.COMPLETE


def test_the_framer_starts_over_after_reset() -> None:
    framer = RequestFramer()
    assert framer.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n") is Framing.COMPLETE
    framer.reset()
    assert framer.feed(HEAD + b"Content-Length: 3\r\n\r\nab") is Framing.INCOMPLETE


def test_expect_100_continue_is_noticed() -> None:
    framer = RequestFramer()
    assert framer.feed(HEAD + b"Expect: 100-Continue\r\nContent-Length: 9\r\n\r\n") is (
        Framing.INCOMPLETE
    )
    assert framer.expects_continue


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"Content-Length: 4194305\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n400001\r\n",
        HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        HEAD + b"Content-Length: +5\r\n\r\n",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        HEAD + b"X-Folded: a\r\n  b\r\n\r\n",
        HEAD + b"Content-Length : 5\r\n\r\n",
        b"POST /validate HTTP/1.1\nHost: webhook\n\n",
        HEAD + b"X-Big: " + b"a" * (64 * 1024 + 1),
    ],
    ids=[
        "body-over-4-mib",
        "chunk-over-4-mib",
        "two-content-lengths",
        "signed-content-length",
        "length-and-chunked",
        "chunked-not-alone",
        "bad-chunk-size",
        "folded-header",
        "space-before-colon",
        "bare-lf",
        "header-block-over-64-kib",
    ],
)
def test_what_only_gunicorn_may_judge_is_handed_over_unbuffered(request_bytes: bytes) -> None:
    assert RequestFramer().feed(request_bytes) is Framing.UNBUFFERED


def test_a_body_of_exactly_the_limit_is_buffered() -> None:
    framer = RequestFramer(body_limit=10)
    assert framer.feed(HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 9) is Framing.INCOMPLETE
    assert framer.feed(HEAD + b"Content-Length: 10\r\n\r\n" + b"x" * 10) is Framing.COMPLETE
    chunked = RequestFramer(body_limit=10)
    body = b"5\r\naaaaa\r\n5\r\nbbbbb\r\n"
    assert chunked.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body) is Framing.INCOMPLETE
    assert chunked.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body + b"1\r\n") is (
        Framing.UNBUFFERED
    )
