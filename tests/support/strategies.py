"""Hypothesis strategies for near-valid upload requests: valid shapes with mutated values.

Random bytes stop at the first check; a request of the right shape with one
value bent (a number with a sign or a superscript digit, a field dropped,
a multipart body cut short) reaches the checks behind it.  Every strategy draws a
``Script``: a few requests of one protocol, run in order against one filter.

Paths and values may name uploads the script itself created: ``UPLOAD`` in
a request's path or a value stands for the URL path of the most recent
upload the script created, ``UPLOAD_ID`` for its bare id (``uploadUid``),
``FIRST`` for the first one's path (tus concatenation), and ``OFFSET`` for
the last offset an answer reported (tus ``Upload-Offset``).
``tests/test_properties.py`` fills them in from the answers (a tus
``Location``, a uid ``uploadUid``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from hypothesis import strategies as st

UPLOAD = "<upload>"
UPLOAD_ID = "<upload-id>"
FIRST = "<first>"
OFFSET = "<offset>"
COLLECTION = "/files"
OCTET = "application/offset+octet-stream"
BOUNDARY = "fuzzboundary"


@dataclass(frozen=True)
class Request:
    """One request: ``path`` may carry a query string; ``headers`` include Content-Type.

    ``chunked``: the body is sent without a ``Content-Length``, as with
    ``Transfer-Encoding: chunked``.  ``stranger``: sent by another user than
    the rest of the script (another ``REMOTE_USER``).
    """

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunked: bool = False
    stranger: bool = False


@dataclass(frozen=True)
class Script:
    requests: list[Request]


# -- values --------------------------------------------------------------------------------

#: Header values a server can deliver: latin-1, no control characters.
header_text = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40)
#: Field and query values: any text (surrogates excluded: not UTF-8 encodable).
field_text = st.text(max_size=40)

_ODD_NUMBERS = [
    "", " ", "-0", "-1", "+1", " 1", "1 ", "01", "0x10", "1.0", "1e3", "1_0", "1,2",
    "9" * 16, "9" * 40, "²", "¹²", "NaN", "inf",
]
_ODD_NUMBERS_UNICODE = ["١", "１２", "𝟙", "߁"]  # int() accepts these; protocols must not


def number_text(*near: int, latin1: bool = True) -> st.SearchStrategy[str]:
    """A number one off from ``near``, any integer, an odd spelling, or any text."""
    odd = _ODD_NUMBERS + ([] if latin1 else _ODD_NUMBERS_UNICODE)
    close = [str(n + d) for n in near for d in (1, -1)]
    return st.one_of(
        *([st.sampled_from(close)] if close else []),
        st.integers(-2, 2**64).map(str),
        st.sampled_from(odd),
        header_text if latin1 else field_text,
    )


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True one time in ``n``; shrinks to False (hypothesis favours a plain request)."""
    return draw(st.sampled_from([False] * (n - 1) + [True]))


def rarely(draw: st.DrawFn) -> bool:
    """True one time in ten: for bending a request's structure rather than a value."""
    return one_in(draw, 10)


@st.composite
def mutated(
    draw: st.DrawFn, values: dict[str, str], bends: dict[str, st.SearchStrategy[str]]
) -> dict[str, str]:
    """``values`` with up to two mutations: a value bent (``bends``), dropped, or added."""
    values = dict(values)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(bends)))
        if name in values and one_in(draw, 4):
            del values[name]
        else:
            values[name] = draw(bends[name])
    return values


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- tus -----------------------------------------------------------------------------------

_bodies = st.binary(max_size=24)


@st.composite
def tus_metadata(draw: st.DrawFn) -> str:
    """Mostly valid ``Upload-Metadata``, sometimes with a bent key, value or separator."""
    pairs = draw(st.lists(st.tuples(
        st.sampled_from(["filename", "filetype", "name", "k"]) | header_text,
        st.binary(max_size=12).map(b64)
        | st.sampled_from(["", "not base64!", "YQ", b64(b"\xff\xfe"), "=="]) | header_text,
    ), max_size=3))
    separator = draw(st.sampled_from([",", ",", ", ", ",,", " , "]))
    return separator.join(f"{key} {value}".rstrip() for key, value in pairs)


