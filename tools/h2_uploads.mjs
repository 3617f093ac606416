#!/usr/bin/env node
// N HTTP/2 uploads of one file at once, each on its own connection (as N
// browsers would), for bench/run.sh's 50-upload rows.  curl 7.88 (Debian
// 12's) spins on a CPU while its stream's window is exhausted (curl issue
// 10618, fixed in 8.0): fifty of them starve a small machine, so that the
// windows' size, not the server, sets the time.  Node's HTTP/2 client
// (nghttp2 in an event loop) waits instead, as browsers do.
//
//   node tools/h2_uploads.mjs URL FILE [N] [RATE_BYTES_PER_S]
//
// URL http:// (h2c, prior knowledge) or https:// (certificate not
// checked).  Prints one line per upload, "STATUS SECONDS", as each ends;
// RATE > 0 paces each upload (the slow rows).

import http2 from 'node:http2';
import fs from 'node:fs';

const [url, file, nArg, rateArg] = process.argv.slice(2);
if (!url || !file) {
    console.error('usage: h2_uploads.mjs URL FILE [N] [RATE]');
    process.exit(2);
}
const n = Number(nArg || 1);
const rate = Number(rateArg || 0);
const size = fs.statSync(file).size;
const u = new URL(url);
const t0 = process.hrtime.bigint();
const secs = () => Number(process.hrtime.bigint() - t0) / 1e9;

function upload() {
    return new Promise((resolve) => {
        const s = http2.connect(u.origin, { rejectUnauthorized: false });
        let status = 0;
        const done = (code) => {
            s.close();
            resolve(code);
        };
        s.on('error', () => done(status));
        const req = s.request({
            ':method': 'POST', ':path': u.pathname + u.search,
            'content-length': size, 'x-file-name': 'in.mp4',
        });
        req.on('response', (h) => { status = h[':status']; });
        req.on('data', () => {});
        req.on('end', () => done(status));
        req.on('error', () => done(status));
        const rs = fs.createReadStream(file, { highWaterMark: 256 << 10 });
        if (!rate) {
            rs.pipe(req);
            return;
        }
        // paced: a chunk, then a pause as long as the chunk takes at RATE
        rs.on('data', (c) => {
            rs.pause();
            const more = req.write(c);
            setTimeout(() => {
                if (more) rs.resume(); else req.once('drain', () => rs.resume());
            }, 1000 * c.length / rate);
        });
        rs.on('end', () => req.end());
    });
}

await Promise.all(Array.from({ length: n }, () => upload().then((code) => {
    console.log(`${code} ${secs().toFixed(3)}`);
})));
