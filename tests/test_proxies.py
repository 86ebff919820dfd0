"""``behind_proxy = N``: absolute URLs from the values the N trusted proxies set.

Every row sends one tus creation through the filter with the given headers
and checks the ``Location`` it hands out, then makes a final upload of two
partials named by the absolute ``Location`` URLs the client was given: the
URLs a proxy's client sees must lead back to the uploads.  Each forwarding
header is also sent with a spoofed leftmost value, which a client can put
there when its proxy appends to the header.  ``Host`` is ``localhost``
without a port, as a proxy forwards it (nginx: ``proxy_set_header Host $host``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import header_text
from tests.support.tus import OCTET, Tus
from tus_filter.urls import base_url, forwarded

EVIL = "evil.example"


@pytest.mark.parametrize(
    ("behind_proxy", "headers", "environ", "collection"),
    [
        # -- off: every forwarding header ignored
        pytest.param(
            0,
            {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https",
             "X-Forwarded-Port": "8443", "X-Forwarded-Prefix": "/evil"},
            {}, "http://localhost/files", id="0-ignores-x-forwarded",
        ),
        pytest.param(
            0, {"Forwarded": f"host={EVIL};proto=https"}, {}, "http://localhost/files",
            id="0-ignores-forwarded",
        ),
        pytest.param(
            False, {"X-Forwarded-Host": EVIL}, {}, "http://localhost/files",
            id="false-ignores-x-forwarded",
        ),
        pytest.param({}, {}, {}, "http://localhost/files", id="no-headers-the-request-itself"),
        # -- X-Forwarded-Host
        pytest.param(
            True, {"X-Forwarded-Host": "up.example"}, {}, "http://up.example/files",
            id="true-means-one-proxy",
        ),
        pytest.param(
            1, {"X-Forwarded-Host": f"{EVIL}, up.example"}, {}, "http://up.example/files",
            id="host-spoofed-leftmost",
        ),
        pytest.param(
            2, {"X-Forwarded-Host": f"{EVIL}, outer.example, inner.example"}, {},
            "http://outer.example/files", id="host-two-proxies-outer-wins",
        ),
        pytest.param(
            2, {"X-Forwarded-Host": "up.example"}, {}, "http://localhost/files",
            id="host-fewer-values-than-proxies-ignored",
        ),
        pytest.param(
            1, {"X-Forwarded-Host": "up.example/evil"}, {}, "http://localhost/files",
            id="host-not-a-host-ignored",
        ),
        pytest.param(
            1, {"X-Forwarded-Host": "[2001:db8::1]:8080"}, {}, "http://[2001:db8::1]:8080/files",
            id="host-ipv6-with-port",
        ),
        pytest.param(
            1, {"X-Forwarded-Host": "up.example:443", "X-Forwarded-Proto": "https"}, {},
            "https://up.example/files", id="host-default-port-dropped",
        ),
        # -- X-Forwarded-Proto
        pytest.param(
            1, {"X-Forwarded-Proto": "http, https"}, {}, "https://localhost/files",
            id="proto-spoofed-leftmost",
        ),
        pytest.param(
            1, {"X-Forwarded-Proto": "HTTPS"}, {}, "https://localhost/files",
            id="proto-case-insensitive",
        ),
        pytest.param(
            1, {"X-Forwarded-Proto": "gopher"}, {}, "http://localhost/files",
            id="proto-only-http-or-https",
        ),
        pytest.param(
            3, {"X-Forwarded-Proto": "https, https"}, {}, "http://localhost/files",
            id="proto-fewer-values-than-proxies-ignored",
        ),
        # -- X-Forwarded-Port
        pytest.param(
            1, {"X-Forwarded-Host": "up.example", "X-Forwarded-Port": "1, 8443"}, {},
            "http://up.example:8443/files", id="port-spoofed-leftmost",
        ),
        pytest.param(
            1, {"X-Forwarded-Host": "up.example:9000", "X-Forwarded-Port": "8443"}, {},
            "http://up.example:8443/files", id="port-replaces-the-host-port",
        ),
        pytest.param(
            1, {"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}, {},
            "https://localhost/files", id="port-default-dropped",
        ),
        pytest.param(
            1, {"X-Forwarded-Port": "99999"}, {}, "http://localhost/files",
            id="port-out-of-range-ignored",
        ),
        # -- X-Forwarded-Prefix
        pytest.param(
            1, {"X-Forwarded-Prefix": "/evil, /api"}, {}, "http://localhost/api/files",
            id="prefix-spoofed-leftmost",
        ),
        pytest.param(
            1, {"X-Forwarded-Prefix": "/api/"}, {"SCRIPT_NAME": "/app"},
            "http://localhost/api/app/files", id="prefix-before-script-name",
        ),
        pytest.param(
            1, {"X-Forwarded-Prefix": "/my app"}, {}, "http://localhost/my%20app/files",
            id="prefix-quoted",
        ),
        pytest.param(
            1, {"X-Forwarded-Prefix": "api"}, {}, "http://localhost/files",
            id="prefix-not-a-path-ignored",
        ),
        pytest.param(
            2, {"X-Forwarded-Prefix": "/api"}, {}, "http://localhost/files",
            id="prefix-fewer-values-than-proxies-ignored",
        ),
        # -- Forwarded (RFC 7239)
        pytest.param(
            1, {"Forwarded": 'for=192.0.2.1;host="up.example:8443";proto=https'}, {},
            "https://up.example:8443/files", id="forwarded",
        ),
        pytest.param(
            1, {"Forwarded": f"host={EVIL};proto=http, host=up.example;proto=https"}, {},
            "https://up.example/files", id="forwarded-spoofed-leftmost",
        ),
        pytest.param(
            2, {"Forwarded": f"host={EVIL}, host=outer.example, host=inner.example"}, {},
            "http://outer.example/files", id="forwarded-two-proxies-outer-wins",
        ),
        pytest.param(
            2, {"Forwarded": "host=up.example;proto=https"}, {}, "http://localhost/files",
            id="forwarded-fewer-elements-than-proxies-ignored",
        ),
        pytest.param(
            1, {"Forwarded": f'host="{EVIL}, host=up.example'}, {}, "http://up.example/files",
            id="forwarded-unbalanced-quote-on-the-left",
        ),
        pytest.param(
            1, {"Forwarded": f'for="a,b";host={EVIL}, for=c;host=up.example'}, {},
            "http://up.example/files", id="forwarded-quoted-comma-on-the-left",
        ),
        pytest.param(
            1, {"Forwarded": "Host=up.example;PROTO=HTTPS"}, {}, "https://up.example/files",
            id="forwarded-names-case-insensitive",
        ),
        pytest.param(
            1, {"Forwarded": "for=192.0.2.1"}, {}, "http://localhost/files",
            id="forwarded-element-without-host",
        ),
        # -- precedence: one family per request, X-Forwarded-* first
        pytest.param(
            1, {"Forwarded": f"host={EVIL}", "X-Forwarded-Proto": "https"}, {},
            "https://localhost/files", id="x-forwarded-present-forwarded-ignored",
        ),
    ],
)
def test_location_and_concatenation_urls_behind_proxies(
    make_tus: Callable[..., Tus],
    behind_proxy: int | dict[str, int],
    headers: dict[str, str],
    environ: dict[str, str],
    collection: str,
) -> None:
    options = behind_proxy if isinstance(behind_proxy, dict) else {"behind_proxy": behind_proxy}
    tus = make_tus(**options)
    environ = {"HTTP_HOST": "localhost", **environ}
    locations = []
    for data in (b"ab", b"cd"):
        created = tus.web.post(
            "/files", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "2",
                               "Upload-Concat": "partial", **headers},
            extra_environ=environ,
        )
        location = created.headers["Location"]
        assert location.rpartition("/")[0] == collection
        tus.web.patch(
            "/files/" + location[-32:], data,
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": OCTET},
            extra_environ=environ, status=204,
        )
        locations.append(location)
    final = tus.web.post(
        "/files", headers={"Tus-Resumable": "1.0.0", **headers,
                           "Upload-Concat": "final;" + " ".join(locations)},
        extra_environ=environ, status=201,
    )
    assert final.headers["Location"].rpartition("/")[0] == collection
    assert tus.data(final.headers["Location"]) == b"abcd"


_hosts = st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True)
_elements = st.builds("host={};proto={}".format, _hosts.map('"{}"'.format),
                      st.sampled_from(["http", "https"]))


@given(junk=header_text, hosts=st.lists(_hosts, min_size=1, max_size=3))
def test_x_forwarded_values_left_of_the_trusted_ones_never_matter(
    junk: str, hosts: list[str]
) -> None:
    trusted = ", ".join(hosts)
    assert forwarded({"HTTP_X_FORWARDED_HOST": f"{junk}, {trusted}"}, len(hosts)) == \
        forwarded({"HTTP_X_FORWARDED_HOST": trusted}, len(hosts))


@given(junk=header_text, elements=st.lists(_elements, min_size=1, max_size=3))
def test_forwarded_elements_left_of_the_trusted_ones_never_matter(
    junk: str, elements: list[str]
) -> None:
    """Whatever the client put first, unbalanced quotes included."""
    trusted = ", ".join(elements)
    found = forwarded({"HTTP_FORWARDED": f"{junk}, {trusted}"}, len(elements))
    assert found == forwarded({"HTTP_FORWARDED": trusted}, len(elements))
    assert found.host is not None


@given(
    headers=st.dictionaries(
        st.sampled_from(["HTTP_FORWARDED", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
                         "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX"]),
        header_text,
    ),
    trusted=st.integers(0, 3),
)
def test_any_forwarding_headers_give_an_http_url(headers: dict[str, str], trusted: int) -> None:
    url = base_url({"wsgi.url_scheme": "http", "HTTP_HOST": "localhost", **headers},
                   behind_proxy=trusted)
    scheme, _, host = url.partition("://")
    assert scheme in ("http", "https")
    assert host and not set(host) & set("/?#@ \"\\,;")
