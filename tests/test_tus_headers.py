"""tus header parsing without HTTP: tables plus seeded property-style checks.

Case numbers ("#28") refer to the tus server contract (section D mostly).
"""

from __future__ import annotations

import base64
import hashlib
import random
import string

import pytest

from tus_filter.errors import BadRequest
from tus_filter.protocols.tus_headers import (
    Concat,
    encode_metadata,
    http_date,
    parse_checksum,
    parse_concat,
    parse_defer_length,
    parse_int,
    parse_metadata,
    upload_id_from_url,
)

ID = "0123456789abcdef0123456789abcdef"
COLLECTION = "http://localhost/app/files"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("007", 7, id="leading-zeros"),
        pytest.param(" 12 ", 12, id="surrounding-space"),
        pytest.param(str(2**63 - 1), 2**63 - 1, id="int64-max"),
        pytest.param(str(2**63), None, id="above-int64"),
        pytest.param("+1", None, id="plus"),
        pytest.param("-1", None, id="minus"),
        pytest.param("1_000", None, id="underscore"),
        pytest.param("١٢", None, id="non-ascii-digits"),
        pytest.param("", None, id="empty"),
        pytest.param("0x10", None, id="hex"),
    ],
)
def test_parse_int(value: str, expected: int | None) -> None:
    """#18, #44: ``^[0-9]+$`` with an int64 bound (Python's int() alone accepts too much)."""
    if expected is None:
        with pytest.raises(BadRequest):
            parse_int("Upload-Length", value)
    else:
        assert parse_int("Upload-Length", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("1", True), (" 1", True), ("0", None), ("true", None), ("", None)],
)
def test_parse_defer_length(value: str | None, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(BadRequest):
            parse_defer_length(value)
    else:
        assert parse_defer_length(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("partial", Concat(final=False), id="partial"),
        pytest.param(" partial ", Concat(final=False), id="partial-padded"),
        pytest.param("final;/f/a /f/b", Concat(True, ("/f/a", "/f/b")), id="final"),
        pytest.param("final; /f/a  /f/b", Concat(True, ("/f/a", "/f/b")), id="109-spaces"),
        pytest.param("final ;/f/a", Concat(True, ("/f/a",)), id="space-before-semicolon"),
        pytest.param("final;", "error", id="114-empty"),
        pytest.param("final", "error", id="114-bare"),
        pytest.param("foo", "error", id="114-foo"),
        pytest.param("Partial", "error", id="case-sensitive"),
        pytest.param("partial;x", "error", id="partial-with-urls"),
    ],
)
def test_parse_concat(value: str | None, expected: Concat | str | None) -> None:
    if expected == "error":
        with pytest.raises(BadRequest):
            parse_concat(value)
    else:
        assert parse_concat(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(f"/app/files/{ID}", ID, id="relative-path"),
        pytest.param(f"http://other:81/app/files/{ID}", ID, id="109-other-host"),
        pytest.param(f"https://proxy/prefix/app/files/{ID}", ID, id="proxy-prefix"),
        pytest.param(ID, ID, id="bare-id-relative-to-collection"),
        pytest.param(f"/app/files/{ID}/", ID, id="trailing-slash"),
        pytest.param(f"/app/files/{ID}?q#f", ID, id="query-and-fragment"),
        pytest.param(f"/app/myfiles/{ID}", None, id="segment-boundary"),
        pytest.param(f"/elsewhere/{ID}", None, id="outside"),
        pytest.param("/app/files/", None, id="collection-itself"),
        pytest.param(f"/app/files/{ID}/extra", None, id="nested"),
    ],
)
def test_upload_id_from_url(url: str, expected: str | None) -> None:
    assert upload_id_from_url(url, COLLECTION, "/files") == expected


def _checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


