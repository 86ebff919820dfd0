// Harness smoke test: prove Node resolves the pinned tus-js-client.
// Prints one JSON line: {"isSupported": bool, "version": string, "argv": [...]}.
'use strict'

const tus = require('tus-js-client')
const { version } = require('tus-js-client/package.json')

console.log(JSON.stringify({ isSupported: tus.isSupported, version, argv: process.argv.slice(2) }))
