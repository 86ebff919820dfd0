"""Replay the exact request streams flow.js 2.14.1 and resumable.js 1.1.0 produce (§5.3).

The pinned libraries run in Node with a recording ``XMLHttpRequest`` that
answers like tus_filter (test requests 204, uploads 200), so each library
sends its whole stream; Node's real ``File``/``Blob``/``FormData`` encode
the bodies.  Each stream is then replayed through WebTest against a fresh
filter, which must give every request the status the recorder gave, hand
the app one upload, byte-identical, and say ``complete`` exactly once.

Matrix: both libraries × ``method`` multipart/octet × ``forceChunkSize``
off/on × ``testMethod`` GET/POST × T ∈ {0, 1, C-1, C, C+1, 2C-1, 2C, 2.5C}
(C = 8), plus PUT/PATCH uploads, a ``parameterNamespace``, custom ``query``
keys and 3 parallel chunks.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.chunked import PATH, Server
from tests.support.node import run_node

CHUNK = 8
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 5 * CHUNK // 2]
NAME = "my file (1).txt"
RELATIVE_PATH = "dir/sub dir/my file (1).txt"

CAPTURE_JS = r"""
'use strict';
// Record what flow.js / resumable.js send for each upload spec in argv[2].
Object.defineProperty(global, 'navigator', {value: {userAgent: 'Chrome'}});
global.window = global;
global.document = {};
global.FileList = function FileList() {};
let sink = null;

class RecordingXHR {
  constructor() { this.listeners = {}; this.upload = {addEventListener() {}}; this.headers = {}; }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  open(method, url) { this.method = method; this.url = url; this.readyState = 1; }
  setRequestHeader(name, value) { this.headers[name] = value; }
  abort() {}
  async send(data) {
    const entry = {method: this.method, url: this.url, headers: {...this.headers}, body: ''};
    let isTest = true;
    if (data instanceof FormData) {
      isTest = ![...data.values()].some(value => value instanceof Blob);
      const encoded = new Response(data);
      entry.headers['Content-Type'] = encoded.headers.get('content-type');
      entry.body = Buffer.from(await encoded.arrayBuffer()).toString('base64');
    } else if (data) {  // octet: the Blob's type is the Content-Type, as in a browser
      isTest = false;
      if (data.type) entry.headers['Content-Type'] = data.type;
      entry.body = Buffer.from(await data.arrayBuffer()).toString('base64');
    }
    entry.answered = isTest ? 204 : 200;
    sink.push(entry);
    Object.assign(this, {status: entry.answered, readyState: 4, responseText: ''});
    for (const fn of this.listeners.load || []) fn.call(this, {type: 'load'});
  }
}
global.XMLHttpRequest = RecordingXHR;
const Flow = require('@flowjs/flow.js');
const Resumable = require('resumablejs');

function makeFile(spec) {
  const bytes = Uint8Array.from({length: spec.size}, (_, i) => (i * 7 + spec.seed) & 255);
  const file = new File([bytes], spec.name, {type: spec.type});
  Object.defineProperty(file, 'webkitRelativePath', {value: spec.relativePath});
  return file;
}

function upload(spec) {
  return new Promise((resolve, reject) => {
    const Library = spec.library === 'flow' ? Flow : Resumable;
    const client = new Library({target: spec.target, ...spec.options});
    client.on('fileSuccess', () => resolve());
    client.on('fileError', (file, message) => reject(new Error('fileError ' + message)));
    if (spec.library === 'flow') {
      client.addFile(makeFile(spec));
      client.upload();
    } else {
      client.on('fileAdded', () => setTimeout(() => client.upload(), 0));
      client.addFile(makeFile(spec));
    }
  });
}

