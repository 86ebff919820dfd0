// Upload one file with tus-js-client against a live tus_filter.
//
// Usage: node tus_upload.js '<json config>'
//   endpoint      collection URL (e.g. http://127.0.0.1:PORT/files)
//   file          path of the file to upload
//   options       tus-js-client options merged over the defaults below
//   source        "buffer" (default) or "stream": a Readable of unknown size (needs
//                 chunkSize).  A PassThrough, not fs.createReadStream: tus-js-client
//                 4.3.1's StreamSource waits forever for 'readable' on an ended
//                 fs.ReadStream, and also stalls when the size is a multiple of chunkSize.
//   abortAfter    abort once this many bytes are accepted (simulates a stopped client)
//   terminate     after success, DELETE the upload with Upload.terminate()
//
// Prints one JSON line: {url, bytesAccepted, aborted, terminated, requests}
// where requests lists [method, status, Upload-Offset request header] per request.
'use strict'

const fs = require('node:fs')
const { PassThrough } = require('node:stream')
const tus = require('tus-js-client')

const config = JSON.parse(process.argv[2])
const requests = []
let upload = null
let bytesAccepted = 0

function report(extra) {
  console.log(
    JSON.stringify({
      url: upload.url,
      bytesAccepted,
      requests,
      aborted: false,
      terminated: false,
      ...extra,
    }),
  )
}

function fail(error) {
  console.error(String(error))
  process.exitCode = 1
}

let input = fs.readFileSync(config.file)
if (config.source === 'stream') {
  const stream = new PassThrough()
  stream.end(input)
  input = stream
}

upload = new tus.Upload(input, {
  endpoint: config.endpoint,
  retryDelays: [0, 200, 500],
  ...config.options,
  onAfterResponse(req, res) {
    requests.push([req.getMethod(), res.getStatus(), req.getHeader('Upload-Offset') ?? null])
  },
  onChunkComplete(chunkSize, accepted) {
    bytesAccepted = accepted
    if (config.abortAfter != null && accepted >= config.abortAfter) {
      upload.abort().then(() => report({ aborted: true }), fail)
    }
  },
  onSuccess() {
    if (!config.terminate) {
      report({})
      return
    }
    tus.Upload.terminate(upload.url, { protocol: upload.options.protocol }).then(
      () => report({ terminated: true }),
      fail,
    )
  },
  onError: fail,
})
upload.start()
