"""Response headers: one structure, dict-like for protocols, keeping repeated lines."""

from __future__ import annotations

from tus_filter.http import Headers, Response


def cookies() -> Headers:
    return Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Vary", "Accept")])


def test_repeated_lines_are_kept_in_order() -> None:
    headers = cookies()
    headers.add_header("Set-Cookie", "c=3")
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2", "c=3"]


def test_setting_a_name_replaces_all_its_lines_case_insensitively() -> None:
    headers = cookies()
    headers["SET-COOKIE"] = "only=1"
    assert headers.items() == [("Vary", "Accept"), ("SET-COOKIE", "only=1")]


def test_update_and_pop_act_on_every_line_of_a_name() -> None:
    headers = cookies()
    headers.update({"vary": "Origin"})
    assert headers.pop("Set-Cookie") == "a=1"
    assert headers.pop("Set-Cookie", "gone") == "gone"
    assert headers.items() == [("vary", "Origin")]


def test_without_copies() -> None:
    headers = cookies()
    assert headers.without("set-cookie").items() == [("Vary", "Accept")]
    assert len(headers) == 3


def test_header_list_counts_the_body_except_where_there_is_none() -> None:
    assert Response(200, {"Content-Length": "99"}, b"abc").header_list() == [
        ("Content-Length", "3")
    ]
    assert Response(204, {"Tus-Resumable": "1.0.0"}).header_list() == [
        ("Tus-Resumable", "1.0.0")
    ]
