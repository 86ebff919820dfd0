"""The flow.js/resumable.js engine's pure parts.

Case ids cite ``chunked-protocols-contract.md`` (§1.2, §5.0, F5-F12, R7, R12).
The request builders the HTTP suites share live in ``tests/support/chunked.py``.
"""

from __future__ import annotations

import re

import pytest

from tus_filter.errors import BadRequest
from tus_filter.protocols.chunked import MAX_CHUNKS, check_filename
from tus_filter.protocols.flowlike import (
    CEIL,
    FLOOR,
    ChunkParams,
    Parameters,
    Shape,
    check_relative_path,
    plan_chunk,
    read_params,
    record_key,
)


def chunks_of(total: int, chunk_size: int, force: bool) -> list[int]:
    """The chunk sizes :class:`Shape` gives, in the notation of the §1.2 table."""
    shape = Shape(total, chunk_size)
    layout = shape.layout(CEIL if force else FLOOR)
    return [layout.size(index) for index in range(layout.count)]


@pytest.mark.parametrize(
    ("total", "not_forced", "forced"),
    [
        pytest.param(0, [0], [0], id="T0-one-empty-chunk"),
        pytest.param(9, [9], [9], id="T9-below-C"),
        pytest.param(11, [11], [10, 1], id="T11-last-chunk-above-C"),
        pytest.param(19, [19], [10, 9], id="T19-last-chunk-2C-1"),
        pytest.param(20, [10, 10], [10, 10], id="T20-exact-multiple"),
        pytest.param(25, [10, 15], [10, 10, 5], id="T25"),
        pytest.param(39, [10, 10, 19], [10, 10, 10, 9], id="T39"),
    ],
)
def test_shape_matches_the_verified_client_table(
    total: int, not_forced: list[int], forced: list[int]
) -> None:
    """§1.2 [verified] table for C = 10: both libraries cut files exactly like this."""
    assert chunks_of(total, 10, force=False) == not_forced
    assert chunks_of(total, 10, force=True) == forced


def params(number: int, *, total: int = 25, size: int | None = None,
           total_chunks: int | None = None) -> ChunkParams:
    return ChunkParams(number, 10, total, "25-x", "x", "x", total_chunks, size, None)


@pytest.mark.parametrize(
    ("chunk", "hinted", "pinned", "expected"),
    [
        pytest.param(params(1, size=10), None, None, (None, 10), id="first-chunk-says-nothing"),
        pytest.param(params(2, size=15), None, None, (FLOOR, 15), id="chunk-Nf-of-C+T%C-is-floor"),
        pytest.param(params(2, size=10), None, None, (CEIL, 10), id="chunk-Nf-of-C-is-ceil"),
        pytest.param(params(3, size=5), None, None, (CEIL, 5), id="chunk-Nc-is-ceil"),
        pytest.param(params(2), None, None, (None, None), id="chunk-Nf-without-size-undecided"),
        pytest.param(params(2), FLOOR, None, (FLOOR, 15), id="hint-decides-chunk-Nf"),
        pytest.param(params(2), None, CEIL, (CEIL, 10), id="pinned-decides-chunk-Nf"),
        pytest.param(params(1, total=20, size=10), None, None, (FLOOR, 10), id="unambiguous"),
        pytest.param(params(1, total=0, size=0), None, None, (FLOOR, 0), id="F22-empty-file"),
    ],
)
def test_plan_chunk_learns_the_mode(
    chunk: ChunkParams, hinted: str | None, pinned: str | None,
    expected: tuple[str | None, int | None],
) -> None:
    """§5.0 mode selection: from totalChunks, from the record, or from the chunk itself."""
    plan = plan_chunk(Shape(chunk.total, chunk.chunk_size), chunk, hinted=hinted, pinned=pinned)
    assert (plan.mode, plan.expected) == expected


@pytest.mark.parametrize(
    ("chunk", "hinted", "pinned"),
    [
        pytest.param(params(3, size=5), FLOOR, None, id="F8-chunk-Nc-under-floor-hint"),
        pytest.param(params(3, size=5), None, FLOOR, id="F8-chunk-Nc-under-pinned-floor"),
        pytest.param(params(4, size=5), None, None, id="F8-beyond-Nc"),
        pytest.param(params(2, size=15), CEIL, None, id="F10-floor-size-under-ceil-hint"),
        pytest.param(params(2, size=10), None, FLOOR, id="F10-ceil-size-under-pinned-floor"),
        pytest.param(params(2, size=12), None, None, id="F10-size-fits-no-layout"),
        pytest.param(params(1, size=9), None, None, id="F10-short-first-chunk"),
        pytest.param(
            ChunkParams(1, 1, MAX_CHUNKS + 1, "i", "f", "f", None, 1, None), None, None,
            id="F7-too-many-chunks",
        ),
        pytest.param(params(1, size=10), FLOOR, CEIL, id="hint-contradicts-record"),
    ],
)
def test_plan_chunk_refuses_inconsistent_chunks(
    chunk: ChunkParams, hinted: str | None, pinned: str | None
) -> None:
    with pytest.raises(BadRequest):
        plan_chunk(Shape(chunk.total, chunk.chunk_size), chunk, hinted=hinted, pinned=pinned)