@st.composite
def tus_checksum(draw: st.DrawFn, body: bytes) -> str:
    """``Upload-Checksum`` for ``body``: right, wrong, cut short, of an unknown algorithm."""
    algorithm = draw(st.sampled_from(["sha1", "md5", "sha256", "SHA1", "crc32", "sha3_256", ""]))
    known = algorithm in ("sha1", "md5", "sha256")
    good = hashlib.new(algorithm, body).digest() if known else b""
    digest = draw(st.sampled_from([b64(good), b64(good[:-1]), b64(good) + "=", "*"])
                  | st.binary(max_size=40).map(b64) | header_text)
    return f"{algorithm}{digest}" if one_in(draw, 6) else f"{algorithm} {digest}"


_tus_bends: dict[str, st.SearchStrategy[str]] = {
    "Tus-Resumable": st.sampled_from(["", "0.2.2", "1.0.0 ", "1.0", "1.0.0,1.0.0"]) | header_text,
    "Upload-Offset": number_text(0, 1),
    "Upload-Length": number_text(0, 1, 1000),
    "Upload-Defer-Length": st.sampled_from(["0", "2", " 1", "true"]) | header_text,
    "Upload-Metadata": tus_metadata(),
    "Upload-Concat": st.sampled_from(
        ["partial", "final;", "final", "partial;x", "Final;" + UPLOAD, "final;\t" + FIRST,
         f"final;{UPLOAD} {UPLOAD}", f"final;http://other.example{UPLOAD}", "final;[::1",
         f"final;{COLLECTION}/{'0' * 32}", f"final;{COLLECTION}", "final;" + "x" * 300]
    ) | header_text,
    "Upload-Checksum": tus_checksum(b""),
    "Content-Type": st.sampled_from(
        [OCTET.upper(), OCTET + "; charset=x", "application/octet-stream", "", "text/plain"]
    ) | header_text,
    "X-HTTP-Method-Override": st.sampled_from(
        ["PATCH", "DELETE", "HEAD", "GET", "POST", "patch", " ", "OPTIONS"]) | header_text,
    "X-Forwarded-Host": header_text,
    "X-Forwarded-Prefix": header_text,
    "Forwarded": header_text,
}


@st.composite
def tus_request(draw: st.DrawFn, *, first: bool) -> Request:
    """A valid tus request for the script's uploads, then mutated.

    ``first``: a creation (plain, deferred, partial, with an upload).  Else
    also a final upload of ``FIRST`` and ``UPLOAD``, or a PATCH, HEAD or
    DELETE of ``UPLOAD``; ``OFFSET`` stands for its current offset.
    """
    kinds = ["partial", "create", "partial", "create-with-upload", "partial"]
    if not first:
        kinds += ["final", "final", "patch", "patch", "patch", "patch", "head", "delete"]
    kind = draw(st.sampled_from(kinds))
    body = b""
    headers = {"Tus-Resumable": "1.0.0"}
    method, path = "POST", COLLECTION
    if kind in ("create", "create-with-upload", "partial"):
        if not one_in(draw, 5):
            headers["Upload-Length"] = str(draw(st.integers(0, 24)))
        else:
            headers["Upload-Defer-Length"] = "1"
        if draw(st.booleans()):
            headers["Upload-Metadata"] = draw(tus_metadata())
        if kind == "partial":
            headers["Upload-Concat"] = "partial"
        if kind == "create-with-upload" or (kind == "partial" and draw(st.booleans())):
            body = draw(_bodies)
            headers["Content-Type"] = OCTET
    elif kind == "final":
        headers["Upload-Concat"] = f"final;{FIRST} {UPLOAD}"
    elif kind == "patch":
        method, path = "PATCH", UPLOAD
        body = draw(_bodies)
        headers.update({"Content-Type": OCTET, "Upload-Offset": OFFSET})
        if one_in(draw, 5):
            headers["Upload-Length"] = str(draw(st.integers(0, 48)))
    else:
        method, path = ("HEAD" if kind == "head" else "DELETE"), UPLOAD
    if body and draw(st.booleans()):
        headers["Upload-Checksum"] = draw(tus_checksum(body))
    headers = draw(mutated(headers, _tus_bends))
    if rarely(draw):
        method = draw(st.sampled_from(["GET", "PUT", "OPTIONS", "POST", "PATCH"]))
    if rarely(draw):
        path = draw(st.sampled_from([f"{COLLECTION}/{'f' * 32}", f"{COLLECTION}/x",
                                     f"{UPLOAD}/x", COLLECTION, f"{COLLECTION}/{'F' * 32}"]))
    return Request(method, path, headers, body)


