"""RFC 9651 structured-field values the IETF draft uses: pure parsing, no HTTP.

The draft says a field whose value is not exactly what RFC 9651 allows MUST
be ignored: every parser answers ``None`` for it.
"""

from __future__ import annotations

import pytest

from tus_filter.protocols.structured import (
    parse_boolean,
    parse_dictionary,
    parse_integer,
    serialize_boolean,
    serialize_dictionary,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("?1", True, id="true"),
        pytest.param("?0", False, id="false"),
        pytest.param("  ?1 ", True, id="spaces-around-are-discarded"),
        pytest.param("?1;a=1", True, id="parameters-are-allowed"),
        pytest.param("?1;a", True, id="bare-parameter"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("?2", None, id="not-a-boolean"),
        pytest.param("1", None, id="an-integer-is-not-a-boolean"),
        pytest.param("true", None, id="a-token-is-not-a-boolean"),
        pytest.param("?1, ?0", None, id="a-list-is-not-an-item"),
        pytest.param("\t?1", None, id="tab-is-not-a-space"),
        pytest.param("?1;", None, id="dangling-semicolon"),
        pytest.param("?1;A=1", None, id="uppercase-parameter-key"),
    ],
)
def test_parse_boolean(value: str | None, expected: bool | None) -> None:
    assert parse_boolean(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("25000000", 25000000, id="draft-example-offset"),
        pytest.param("007", 7, id="leading-zeros"),
        pytest.param(" 12 ", 12, id="spaces-around-are-discarded"),
        pytest.param("999999999999999", 999999999999999, id="fifteen-digits"),
        pytest.param("12;x=?1", 12, id="parameters-are-allowed"),
        pytest.param("1000000000000000", None, id="sixteen-digits"),
        pytest.param("-1", None, id="negative-is-no-length-or-offset"),
        pytest.param("+1", None, id="plus"),
        pytest.param("1.5", None, id="decimal"),
        pytest.param("0x10", None, id="hex"),
        pytest.param("١٢", None, id="non-ascii-digits"),
        pytest.param("?1", None, id="boolean"),
        pytest.param("", None, id="empty"),
        pytest.param("1 2", None, id="two-numbers"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_integer(value: str | None, expected: int | None) -> None:
    assert parse_integer(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("max-size=1234567890", {"max-size": 1234567890}, id="draft-example"),
        pytest.param(
            "max-size=10, min-size=0,max-age=3600",
            {"max-size": 10, "min-size": 0, "max-age": 3600},
            id="several-members",
        ),
        pytest.param("a, b=?0", {"a": True, "b": False}, id="member-without-value-is-true"),
        pytest.param("a=1, a=2", {"a": 2}, id="last-duplicate-wins"),
        pytest.param("future-limit=5;unit=1", {"future-limit": 5}, id="parameters-skipped"),
        pytest.param("", {}, id="empty"),
        pytest.param("Max-Size=1", None, id="uppercase-key"),
        pytest.param("max-size=", None, id="missing-value"),
        pytest.param("max-size=1,", None, id="trailing-comma"),
        pytest.param("max-size=x y", None, id="garbage-value"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_dictionary(value: str | None, expected: dict[str, object] | None) -> None:
    assert parse_dictionary(value) == expected


def test_serializers_round_trip() -> None:
    members = {"max-size": 1000, "min-size": 0, "max-age": 3600}
    assert serialize_dictionary(members) == "max-size=1000, min-size=0, max-age=3600"
    assert parse_dictionary(serialize_dictionary(members)) == members
    assert [parse_boolean(serialize_boolean(flag)) for flag in (True, False)] == [True, False]


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"Max": 1}, id="uppercase-key"),
        pytest.param({"max-size": -1}, id="negative"),
        pytest.param({"max-size": 10**15}, id="too-many-digits"),
    ],
)
def test_serialize_dictionary_refuses_what_is_not_a_structured_field(
    members: dict[str, int],
) -> None:
    with pytest.raises(ValueError):
        serialize_dictionary(members)