def test_plan_chunk_accepts_max_chunks() -> None:
    """F7: the limit is inclusive."""
    chunk = ChunkParams(1, 1, MAX_CHUNKS, "i", "f", "f", None, 1, None)
    assert plan_chunk(Shape(MAX_CHUNKS, 1), chunk, hinted=None, pinned=None).expected == 1


VALID = {
    "flowChunkNumber": "2", "flowChunkSize": "10", "flowTotalSize": "25",
    "flowIdentifier": "25-x", "flowFilename": "x.txt",
}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-1", id="negative"),
        pytest.param("1.0", id="decimal-point"),
        pytest.param("1e3", id="exponent"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("0x1", id="hex"),
        pytest.param("\u0661", id="arabic-indic-digit"),
        pytest.param("1" * 16, id="sixteen-digits"),
    ],
)
def test_integers_are_plain_decimal_of_at_most_15_digits(value: str) -> None:
    """F6: ``^[0-9]{1,15}$`` only."""
    query = {key: [v] for key, v in VALID.items()}
    query["flowTotalSize"] = [value]
    with pytest.raises(BadRequest, match="flowTotalSize"):
        read_params(Parameters(query, None), "flow", with_type=False)


def test_first_value_wins_and_sources_must_agree() -> None:
    """R12: first value of a repeated name; F26/R2: query and form must agree."""
    parameters = Parameters({"a": ["1", "2"], "b": ["x"]}, {"a": ["1"], "c": ["y"]})
    assert (parameters.text("a"), parameters.text("b"), parameters.text("c")) == ("1", "x", "y")
    with pytest.raises(BadRequest, match="disagree"):
        Parameters({"a": ["1"]}, {"a": ["2"]}).text("a")


def test_relative_path_defaults_to_the_filename() -> None:
    """F5: flowRelativePath is optional."""
    query = {key: [v] for key, v in VALID.items()}
    assert read_params(Parameters(query, None), "flow", with_type=False).relative_path == "x.txt"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("a/b", id="slash"),
        pytest.param("../etc", id="dot-dot-slash"),
        pytest.param("..", id="dot-dot"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("a\nb", id="newline"),
        pytest.param("a\x7fb", id="del"),
        pytest.param("a\x85b", id="c1-control"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("a\ud800b", id="lone-surrogate"),
        pytest.param("\u00e9" * 128, id="256-utf8-bytes"),
        pytest.param("a" * 10_000, id="10kB"),
    ],
)
def test_bad_filenames(name: str) -> None:
    """F12, one rule for every chunk protocol (``chunked.check_filename``)."""
    with pytest.raises(BadRequest):
        check_filename(name, "flowFilename")


@pytest.mark.parametrize(
    "name", ["my file (1).txt", "\u65e5\u672c.txt", "\u00e9" * 127, ".hidden"]
)
def test_good_filenames(name: str) -> None:
    check_filename(name, "flowFilename")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("a/../b", id="dot-dot-segment"),
        pytest.param("./a", id="dot-segment"),
        pytest.param("a//b", id="empty-segment"),
        pytest.param("a/", id="trailing-slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("a/" * 2049, id="over-4096-bytes"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_relative_paths(path: str) -> None:
    """F12."""
    with pytest.raises(BadRequest):
        check_relative_path(path, "flowRelativePath")


def test_record_key_separates_every_input() -> None:
    """§5.0 key: scope, identifier, T and C each give another record; 64 hex digits."""
    base = record_key("flowjs", "", "25-x", 25, 10)
    variants = {
        record_key("resumablejs", "", "25-x", 25, 10),
        record_key("flowjs", "alice", "25-x", 25, 10),
        record_key("flowjs", "", "25-y", 25, 10),
        record_key("flowjs", "", "25-x", 26, 10),
        record_key("flowjs", "", "25-x", 25, 11),
        record_key("flowjs", "", "25-x2", 5, 10),  # no concatenation ambiguity
    }
    assert base not in variants and len(variants) == 6
    assert re.fullmatch("[0-9a-f]{64}", base)
