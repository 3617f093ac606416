// vconv: tus-js-client (the npm package the page vendors) in Node against
// a running server: an upload in small chunks, aborted part of the way,
// then resumed by a new Upload from the server's offset.
//
//   node t/web/tus_node.mjs ENDPOINT FILE CHUNK_BYTES ABORT_AFTER_CHUNKS
//
// Prints one JSON line: {id, url, offset_at_abort, head_offset,
// first_patch_offset, patches_before, patches_after, error}.

import fs from 'node:fs';
import * as tus from 'tus-js-client';

const [endpoint, file, chunkArg, abortArg] = process.argv.slice(2);
const data = fs.readFileSync(file);
const chunkSize = +chunkArg || 65536;
const abortAfter = +abortArg || 3;
const out = { patches_before: 0, patches_after: 0 };

function done(extra = {}) {
  Object.assign(out, extra);
  console.log(JSON.stringify(out));
  process.exit(out.error ? 1 : 0);
}

const metadata = { filename: 'node.mkv', format: 'mp4', height: '120' };

// first: some chunks, then the connection "drops" (abort, no termination)
const first = new tus.Upload(data, {
  endpoint, chunkSize, metadata, retryDelays: null,
  onAfterResponse: (req, res) => {
    if (req.getMethod() === 'PATCH' && res.getStatus() === 204) out.patches_before++;
  },
  onChunkComplete: (size, sent) => {
    if (out.patches_before >= abortAfter && out.offset_at_abort === undefined) {
      out.offset_at_abort = sent;
      first.abort(false).then(resume, (e) => done({ error: `abort: ${e}` }));
    }
  },
  onSuccess: () => done({ error: 'the first upload finished before its abort' }),
  onError: (e) => done({ error: `first upload: ${e}` }),
});
first.start();

async function resume() {
  out.url = first.url;
  out.id = decodeURIComponent(first.url.split('/').pop());
  const head = await fetch(first.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  out.head_offset = +head.headers.get('upload-offset');
  // a new client that knows only the URL: it asks the server where to go on
  const second = new tus.Upload(data, {
    uploadUrl: first.url, chunkSize, retryDelays: null,
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && out.first_patch_offset === undefined) {
        out.first_patch_offset = +req.getHeader('Upload-Offset');
      }
    },
    onAfterResponse: (req, res) => {
      if (req.getMethod() === 'PATCH' && res.getStatus() === 204) out.patches_after++;
    },
    onSuccess: () => done(),
    onError: (e) => done({ error: `resumed upload: ${e}` }),
  });
  second.start();
}