(async () => {
  const streams = [];
  for (const spec of JSON.parse(process.argv[2])) {
    sink = [];
    await upload(spec);
    streams.push(sink);
  }
  console.log(JSON.stringify(streams));
})().catch(error => { console.error(error); process.exit(1); });
"""


def spec(library: str, size: int, seed: int, **options: Any) -> dict[str, Any]:
    if library == "resumable" and size == 0:
        options["minFileSize"] = 0  # resumable.js refuses empty files otherwise (R10)
    return {
        "library": library, "size": size, "seed": seed, "name": NAME,
        "relativePath": RELATIVE_PATH, "type": "text/plain", "target": PATH + "?x=1",
        "options": {"chunkSize": CHUNK, **options},
    }


def specs() -> list[Any]:
    rows: list[Any] = []
    for library in ("flow", "resumable"):
        for method in ("multipart", "octet"):
            for force in (False, True):
                for test_method in ("GET", "POST"):
                    for size in SIZES:
                        rows.append(pytest.param(
                            spec(library, size, len(rows), method=method, forceChunkSize=force,
                                 testMethod=test_method),
                            id=f"{library}-{method}-{'force' if force else 'floor'}"
                               f"-test{test_method}-T{size}",
                        ))
    extras = {
        "flow-PUT-uploads": spec("flow", 20, 1, uploadMethod="PUT"),
        "flow-PATCH-octet": spec("flow", 20, 2, uploadMethod="PATCH", method="octet"),
        "flow-3-parallel-query": spec("flow", 60, 3, simultaneousUploads=3,
                                      query={"token": "t", "flowFilename": "shadowed"}),
        "resumable-PUT-uploads": spec("resumable", 20, 4, uploadMethod="PUT"),
        "resumable-namespace": spec("resumable", 20, 5, parameterNamespace="ns_"),
        "resumable-3-parallel-query": spec("resumable", 60, 6, simultaneousUploads=3,
                                           query={"token": "t"}),
        "resumable-type-from-file": spec("resumable", 20, 7, setChunkTypeFromFile=True),
    }
    rows += [pytest.param(value, id=key) for key, value in extras.items()]
    return rows


SPECS = specs()


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every spec's recorded request stream, from one Node run."""
    script = tmp_path_factory.mktemp("replay") / "capture.js"
    script.write_text(CAPTURE_JS)
    recorded = run_node(script, json.dumps([row.values[0] for row in SPECS]))
    return {json.dumps(row.values[0]): stream for row, stream in zip(SPECS, recorded, strict=True)}


def content(size: int, seed: int) -> bytes:
    return bytes((index * 7 + seed) & 255 for index in range(size))


@pytest.mark.parametrize("upload_spec", SPECS)
def test_replay(
    tmp_path: Path, streams: dict[str, list[dict[str, Any]]], upload_spec: dict[str, Any]
) -> None:
    stream = streams[json.dumps(upload_spec)]
    server = Server(tmp_path)
    completions = []
    for exchange in stream:
        response = server.app.request(
            exchange["url"],
            method=exchange["method"],
            headers=exchange["headers"],
            body=base64.b64decode(exchange["body"]) if exchange["method"] != "GET" else None,
            expect_errors=True,
        )
        assert response.status_int == exchange["answered"], (exchange, response.body)
        assert response.headers["Cache-Control"] == "no-store"
        if response.status_int == 200:
            completions.append(json.loads(response.body)["complete"])
    assert completions.count(True) == 1 and completions[-1] is True
    [call] = server.downstream.calls
    expected = content(upload_spec["size"], upload_spec["seed"])
    assert Path(call["path"]).read_bytes() == expected
    protocol = "flowjs" if upload_spec["library"] == "flow" else "resumablejs"
    assert (call["protocol"], call["size"], call["filename"]) == (protocol, len(expected), NAME)
    assert call["content_type"] == "text/plain"  # flow: the part's or body's; resumable: type
    assert call["metadata"]["relativePath"] == RELATIVE_PATH
    assert call["metadata"]["identifier"].startswith(f"{len(expected)}-")