@st.composite
def tus_scripts(draw: st.DrawFn) -> Script:
    creations = draw(st.lists(tus_request(first=True), min_size=1, max_size=3))
    rest = draw(st.lists(tus_request(first=False), max_size=4))
    return Script([delivered(draw, request) for request in creations + rest])


# -- the IETF draft ------------------------------------------------------------------------

PARTIAL_UPLOAD = "application/partial-upload"
_booleans_sf = st.sampled_from(["?0", "?1", "?2", "1", "true", " ?1", "?1;a=1", "?1, ?0", ""])
_ietf_bends: dict[str, st.SearchStrategy[str]] = {
    "Upload-Draft-Interop-Version": st.sampled_from(
        ["2", "3", "5", "6", "8", "9", "10", "06", "-6", "6.0", ""]) | header_text,
    "Upload-Complete": _booleans_sf | header_text,
    "Upload-Incomplete": _booleans_sf,
    "Upload-Offset": number_text(0, 1),
    "Upload-Length": number_text(0, 1, 1000),
    "Upload-Metadata": tus_metadata(),
    "Content-Disposition": st.sampled_from(
        ['inline; filename="a b.txt"', "inline; filename*=UTF-8''%FF%FE", "inline; filename=",
         'attachment; filename="../../x"', "inline;;;", "filename*=x''y"]) | header_text,
    "Content-Type": st.sampled_from(
        [PARTIAL_UPLOAD, PARTIAL_UPLOAD.upper(), OCTET, "image/png", "", "a/b; c=d"]
    ) | header_text,
    "Tus-Resumable": st.just("1.0.0"),
}


@st.composite
def ietf_request(draw: st.DrawFn, *, first: bool) -> Request:
    """A valid request of the draft (interop 3 to 9) for the script's uploads, then mutated.

    ``first``: a creation, empty or with a body, complete or not.  Else also an
    append, a HEAD or a DELETE of ``UPLOAD`` at ``OFFSET``.
    """
    version = draw(st.sampled_from([3, 4, 5, 6, 7, 8, 9, None]))
    field_name = "Upload-Incomplete" if version == 3 else "Upload-Complete"
    complete = draw(st.booleans())

    def completeness(done: bool) -> dict[str, str]:
        return {field_name: "?1" if done != (version == 3) else "?0"}

    headers = {} if version is None else {"Upload-Draft-Interop-Version": str(version)}
    kinds = ["create"] + ([] if first else ["append", "append", "append", "head", "delete"])
    kind = draw(st.sampled_from(kinds))
    method, path, body = "POST", COLLECTION, b""
    if kind == "create":
        body = draw(_bodies) if draw(st.booleans()) else b""
        headers.update(completeness(complete))
        if one_in(draw, 3):
            headers["Upload-Length"] = str(draw(st.integers(0, 24)))
        if draw(st.booleans()):
            headers["Upload-Metadata"] = draw(tus_metadata())
    elif kind == "append":
        method, path, body = "PATCH", UPLOAD, draw(_bodies)
        headers.update({"Upload-Offset": OFFSET, **completeness(complete)})
        if version is None or version >= 6:
            headers["Content-Type"] = PARTIAL_UPLOAD
    else:
        method, path = ("HEAD" if kind == "head" else "DELETE"), UPLOAD
    headers = draw(mutated(headers, _ietf_bends))
    if rarely(draw):
        method = draw(st.sampled_from(["GET", "PUT", "OPTIONS", "POST", "PATCH"]))
    if rarely(draw):
        path = draw(st.sampled_from([f"{COLLECTION}/{'f' * 32}", f"{COLLECTION}/x",
                                     f"{UPLOAD}/x", COLLECTION]))
    return Request(method, path, headers, body)


@st.composite
def ietf_scripts(draw: st.DrawFn) -> Script:
    creations = draw(st.lists(ietf_request(first=True), min_size=1, max_size=3))
    rest = draw(st.lists(ietf_request(first=False), max_size=4))
    return Script([delivered(draw, request) for request in creations + rest])


def delivered(draw: st.DrawFn, request: Request) -> Request:
    """``request`` as it arrives: rarely with its body chunked (no ``Content-Length``),
    rarely from a page of another origin (CORS), rarely from another user."""
    if request.body and rarely(draw):
        request = replace(request, chunked=True)
    if rarely(draw):
        request = replace(request, stranger=True)
    if rarely(draw):
        origin = draw(st.sampled_from(["https://page.example", "null", ""]) | header_text)
        request = replace(request, headers={**request.headers, "Origin": origin})
    return request