@pytest.mark.parametrize(
    ("value", "algorithms", "ok"),
    [
        pytest.param(None, ("sha1",), True, id="absent"),
        pytest.param(_checksum("sha1", b"x"), ("sha1",), True, id="sha1"),
        pytest.param(_checksum("sha512", b"x"), ("sha1", "sha512"), True, id="sha512"),
        pytest.param(_checksum("md5", b"x"), ("sha1",), False, id="91-not-configured"),
        pytest.param(_checksum("sha1", b"x"), (), False, id="extension-disabled"),
        pytest.param("sha1", ("sha1",), False, id="92-no-digest"),
        pytest.param("sha1 abc", ("sha1",), False, id="92-unpadded"),
        pytest.param(_checksum("sha1", b"x").upper(), ("sha1",), False, id="92-uppercase"),
    ],
)
def test_parse_checksum(value: str | None, algorithms: tuple[str, ...], ok: bool) -> None:
    """Unknown algorithm or not base64: 400 (a digest of the wrong size is a mismatch, below)."""
    if ok:
        parsed = parse_checksum(value, algorithms)
        assert (parsed is None) is (value is None)
    else:
        with pytest.raises(BadRequest):
            parse_checksum(value, algorithms)


@pytest.mark.parametrize(
    ("size", "can_match"),
    [
        pytest.param(20, True, id="sha1-size"),
        pytest.param(19, False, id="short"),
        pytest.param(32, False, id="long-sha256-size"),
    ],
)
def test_wrong_size_digest_parses_but_cannot_match(size: int, can_match: bool) -> None:
    parsed = parse_checksum("sha1 " + base64.b64encode(b"x" * size).decode(), ("sha1",))
    assert parsed is not None and parsed.can_match is can_match


def test_http_date() -> None:
    """#82: RFC 9110 IMF-fixdate."""
    assert http_date(1403712000.7) == "Wed, 25 Jun 2014 16:00:00 GMT"


# -- property-style: Upload-Metadata ---------------------------------------------------------------

_KEY_CHARS = "".join(c for c in string.printable if " " < c <= "~" and c != ",")


def _random_metadata(rng: random.Random) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for _ in range(rng.randint(0, 6)):
        key = "".join(rng.choice(_KEY_CHARS) for _ in range(rng.randint(1, 12)))
        alphabet = rng.choice([string.printable, "äöü日本語🎉\u0000\r\n", ""])
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) if alphabet else ""
        metadata[key] = value
    return metadata


def _tjc_style(metadata: dict[str, str]) -> str:
    """tus-js-client: ``key base64`` (``key `` with a trailing space for empty values)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
    )


@pytest.mark.parametrize("seed", range(5))
def test_metadata_round_trips(seed: int) -> None:
    """Whatever tus-js-client, tuspy or our own encoder produce parses back to the same dict."""
    rng = random.Random(seed)
    for _ in range(200):
        metadata = _random_metadata(rng)
        assert parse_metadata(encode_metadata(metadata)) == metadata
        assert parse_metadata(_tjc_style(metadata)) == metadata
        assert parse_metadata(_tjc_style(metadata).replace(",", ", ")) == metadata  # 28


@pytest.mark.parametrize("seed", range(5))
def test_metadata_mutations_parse_or_400(seed: int) -> None:
    """Random edits of a valid header never crash: a dict or BadRequest, nothing else."""
    rng = random.Random(seed)
    noise = " ,=+/\t\x00é" + string.ascii_letters
    for _ in range(300):
        header = list(_tjc_style(_random_metadata(rng)) or "k")
        for _ in range(rng.randint(1, 4)):
            position = rng.randint(0, len(header))
            if rng.random() < 0.5 and header:
                del header[min(position, len(header) - 1)]
            else:
                header.insert(position, rng.choice(noise))
        try:
            parsed = parse_metadata("".join(header))
        except BadRequest as error:
            assert error.message.startswith("Upload-Metadata")
        else:
            assert all(isinstance(v, str) for v in parsed.values())
            assert all(k and " " not in k and "," not in k for k in parsed)


def test_metadata_duplicate_keys_detected_anywhere() -> None:
    rng = random.Random(7)
    for _ in range(100):
        metadata = _random_metadata(rng) or {"k": "v"}
        pairs = _tjc_style(metadata).split(",")
        pairs.insert(rng.randint(0, len(pairs)), pairs[rng.randrange(len(pairs))])
        with pytest.raises(BadRequest, match="duplicate"):
            parse_metadata(",".join(pairs))
