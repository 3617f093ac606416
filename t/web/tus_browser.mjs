// vconv: the page's tus upload in Chromium, cut off mid-way.
//
//   node t/web/tus_browser.mjs BASE_URL FILE ARTIFACT_DIR
//
// 1. The upload is throttled (CDP Network.emulateNetworkConditions), the
//    browser goes offline part of the way and online again: the page
//    resumes by itself and the file converts.
// 2. Offline part of the way again, then the page is reloaded and the same
//    file picked again: the page offers "Resume upload", which goes on
//    with the same upload and job.
// Prints TAP, and "# job N ID" for each job for the caller to check;
// exits 1 if a test failed.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const [server, file, artifacts] = process.argv.slice(2);

// Loopback is too fast to cut an upload mid-way, and Chromium's upload
// throttling does not slow an XHR body: the browser talks to the server
// through this proxy, which sends at most RATE bytes a second upstream.
// A lost network also loses its connections: cut() drops them all, as
// the browser goes offline.
const RATE = 2 * 1024 * 1024;
const up = new URL(server);
const conns = new Set();
const proxy = net.createServer((c) => {
  const s = net.connect(+up.port, up.hostname);
  conns.add(c); conns.add(s);
  const end = () => { c.destroy(); s.destroy(); conns.delete(c); conns.delete(s); };
  c.on('error', end); s.on('error', end); c.on('close', end); s.on('close', end);
  s.pipe(c);
  c.on('data', (d) => {
    s.write(d);
    c.pause();
    setTimeout(() => c.resume(), Math.ceil(d.length / RATE * 1000));
  });
});
await new Promise((res) => proxy.listen(0, '127.0.0.1', res));
const cut = () => { for (const x of conns) x.destroy(); conns.clear(); };
const base = `http://127.0.0.1:${proxy.address().port}/`;
fs.mkdirSync(artifacts, { recursive: true });
const size = fs.statSync(file).size;

let n = 0, failed = 0;
const diag = (t) => String(t).split('\n').forEach((l) => console.log(`# ${l}`));
function ok(cond, name, why = '') {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && why) diag(why);
  return cond;
}
async function step(name, fn) {
  try {
    return ok((await fn()) !== false, name);
  } catch (e) {
    return ok(false, name, e.stack || e);
  }
}

const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vconv-tus-'));
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
  viewport: { width: 1280, height: 800 },
});
const page = ctx.pages()[0] || await ctx.newPage();
page.setDefaultTimeout(20000);
const errors = [];
page.on('pageerror', (e) => errors.push(String(e.stack || e)));
if (process.env.TUS_DEBUG) page.on('console', (m) => diag(`console: ${m.text()}`));
const cdp = await ctx.newCDPSession(page);
await cdp.send('Network.enable');
const network = async (online) => {
  await cdp.send('Network.emulateNetworkConditions',
    { offline: !online, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  if (!online) cut();
};

const items = page.locator('#items > li');
async function load() {
  await page.goto(base, { waitUntil: 'load' });
  await page.locator('html[data-ready]').waitFor();
  await page.locator('#fmt-mp4').waitFor({ state: 'attached' });
}
// the upload's offset on the server, from its URL in tus-js-client's storage
const serverOffset = () => page.evaluate(async () => {
  const k = Object.keys(localStorage).find((x) => x.startsWith('tus::'));
  if (!k) return null;
  const u = JSON.parse(localStorage.getItem(k)).uploadUrl;
  const r = await fetch(u, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  return { url: u, status: r.status, offset: +r.headers.get('Upload-Offset') };
});

// until the server has this much of the upload (its HEAD; the page's own
// progress runs ahead by what the sockets buffer)
async function serverAt(share) {
  for (let i = 0; i < 600; i++) {
    const o = await serverOffset().catch(() => null);
    if (o && o.offset >= share * size) return o.offset;
    await page.waitForTimeout(100);
  }
  throw new Error('the upload did not get going');
}

try {
  await load();
  ok(await page.evaluate(() => typeof window.tus?.Upload === 'function'),
     'the page has tus-js-client from its own server');

  let id1 = null;
  await step('offline mid-upload, online again: the page resumes by itself and the file converts', async () => {
    await page.check('#fmt-mp4');
    await network(true);
    await page.setInputFiles('#file', file);
    const it = items.last();
    await page.click('#go');
    const cut = await serverAt(0.2) / size;
    await network(false);
    await it.and(page.locator('[data-reconnecting="1"]')).waitFor({ timeout: 20000 });
    await page.waitForTimeout(1500);
    await network(true);
    const st = await it.and(page.locator('[data-status=done], [data-status=failed]'))
      .waitFor({ timeout: 120000 }).then(() => it.getAttribute('data-status'));
    id1 = await it.getAttribute('data-job');
    diag(`cut at ${Math.round(cut * 100)} %, then ${st}, job ${id1}`);
    console.log(`# job 1 ${id1}`);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    return cut > 0.2 && cut < 1;
  });

  await step('offline mid-upload, then a reload: picking the file again offers "Resume upload", which finishes the same job', async () => {
    await network(true);
    await page.check('#fmt-mp4');
    await page.setInputFiles('#file', file);
    await page.click('#go');
    await serverAt(0.2);
    await network(false);
    await page.waitForTimeout(1000);
    // back online: the reload cuts the upload that resumed
    await network(true);
    await load();
    await page.waitForTimeout(1000);
    const before = await serverOffset();
    diag(`server after the cut and the reload: ${JSON.stringify(before)}`);
    await page.check('#fmt-mp4');
    await page.setInputFiles('#file', file);
    const offer = page.locator('#items > li:last-child .resume-offer');
    await offer.waitFor({ timeout: 15000 });
    diag(`offer: ${await offer.innerText()}`);
    const it = items.last();
    let firstPatch = null;
    const spy = (r) => {
      if (r.method() === 'PATCH' && firstPatch === null) firstPatch = +r.headers()['upload-offset'];
    };
    page.on('request', spy);
    await offer.locator('button').click();
    await it.and(page.locator('[data-status=done], [data-status=failed]')).waitFor({ timeout: 120000 });
    page.off('request', spy);
    const st = await it.getAttribute('data-status');
    const id2 = await it.getAttribute('data-job');
    console.log(`# job 2 ${id2}`);
    diag(`resumed: first PATCH at ${firstPatch}, ${st}, job ${id2}`);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    return before && before.offset > 0 && before.offset < size && firstPatch === before.offset
      && before.url.endsWith(`/${id2}`);
  });

  ok(errors.length === 0, 'no page errors', errors.join('\n'));
} finally {
  await ctx.close().catch(() => {});
  cut();
  proxy.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