# -- multipart -----------------------------------------------------------------------------


@st.composite
def multipart(
    draw: st.DrawFn, fields: dict[str, str], file: tuple[str, bytes] | None,
) -> tuple[str, bytes]:
    """``(content_type, body)`` of a form of ``fields`` then ``file`` (its name and bytes).

    Rarely bent: the file part first or without a filename, a field twice,
    the closing delimiter missing or the body cut anywhere, a wrong boundary.
    """
    parts = [(f'form-data; name="{name}"', value.encode("utf-8", "surrogatepass"))
             for name, value in fields.items()]
    if parts and rarely(draw):
        parts.append(draw(st.sampled_from(parts[:1])))
    if file is not None:
        name, data = file
        disposition = f'form-data; name="{name}"'
        if not rarely(draw):
            disposition += '; filename="blob"'
        parts.insert(0 if rarely(draw) else len(parts), (disposition, data))
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        + (b"Content-Type: application/octet-stream\r\n" if "filename" in disposition else b"")
        + b"\r\n" + payload + b"\r\n"
        for disposition, payload in parts
    )
    ending = f"--{BOUNDARY}--\r\n"
    if rarely(draw):
        ending = draw(st.sampled_from(
            ["", f"--{BOUNDARY}\r\n", f"--{BOUNDARY}--", f"--{BOUNDARY}-"]))
    body += ending.encode()
    if rarely(draw):
        body = body[: draw(st.integers(0, len(body)))]
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    if rarely(draw):
        content_type = draw(st.sampled_from(
            ["multipart/form-data", "multipart/form-data; boundary=",
             "multipart/form-data; boundary=x", f'multipart/form-data; boundary="{BOUNDARY}"',
             f"multipart/mixed; boundary={BOUNDARY}",
             f"Multipart/Form-Data; BOUNDARY={BOUNDARY}",
             f"multipart/form-data; charset=utf-8; boundary={BOUNDARY}"]))
    return content_type, body


def _query(params: dict[str, str], draw: st.DrawFn) -> str:
    query = "?" + urlencode(params)
    if rarely(draw):
        query += draw(st.sampled_from(["&%FF=1", "&%", "&&=", "&=", "&a=%00"]))
    return query


# -- flow.js and resumable.js --------------------------------------------------------------


def _flowlike_bends(prefix: str) -> dict[str, st.SearchStrategy[str]]:
    numbers = number_text(0, 1, 4, latin1=False)
    return {
        prefix + "ChunkNumber": numbers,
        prefix + "ChunkSize": numbers,
        prefix + "CurrentChunkSize": numbers,
        prefix + "TotalSize": number_text(0, 1, 1000, 10**15, latin1=False),
        prefix + "TotalChunks": numbers,
        prefix + "Identifier": st.sampled_from(["", "a b", "../x", "x" * 1025]) | field_text,
        prefix + "Filename": st.sampled_from(["", ".", "..", "a/b", "a\\b", "a\x00"]) | field_text,
        prefix + "RelativePath": st.sampled_from(["../a", "/a", "a//b", "a\\b", ".", "a/./b"])
        | field_text,
        prefix + "Type": field_text,
        "stray": field_text,
    }


@st.composite
def flowlike_scripts(draw: st.DrawFn, prefix: str) -> Script:
    """Test requests and chunk uploads of one file, in any order, then mutated."""
    total = draw(st.integers(0, 40))
    chunk_size = draw(st.integers(1, 16))
    floor_count = max(total // chunk_size, 1)
    ceil_count = max(-(-total // chunk_size), 1)
    count = draw(st.sampled_from([floor_count, ceil_count]))
    data = draw(st.binary(min_size=total, max_size=total))
    namespace = draw(st.sampled_from(["", "", "", "ns_"])) if prefix == "resumable" else ""
    bends = _flowlike_bends(namespace + prefix)
    requests = []
    for _ in range(draw(st.integers(1, 5))):
        number = draw(st.integers(1, count))
        start = (number - 1) * chunk_size
        chunk = data[start:] if number == count else data[start:start + chunk_size]
        valid = {
            "ChunkNumber": number, "ChunkSize": chunk_size, "CurrentChunkSize": len(chunk),
            "TotalSize": total, "Identifier": "file-1", "Filename": "a.txt",
            "RelativePath": "dir/a.txt", "TotalChunks": count,
        }
        if prefix == "resumable":
            valid["Type"] = "text/plain"
        params = draw(mutated(
            {namespace + prefix + name: str(value) for name, value in valid.items()}, bends))
        if rarely(draw):
            chunk = draw(st.binary(max_size=20))
        transport = draw(st.sampled_from(["test", "multipart", "multipart", "raw", "both",
                                          "post-test"]))
        if transport == "test":
            method = draw(st.sampled_from(["GET", "GET", "HEAD", "DELETE"]))
            requests.append(Request(method, COLLECTION + _query(params, draw)))
        elif transport == "raw":
            method = draw(st.sampled_from(["POST", "POST", "PUT", "PATCH"]))
            requests.append(Request(method, COLLECTION + _query(params, draw),
                                    {"Content-Type": "application/octet-stream"}, chunk))
        else:
            file = None if transport == "post-test" else ("file", chunk)
            content_type, body = draw(multipart(params, file))
            path = COLLECTION + (_query(params, draw) if transport == "both" else "")
            requests.append(Request("POST", path, {"Content-Type": content_type}, body))
    return Script([delivered(draw, request) for request in requests])


# -- uid -----------------------------------------------------------------------------------

_json_junk = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), field_text,
                       st.integers(-2, 2**70), st.lists(st.integers(), max_size=2),
                       st.dictionaries(field_text, st.integers(), max_size=2))
_uid_bends: dict[str, st.SearchStrategy[str]] = {
    "uploadUid": st.sampled_from(
        ["", UPLOAD_ID, "0" * 32, "../" + "0" * 30, "0" * 64, UPLOAD_ID + "\n", UPLOAD_ID.upper()]
    ) | field_text,
    "chunkNumber": number_text(0, 1, 4, latin1=False),
    "chunkCount": number_text(0, 1, 4, 10**5, latin1=False),
    "totalSize": number_text(0, 1, 1000, latin1=False),
    "fileName": st.sampled_from(["", ".", "..", "a/b", "a\x00"]) | field_text,
    "stray": field_text,
}


@st.composite
def uid_scripts(draw: st.DrawFn) -> Script:
    """A first chunk creating the upload, then more chunks naming it, then mutated."""
    total = draw(st.integers(0, 40))
    count = draw(st.integers(1, 5))
    chunk_size = max(1, -(-total // count))
    count = max(1, -(-total // chunk_size))
    data = draw(st.binary(min_size=total, max_size=total))
    requests = []
    for index in range(draw(st.integers(1, 5))):
        number = draw(st.integers(0, count - 1))
        chunk = data[number * chunk_size:(number + 1) * chunk_size]
        if rarely(draw):
            chunk = draw(st.binary(max_size=20))
        valid = {"uploadUid": "" if index == 0 else UPLOAD_ID, "chunkNumber": str(number),
                 "chunkCount": str(count), "totalSize": str(total), "fileName": "a.bin"}
        fields = draw(mutated(valid, _uid_bends))
        transport = draw(st.sampled_from(["query", "multipart", "json"]))
        if transport == "json":
            document: dict[str, object] = {
                name: int(value) if name in valid and name not in ("uploadUid", "fileName")
                and value.isascii() and value.isdigit() else value
                for name, value in fields.items()
            }
            if rarely(draw):
                document[draw(st.sampled_from(sorted(valid)))] = draw(_json_junk)
            document["content"] = b64(chunk)
            if rarely(draw):
                document["content"] = draw(st.sampled_from(
                    ["", "!!!!", b64(chunk)[:-1], b64(chunk) + "\n"]) | _json_junk)
            body = json.dumps(document).encode()
            if rarely(draw):
                body = body[: draw(st.integers(0, len(body)))]
            requests.append(Request("POST", COLLECTION, {"Content-Type": "application/json"}, body))
        elif transport == "query":
            requests.append(Request("POST", COLLECTION + _query(fields, draw),
                                    {"Content-Type": "application/octet-stream"}, chunk))
        else:
            content_type, body = draw(multipart(fields, ("content", chunk)))
            requests.append(Request("POST", COLLECTION, {"Content-Type": content_type}, body))
    return Script([delivered(draw, request) for request in requests])
