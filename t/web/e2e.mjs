// vconv: the web page (html/) in a real browser, against a running server.
//
//   node t/web/e2e.mjs BASE_URL [ARTIFACT_DIR] [MEDIA_DIR]
//
// Debian's chromium driven by playwright-core. MEDIA_DIR holds small.mp4
// (2 s 320x240 H.264/AAC), big.mp4 (long enough to cancel) and tall.mp4
// (1 s 320x568) and wide.mp4 (1 s 960x540); they are made with ffmpeg if
// missing. The server is
// expected to run conf.example (its limit_req and JSON error pages).
// Prints TAP; exits 1 if a test failed.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const base = process.argv[2] || 'http://127.0.0.1:8080/';
const artifacts = path.resolve(process.argv[3] || 't/artifacts/web');
const media = path.resolve(process.argv[4] || path.join(artifacts, 'media'));
const slow = +(process.env.VCONV_E2E_TIMEOUT || 120) * 1000;
fs.mkdirSync(artifacts, { recursive: true });
fs.mkdirSync(media, { recursive: true });

// ---------- TAP ----------
let n = 0, failed = 0;
const diag = (text) => String(text).split('\n').forEach((l) => console.log(`# ${l}`));
function ok(cond, name, why = '') {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && why) diag(why);
  return cond;
}
async function step(name, fn) {
  try {
    const r = await fn();
    return ok(r !== false, name);
  } catch (e) {
    return ok(false, name, e.stack || e);
  }
}

// ---------- media ----------
function ffmpeg(args) { execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] }); }
const small = path.join(media, 'small.mp4'), big = path.join(media, 'big.mp4');
if (!fs.existsSync(small)) {
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', small]);
}
if (!fs.existsSync(big)) {
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25:duration=20', '-f', 'lavfi', '-i', 'sine=frequency=330:duration=20',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', big]);
}
const tall = path.join(media, 'tall.mp4');
if (!fs.existsSync(tall)) {
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x568:rate=25:duration=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', tall]);
}
const wide = path.join(media, 'wide.mp4');
if (!fs.existsSync(wide)) {
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=960x540:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=frequency=550:duration=1',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', wide]);
}
function probe(file) {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', file]));
}

// ---------- browser ----------
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vconv-e2e-'));
const browser = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  viewport: { width: 1280, height: 800 },
  acceptDownloads: true,
}).catch((e) => { ok(false, 'chromium starts', e.stack || e); console.log(`1..${n}`); process.exit(1); });
ok(true, 'chromium starts');

const page = browser.pages()[0] || await browser.newPage();
page.setDefaultTimeout(15000);
const pageErrors = [], foreign = [];
const origin = new URL(base).origin;
page.on('pageerror', (e) => pageErrors.push(String(e.stack || e)));
// Each item's states in order, to check that progress was shown.
await page.addInitScript(() => {
  window.__statuses = {};
  window.__said = [];
  new MutationObserver((list) => {
    for (const m of list) {
      if (m.type === 'attributes' && m.target.parentElement?.id === 'items') {
        const h = (window.__statuses[m.target.dataset.item] ||= []);
        const st = m.target.dataset.status;
        if (h[h.length - 1] !== st) h.push(st);
      }
      const live = m.target.closest?.('#announce') || (m.target.parentElement?.id === 'announce' && m.target.parentElement);
      if (m.type === 'childList' && live && live.textContent) window.__said.push(live.textContent);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
});
page.on('request', (r) => { const u = r.url(); if (/^https?:/.test(u) && !u.startsWith(origin)) foreign.push(u); });

const items = page.locator('#items > li');
const item = (i) => items.nth(i);
async function waitStatus(loc, statuses, timeout = slow) {
  const want = [].concat(statuses);
  await loc.and(page.locator(want.map((s) => `[data-status=${s}]`).join(','))).waitFor({ timeout });
  return loc.getAttribute('data-status');
}
// sizes as the page writes them (html/app.js fmtBytes)
function fmtBytes(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${u[i]}`;
}
let mp4Facts = null;

async function download(loc, name) {
  const [dl] = await Promise.all([page.waitForEvent('download'), loc.locator('a.download').click()]);
  const file = path.join(artifacts, name);
  await dl.saveAs(file);
  return { file, suggested: dl.suggestedFilename() };
}
const shot = async (name, opts = {}) => {
  await page.waitForTimeout(300); // let colour transitions settle
  await page.screenshot({ path: path.join(artifacts, name), ...opts });
};

const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
const inView = (loc) => loc.evaluate((el) => {
  const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
});
// The focused element in words: "button.retry in item 4", or "body".
const focused = () => page.evaluate(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return 'body';
  const li = a.closest('#items > li');
  return `${a.tagName.toLowerCase()}${a.id ? '#' + a.id : ''}${a.classList.length ? '.' + [...a.classList].join('.') : ''}`
    + (li ? ` in item ${li.dataset.item}` : '');
});
const said = () => page.evaluate(() => window.__said.slice());
const api = (p) => new URL(`api/${p}`, base).href;
const longNames = [
  'Holiday_in_the_mountains_with_the_whole_family_2024-07-14_GoPro_HERO11_Black_4K_60fps_stabilised_final_final_v3.mp4',
  'A very long name with spaces that a phone camera app would never choose but people rename files like this anyway.mp4',
  'Ünïcödé—très_long_nom_de_fichier_sans_espaces_pour_vérifier_que_rien_ne_déborde_sur_un_téléphone_étroit.mp4',
];

// A ZIP's entries read back (central directory), each checked with its CRC-32.
function readZip(file) {
  const b = fs.readFileSync(file);
  const eocd = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = b.readUInt16LE(eocd + 10);
  let p = b.readUInt32LE(eocd + 16);
  const crcTable = [...Array(256)].map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (d) => { let c = ~0 >>> 0; for (const x of d) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8); return ~c >>> 0; };
  const out = [];
  for (let i = 0; i < count; i++) {
    if (b.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    const want = b.readUInt32LE(p + 16), size = b.readUInt32LE(p + 20), nlen = b.readUInt16LE(p + 28);
    const xlen = b.readUInt16LE(p + 30), clen = b.readUInt16LE(p + 32), off = b.readUInt32LE(p + 42);
    const name = b.subarray(p + 46, p + 46 + nlen).toString('utf8');
    const lnlen = b.readUInt16LE(off + 26), lxlen = b.readUInt16LE(off + 28);
    const data = b.subarray(off + 30 + lnlen + lxlen, off + 30 + lnlen + lxlen + size);
    out.push({ name, size, crcOk: crc(data) === want, data });
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

try {
  await step('page loads and lists the formats by group', async () => {
    const res = await page.goto(base, { waitUntil: 'load' });
    if (!res.ok()) throw new Error(`GET ${base}: ${res.status()}`);
    await page.locator('html[data-ready]').waitFor();
    await page.locator('#fmt-mp4').waitFor({ state: 'attached' });
    const legends = await page.locator('#formats legend').allTextContents();
    const names = await page.locator('#formats input[name=format]').evaluateAll((els) => els.map((e) => e.value));
    diag(`groups: ${legends.join(', ')}; formats: ${names.join(' ')}`);
    return names.includes('mp4') && names.includes('gif') && names.includes('mp3') && legends.length >= 3;
  });

  await step('every form control has a label; a live region exists', async () => {
    const unlabeled = await page.locator('#opts input, #opts select, #file').evaluateAll((els) =>
      els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id || e.name));
    if (unlabeled.length) throw new Error(`no label: ${unlabeled.join(', ')}`);
    return (await page.locator('[aria-live]').count()) > 0;
  });

  await step('keyboard: Tab reaches the file picker first, then the formats', async () => {
    await page.locator('body').focus();
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement.id);
    await page.keyboard.press('Tab');
    const second = await page.evaluate(() => document.activeElement.name);
    diag(`focus: ${first}, then ${second}`);
    return first === 'file' && second === 'format';
  });

  await step('keyboard: arrow keys move through the formats as a grid (down goes to the row below)', async () => {
    await page.check('#fmt-mp4');
    await page.focus('#fmt-mp4');
    const at = () => page.evaluate(() => {
      const a = document.activeElement, r = a.closest('.chip').getBoundingClientRect();
      return { id: a.id, checked: a.checked, x: r.left + r.width / 2, y: r.top };
    });
    const p0 = await at();
    await page.keyboard.press('ArrowDown');
    const p1 = await at();
    await page.keyboard.press('ArrowRight');
    const p2 = await at();
    await page.keyboard.press('ArrowUp');
    const p3 = await at();
    diag(`mp4 -down-> ${p1.id} -right-> ${p2.id} -up-> ${p3.id}`);
    await page.check('#fmt-mp4');
    return p1.y > p0.y && Math.abs(p1.x - p0.x) < 20 && p1.checked && p2.y === p1.y && p2.x > p1.x
      && p3.y === p0.y && Math.abs(p3.x - p2.x) < 20;
  });

  await step('client-side check refuses a width the server would refuse', async () => {
    await page.setInputFiles('#file', small);
    await page.locator('#more').evaluate((d) => { d.open = true; });
    await page.selectOption('#size', 'custom');
    await page.fill('#width', '5');
    let posted = false;
    const spy = (r) => { if (r.method() === 'POST') posted = true; };
    page.on('request', spy);
    await page.click('#go');
    await page.locator('#opt-error:not([hidden])').waitFor();
    const text = await page.locator('#opt-error').textContent();
    page.off('request', spy);
    diag(text);
    const invalid = await page.locator('#width').getAttribute('aria-invalid');
    await page.fill('#width', '');
    await page.selectOption('#size', '');
    return !posted && /between/.test(text) && invalid === 'true' && await item(0).getAttribute('data-status') === 'ready';
  });

  await step('desktop 1280x800 with Options open: the Convert button is on screen', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    const go = page.locator('#go');
    const box = await go.boundingBox();
    diag(`#go at y=${Math.round(box.y)}..${Math.round(box.y + box.height)} of 800`);
    return await inView(go);
  });

  const first = item(0);
  await step('MP4 (from 0.5 s): an estimate before, then upload, convert, done', async () => {
    await page.check('#fmt-mp4');
    await page.fill('#start', '0.5');
    await first.locator('.estimate:not(:empty)').waitFor();
    const est = await first.locator('.estimate').textContent();
    const warn = await first.locator('.warn').isVisible();
    diag(`estimate: ${est}; warning shown: ${warn}`);
    await page.click('#go');
    const st = await waitStatus(first, ['done', 'failed']);
    if (st !== 'done') throw new Error(await first.locator('.message').innerText());
    return /about \d/.test(est) && !warn;
  });

  await step('MP4: result shows preview, sizes, durations, expiry', async () => {
    await first.locator('.preview video').waitFor();
    await page.waitForFunction(() => document.querySelector('#items > li .preview video')?.readyState >= 1, null, { timeout: 15000 });
    const facts = {
      inBytes: await first.locator('.in-bytes').textContent(), outBytes: await first.locator('.out-bytes').textContent(),
      inDur: await first.locator('.in-dur').textContent(), outDur: await first.locator('.out-dur').textContent(),
      expires: await first.locator('.expires').textContent(),
    };
    diag(JSON.stringify(facts));
    mp4Facts = facts;
    // the page's figures are the file's own: its size as the page writes
    // sizes, 2 s in, 1.5 s out (start=0.5), kept for conf.example's 1 h
    return facts.inBytes === fmtBytes(fs.statSync(small).size)
      && facts.inDur === '0:02.0' && /^0:01\.[45]$/.test(facts.outDur)
      && /\(in (59|60) min\)/.test(facts.expires);
  });

  await step('MP4: download is H.264 320x240, about 1.5 s', async () => {
    const { file, suggested } = await download(first, 'download.mp4');
    const p = probe(file);
    const v = p.streams.find((s) => s.codec_type === 'video');
    const dur = +p.format.duration;
    diag(`${suggested}: ${p.format.format_name} ${v?.codec_name} ${v?.width}x${v?.height} ${dur}s, audio ${p.streams.some((s) => s.codec_type === 'audio')}`);
    diag(`page said ${mp4Facts?.outBytes}, the file has ${fmtBytes(fs.statSync(file).size)}`);
    return v?.codec_name === 'h264' && v.width === 320 && v.height === 240 && Math.abs(dur - 1.5) < 0.3 && /\.mp4$/.test(suggested)
      && mp4Facts?.outBytes === fmtBytes(fs.statSync(file).size);
  });

  await shot('desktop-light-mp4-done.png');

  const second = item(1);
  await step('"Convert again" keeps the file\'s own settings (from 0.5 s) although the form changed; its format is its own (GIF), with a size warning', async () => {
    await page.fill('#start', '');
    await first.locator('button.again').click();
    await second.waitFor();
    const foc = await focused();
    const own = await second.locator('.own').textContent();
    await second.locator('select.fmt').selectOption('gif');
    await second.locator('.warn:not([hidden])').waitFor();
    const warn = await second.locator('.warn').textContent();
    const go = await page.locator('#go').textContent();
    diag(`focus: ${foc}; own: ${own}; warning: ${warn}; button: ${go}`);
    await shot('desktop-light-ready.png');
    await page.click('#go');
    const st = await waitStatus(second, ['done', 'failed']);
    if (st !== 'done') throw new Error(await second.locator('.message').innerText());
    await page.waitForFunction(() => document.querySelectorAll('#items > li')[1]?.querySelector('.preview img')?.naturalWidth > 0);
    return /select\.fmt in item/.test(foc) && /from 0:00\.5/.test(own) && /GIF/.test(warn) && /larger/.test(warn)
      && /GIF/.test(go) && (await items.count()) === 2 && await page.locator('#fmt-mp4').isChecked();
  });

  await step('GIF: download is a GIF animation of about 1.5 s', async () => {
    const { file } = await download(second, 'download.gif');
    const p = probe(file);
    const v = p.streams[0];
    const dur = +p.format.duration;
    diag(`${p.format.format_name} ${v.codec_name} ${v.width}x${v.height} ${dur}s; note: ${await second.locator('.notes').textContent()}`);
    return v.codec_name === 'gif' && v.width > 0 && v.width <= 320 && Math.abs(dur - 1.5) < 0.3;
  });

  const third = item(2);
  // The server may refuse it at once (HTTP 415) or, as it converts while it
  // uploads, take it (202) and fail the job with the same error code.
  await step('a text file gets the 415 message, and no useless "Try again"', async () => {
    await page.check('#fmt-mp4');
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, this is not a video\n'.repeat(20)) });
    const icon = await third.locator('.icon').getAttribute('data-type');
    await page.click('#go');
    await waitStatus(third, 'failed', 30000);
    const msg = await third.locator('.msg').textContent();
    const detail = await third.locator('.msg-detail').textContent();
    const retry = await third.locator('.message button.retry').isVisible();
    const change = await third.locator('.message button.change').isVisible();
    diag(`${msg} [${detail}] icon ${icon}; retry shown ${retry}, change shown ${change}`);
    return /not a video, audio or image file|does not accept files of this type/.test(msg)
      && /HTTP 415|unsupported_input|input_format_not_allowed/.test(detail) && !retry && !change && icon === 'file';
  });

  await step('damaged files (decode_error, empty_output) say so and offer no retry; the icons show the file kind', async () => {
    const r = await page.evaluate(async () => {
      const m = await import('./api.js');
      return ['decode_error', 'empty_output', 'stalled'].map((code) => {
        const e = m.jobError({ status: 'failed', error: { code, message: 'x' } });
        return [code, e.message, m.remedy(e)];
      });
    });
    diag(JSON.stringify(r));
    const icons = await page.locator('#items .icon').evaluateAll((els) => els.map((e) => e.dataset.type + ':' + (e.querySelector('svg') ? 'svg' : e.textContent)));
    diag(`icons: ${icons.join(' ')}`);
    return /damaged or incomplete/.test(r[0][1]) && r[0][2] === 'none' && /damaged or incomplete/.test(r[1][1]) && r[1][2] === 'none'
      && r[2][2] === 'retry' && icons[0] === 'video:svg';
  });

  await step('a size larger than the video is noted: "Kept 320×568: the video is smaller than 720p"', async () => {
    await page.setInputFiles('#file', tall);
    const it = items.last();
    await page.selectOption('#size', '720');
    await page.click('#go');
    const st = await waitStatus(it, ['done', 'failed']);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    await it.locator('.notes:not([hidden])').waitFor();
    const text = await it.locator('.notes').textContent();
    diag(text);
    await page.selectOption('#size', '');
    return /Kept 320×568: the video is smaller than 720p/.test(text);
  });

  await step('cancel during a conversion: the job goes, focus lands on the item\'s "Try again"', async () => {
    await page.check('#fmt-webm');
    await page.setInputFiles('#file', big);
    const it = items.last();
    const key = await it.getAttribute('data-item');
    await page.click('#go');
    await waitStatus(it, 'running');
    const id = await it.getAttribute('data-job');
    // conversion progress arrives (SSE, or polling) before we cancel
    await page.waitForFunction((k) => document.querySelector(`#items > li[data-item="${k}"] progress`)?.value > 0, key, { timeout: slow });
    diag(`running: ${await it.locator('.prog-line .detail').textContent()}`);
    await it.screenshot({ path: path.join(artifacts, 'item-running.png') });
    const t0 = Date.now();
    const del = page.waitForResponse((r) => r.request().method() === 'DELETE');
    await it.locator('button.cancel').click();
    const res = await del;
    await waitStatus(it, 'canceled', 5000);
    const foc = await focused();
    // The job is gone (404) or says canceled, within a few seconds.
    let after = 0, status = '';
    for (let i = 0; i < 10; i++) {
      const r = await page.request.get(api(`jobs/${id}`));
      after = r.status();
      status = after === 200 ? (await r.json()).status : '';
      if (after === 404 || after === 410 || status === 'canceled') break;
      await page.waitForTimeout(500);
    }
    const seen = await page.evaluate((k) => window.__statuses?.[k] || [], key);
    diag(`DELETE ${res.status()}; then GET ${after} ${status} (${Date.now() - t0} ms); states: ${seen.join(' > ')}; focus: ${foc}`);
    return seen.includes('uploading') && seen.includes('running') && res.status() === 204
      && (after === 404 || after === 410 || status === 'canceled') && foc === `button.ghost.retry in item ${key}`;
  });

  await step('remove: focus moves to the neighbouring file, not the page', async () => {
    const it = items.last();
    const prevKey = await items.nth((await items.count()) - 2).getAttribute('data-item');
    await it.locator('button.remove').click();
    const foc = await focused();
    diag(`focus: ${foc}`);
    return foc.endsWith(`in item ${prevKey}`);
  });

  await step('a batch of 14 files stays under conf.example\'s limit_req (no 429), and all convert', async () => {
    await page.click('#clear');
    await page.check('#fmt-mp4');
    const posts = [];
    const onRes = (r) => { if (r.request().method() === 'POST' && r.request().resourceType() === 'xhr') posts.push(r.status()); };
    page.on('response', onRes);
    const buf = fs.readFileSync(small);
    await page.setInputFiles('#file', [...Array(14)].map((_, i) => ({ name: `batch-${String(i + 1).padStart(2, '0')}.mp4`, mimeType: 'video/mp4', buffer: buf })));
    const t0 = Date.now();
    await page.click('#go');
    await page.waitForFunction(() => document.querySelectorAll('#items > li[data-status=done], #items > li[data-status=failed]').length === 14, null, { timeout: slow });
    page.off('response', onRes);
    const done = await page.locator('#items > li[data-status=done]').count();
    diag(`POSTs: ${posts.join(' ')}; ${done} done in ${Date.now() - t0} ms`);
    await page.click('#clear');
    // the page creates each upload with one POST (tus: 201), then PATCHes
    return done === 14 && posts.length === 14 && posts.every((st) => st === 201 || st === 202);
  });

  await step('a 429 from conf.example\'s limit_req is JSON with Retry-After; the page waits, sends again, and the file converts', async () => {
    await page.check('#fmt-mp4');
    const posts = [];
    let got429 = false;
    const onRes = (r) => {
      if (r.request().method() === 'POST' && r.request().resourceType() === 'xhr' && /\/api\/(jobs|uploads)\b/.test(r.url())) {
        posts.push(r.status());
        if (r.status() === 429) got429 = true;
      }
    };
    page.on('response', onRes);
    // Another client on this address keeps the upload bucket full until the
    // page has been refused once.
    let stop = false, first429 = null;
    const flood = (async () => {
      while (!stop && !got429) {
        // the page's creations (tus) have a limit_req of their own
        const r = await page.request.post(api('uploads/'), {
          headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1', 'Upload-Metadata': `format ${btoa('nope')}` } });
        if (r.status() === 429 && !first429) first429 = { type: r.headers()['content-type'], ra: r.headers()['retry-after'], body: await r.text() };
        await new Promise((res) => setTimeout(res, 40));
      }
    })();
    await new Promise((res) => setTimeout(res, 600));
    await page.setInputFiles('#file', small);
    const it = items.last();
    await page.click('#go');
    const st = await waitStatus(it, ['done', 'failed'], 60000);
    stop = true;
    await flood;
    page.off('response', onRes);
    const retried = await it.getAttribute('data-retried');
    const said = (await page.evaluate(() => window.__said.slice())).filter((t) => /busy/.test(t));
    diag(`flood's 429: ${JSON.stringify(first429)}; page's POSTs: ${posts.join(' ')}; retried ${retried}; said: ${said[0] || ''}`);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    return posts[0] === 429 && [201, 202].includes(posts[posts.length - 1]) && +retried >= 1
      && /application\/json/.test(first429?.type) && /^\d+$/.test(first429?.ra || '')
      && JSON.parse(first429.body).error?.code === 'rate_limited';
  });

  // ---------- a phone ----------
  await step('phone 390x844: three 960x540 files with long names; the list shows them and Convert is on screen at once', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#clear');
    await page.locator('#more').evaluate((d) => { d.open = false; });
    await page.evaluate(() => window.scrollTo(0, 0));
    const buf = fs.readFileSync(wide);
    await page.setInputFiles('#file', longNames.map((name) => ({ name, mimeType: 'video/mp4', buffer: buf })));
    const go = page.locator('#go');
    const text = await go.textContent();
    const picked = await page.locator('#picked').textContent();
    const ov = await overflow();
    diag(`button "${text}" in view ${await inView(go)}; picked: ${picked}; overflow ${ov}px`);
    await shot('phone-light-picked.png');
    return await inView(go) && /Convert 3 files/.test(text) && await inView(page.locator('#picked')) && ov <= 0
      && (await items.count()) === 3;
  });

  // Would leaving the page ask first? (the page's beforeunload handler)
  const asksBeforeLeaving = () => page.evaluate(() => {
    const e = new Event('beforeunload', { cancelable: true });
    window.dispatchEvent(e);
    return e.defaultPrevented;
  });

  await step('phone: the three convert; the page is never wider than the screen, with previews; leaving asks only while uploads wait', async () => {
    const saidBefore = (await said()).length;
    await page.click('#go');
    const asksWhileSending = await asksBeforeLeaving(); // two of the three wait their turn
    let worst = await overflow();
    for (let i = 0; i < 3; i++) {
      const st = await waitStatus(item(i), ['done', 'failed']);
      worst = Math.max(worst, await overflow());
      if (st !== 'done') throw new Error(await item(i).locator('.message').innerText());
    }
    await page.waitForFunction(() => [...document.querySelectorAll('#items .preview video')].every((v) => v.readyState >= 1), null, { timeout: 15000 });
    worst = Math.max(worst, await overflow());
    const wide = await page.locator('#items > li').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().right)));
    // the live region: the click queued a message for each of the three in
    // one moment; they are said in that order (the third's did not replace
    // the others), and each file's end is said
    const all = await page.waitForFunction(([n, names]) => {
      const s = window.__said.slice(n);
      return names.every((name) => s.some((t) => t.startsWith(name) && /is converted/.test(t)));
    }, [saidBefore, longNames], { timeout: 30000 }).then(() => true, () => false);
    const s = (await said()).slice(saidBefore);
    const order = s.map((t) => longNames.findIndex((name) => t.startsWith(name))).filter((i) => i >= 0)
      .filter((i, k, a) => a.indexOf(i) === k);
    const asksAfter = await asksBeforeLeaving();
    diag(`widest overflow ${worst}px; item right edges ${wide.join(', ')}; said: ${s.join(' / ')}`);
    diag(`leaving asks first: while sending ${asksWhileSending}, after ${asksAfter}`);
    return worst <= 0 && wide.every((r) => r <= 390) && all && order.join() === '0,1,2' && asksWhileSending && !asksAfter;
  });

  await step('phone screenshots, light and dark (viewport and full page)', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.emulateMedia({ colorScheme: 'light' });
    await shot('phone-light.png');
    await shot('phone-light-full.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('phone-dark.png');
    await shot('phone-dark-full.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    return (await overflow()) <= 0;
  });

  await step('"Download all": one ZIP with the three MP4s, names kept, CRCs right', async () => {
    const zip = page.locator('#zip');
    const label = await zip.textContent();
    const [dl] = await Promise.all([page.waitForEvent('download'), zip.click()]);
    const file = path.join(artifacts, 'all.zip');
    await dl.saveAs(file);
    const entries = readZip(file);
    diag(`${label}: ${dl.suggestedFilename()}: ${entries.map((e) => `${e.name} ${e.size} crc ${e.crcOk}`).join('; ')}`);
    const first = path.join(artifacts, 'from-zip.mp4');
    fs.writeFileSync(first, entries[0].data);
    const v = probe(first).streams.find((s) => s.codec_type === 'video');
    return entries.length === 3 && entries.every((e) => e.crcOk && e.size > 1000)
      && longNames.every((n) => entries.some((e) => e.name === n)) && v?.codec_name === 'h264' && /\.zip$/.test(dl.suggestedFilename());
  });

  await step('a reload brings the list back, with the downloads', async () => {
    const before = await page.locator('#items .name').allTextContents();
    await page.reload({ waitUntil: 'load' });
    await page.locator('html[data-ready]').waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('#items > li[data-status=done]').length === n, before.length, { timeout: 15000 });
    const after = await page.locator('#items .name').allTextContents();
    const hrefs = await page.locator('#items a.download').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    diag(`before: ${before.length}, after: ${after.length}; ${hrefs[0]}`);
    const r = await page.request.get(new URL(hrefs[0], base).href);
    return JSON.stringify(before) === JSON.stringify(after) && hrefs.every((h) => /output/.test(h)) && r.status() === 200
      && (await overflow()) <= 0;
  });

  await step('screenshots at desktop size, light and dark', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('desktop-light.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('desktop-dark.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    return (await overflow()) <= 0;
  });

  await step('keyboard only: pick, convert, cancel; focus stays on a sensible element', async () => {
    await page.click('#clear');
    const trail = [];
    const note = async (what) => { const f = await focused(); trail.push(`${what}: ${f}`); return f; };
    await page.focus('#file');
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Space')]);
    await chooser.setFiles(big);
    await page.waitForTimeout(200);
    const afterPick = await note('picked');
    let f = '';
    for (let i = 0; i < 25 && f !== 'button#go.primary'; i++) {
      await page.keyboard.press('Tab');
      f = await focused();
      if (f === 'body') break;
    }
    trail.push(`tabbed to: ${f}`);
    await page.keyboard.press('Enter');
    const afterGo = await note('convert');
    const it = items.last();
    await waitStatus(it, ['uploading', 'starting', 'queued', 'running']);
    for (let i = 0; i < 15 && !/^button\.ghost\.cancel/.test(f); i++) {
      await page.keyboard.press('Tab');
      f = await focused();
      if (f === 'body') break;
    }
    trail.push(`tabbed to: ${f}`);
    await page.keyboard.press('Enter');
    await waitStatus(it, 'canceled', 5000);
    const afterCancel = await note('cancel');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    const back = await note('back');
    diag(trail.join('; '));
    return afterPick === 'input#file' && afterGo === 'h2#queue-title' && /^button\.ghost\.retry in item/.test(afterCancel)
      && !trail.some((t) => /body$/.test(t));
  });

  await step('"Clear all" empties the list, focus goes to the file picker, a reload keeps it empty', async () => {
    await page.click('#clear');
    const foc = await focused();
    const n = await items.count();
    await page.reload({ waitUntil: 'load' });
    await page.locator('html[data-ready]').waitFor();
    await page.waitForTimeout(500);
    const m = await items.count();
    diag(`focus ${foc}; items ${n}, after reload ${m}`);
    return foc === 'input#file' && n === 0 && m === 0 && await page.locator('#empty').isVisible();
  });

  // conf.example's presets (issue 12): buttons with their labels; one
  // click picks the format, the upload says preset=NAME, and "Discord"
  // keeps the file under its size
  await step('presets: conf.example\'s labels as buttons; "Discord" picks MP4, sends preset=discord; the file is under 9 MiB', async () => {
    const labels = await page.locator('#preset-chips .preset .chip-name').allTextContents();
    const sent = [];
    // the options as sent: a POST's query, or a tus creation's Upload-Metadata
    const seen = (r) => {
      if (/\/api\/jobs\?/.test(r.url())) sent.push(r.url());
      else if (r.method() === 'POST' && /\/api\/uploads\/?$/.test(r.url())) {
        const m = (r.headers()['upload-metadata'] || '').split(',').map((kv) => kv.trim().split(' '));
        sent.push('?' + m.map(([k, v]) => `${k}=${Buffer.from(v || '', 'base64').toString()}`).join('&'));
      }
    };
    page.on('request', seen);
    await page.check('#fmt-mp3');
    await page.locator('#preset-chips .preset', { hasText: 'Discord' }).click();
    const pressed = await page.locator('#preset-chips .preset[aria-pressed=true] .chip-name').textContent();
    const mp4 = await page.locator('#fmt-mp4').isChecked();
    await page.setInputFiles('#file', small);
    const it = item(0);
    await it.locator('.estimate:not(:empty)').waitFor();
    const est = await it.locator('.estimate').textContent();
    await page.click('#go');
    const st = await waitStatus(it, ['done', 'failed']);
    page.off('request', seen);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    const { file } = await download(it, 'discord.mp4');
    const size = fs.statSync(file).size;
    const v = probe(file).streams.find((x) => x.codec_type === 'video');
    diag(`labels: ${labels.join(' | ')}; pressed: ${pressed}; estimate: ${est}; sent: ${sent.join(' ')}; ${size} bytes, ${v?.codec_name}`);
    return labels.includes('Discord (under 10 MB)') && labels.includes('Podcast MP3, 96 kbit/s') && pressed === 'Discord (under 10 MB)'
      && mp4 && sent.length === 1 && /[?&]preset=discord(&|$)/.test(sent[0]) && !/format=/.test(sent[0])
      && size <= 9 * 1024 * 1024 && v?.codec_name === 'h264';
  });

  await step('presets: changing an option by hand leaves the preset', async () => {
    await page.locator('#preset-chips .preset', { hasText: 'Web MP4' }).click();
    const on = await page.locator('#preset-chips .preset[aria-pressed=true]').count();
    if (!(await page.locator('#more').evaluate((e) => e.open))) await page.locator('#more summary').click();
    await page.selectOption('#quality', '35');
    const off = await page.locator('#preset-chips .preset[aria-pressed=true]').count();
    diag(`pressed before ${on}, after ${off}`);
    return on === 1 && off === 0;
  });

  // Several outputs of one upload (issue 13): the page's "Also make" sends
  // format=jpg,info,sprite (in the tus creation's Upload-Metadata, or a
  // POST's query); the server decodes once and lists the outputs, each
  // shown with its preview and download, and zips them all.
  await step('phone: "Also make" sends format=jpg,info,sprite with the options prefixed; each output has its preview and download; "Download all" is the server\'s zip', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#clear');
    if (!(await page.locator('#more').evaluate((e) => e.open))) await page.locator('#more summary').click();
    await page.selectOption('#quality', '');
    await page.check('#fmt-jpg');
    await page.selectOption('#size', '240');
    await page.check('#also-sprite');
    await page.check('#also-info');
    const mainExtraHidden = await page.locator('#also-jpg').evaluate((e) => e.closest('.chip').hidden);
    const sent = [];
    const seen = (r) => {
      if (/\/api\/jobs\?/.test(r.url())) sent.push(new URL(r.url()).search);
      else if (r.method() === 'POST' && /\/api\/uploads\/?$/.test(r.url())) {
        const m = (r.headers()['upload-metadata'] || '').split(',').map((kv) => kv.trim().split(' '));
        sent.push('?' + m.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(Buffer.from(v || '', 'base64').toString())}`).join('&'));
      }
    };
    page.on('request', seen);
    const buf = fs.readFileSync(wide);
    await page.setInputFiles('#file', [{ name: longNames[0], mimeType: 'video/mp4', buffer: buf }]);
    const it = item(0);
    const summary = await page.locator('#opt-summary').textContent();
    await page.click('#go');
    const st = await waitStatus(it, ['done', 'failed']);
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    await it.locator('.outputs li').first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('#items .outputs img')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 15000 });
    const rows = await it.locator('.outputs li').evaluateAll((ls) => ls.map((l) => ({
      name: l.dataset.output, file: l.querySelector('.out-name').textContent,
      href: l.querySelector('a').getAttribute('href'), dl: l.querySelector('a').getAttribute('download'),
      img: l.querySelector('img')?.naturalWidth || 0, right: Math.round(l.getBoundingClientRect().right),
    })));
    const types = [];
    for (const r of rows) types.push((await page.request.get(new URL(r.href, base).href)).headers()['content-type']);
    const zipA = it.locator('a.zip-all');
    const [dl] = await Promise.all([page.waitForEvent('download'), zipA.click()]);
    const file = path.join(artifacts, 'outputs.zip');
    await dl.saveAs(file);
    const entries = readZip(file);
    const ov = await overflow();
    await shot('phone-outputs.png', { fullPage: true });
    page.off('request', seen);
    const base0 = longNames[0].replace(/\.mp4$/, '');
    diag(`sent ${sent.join(' ')}; summary "${summary}"; rows ${JSON.stringify(rows)}; types ${types.join(', ')}`);
    diag(`zip ${dl.suggestedFilename()}: ${entries.map((e) => `${e.name} ${e.size} crc ${e.crcOk}`).join('; ')}; overflow ${ov}px`);
    const q = new URLSearchParams(sent[0] || '');
    const names = entries.map((e) => e.name);
    return sent.length === 1 && q.get('format') === 'jpg,info,sprite' && q.get('jpg.height') === '240'
      && !q.has('height') && mainExtraHidden && /also INFO, SPRITE/.test(summary)
      && rows.length === 3 && rows.map((r) => r.name).join() === 'jpg,info,sprite'
      && rows[0].img > 0 && rows[2].img > 0 && rows.every((r) => r.right <= 390 && r.dl.startsWith(base0))
      && /^image\/jpeg/.test(types[0]) && /^application\/json/.test(types[1]) && /^image\/jpeg/.test(types[2])
      && entries.length === 4 && entries.every((e) => e.crcOk && e.name.startsWith(base0))
      && names.includes(`${base0}.jpg`) && names.includes(`${base0}.sprite.jpg`)
      && names.includes(`${base0}.sprite.vtt`)
      && ov <= 0;
  });

  // hls among "Also make" (issue 13 item 4): the job's hls output is its
  // master playlist, previewed in a <video> where the browser plays HLS
  await step('phone: "Also make" HLS sends format=mp4,hls; the hls output opens master.m3u8, previewed where the browser plays HLS', async () => {
    await page.click('#clear');
    await page.check('#fmt-mp4');
    await page.selectOption('#size', '');
    for (const n of ['sprite', 'info']) if (await page.locator(`#also-${n}`).isChecked()) await page.uncheck(`#also-${n}`);
    await page.check('#also-hls');
    const sent = [];
    const seen = (r) => {
      if (r.method() === 'POST' && /\/api\/uploads\/?$/.test(r.url())) {
        const m = (r.headers()['upload-metadata'] || '').split(',').map((kv) => kv.trim().split(' '));
        for (const [k, v] of m) if (k === 'format') sent.push(Buffer.from(v || '', 'base64').toString());
      } else if (/\/api\/jobs\?/.test(r.url())) sent.push(new URL(r.url()).searchParams.get('format'));
    };
    page.on('request', seen);
    await page.setInputFiles('#file', small);
    const it = item(0);
    await page.click('#go');
    const st = await waitStatus(it, ['done', 'failed']);
    page.off('request', seen);
    await page.uncheck('#also-hls');
    if (st !== 'done') throw new Error(await it.locator('.message').innerText());
    await it.locator('.outputs li').first().waitFor();
    const rows = await it.locator('.outputs li').evaluateAll((ls) => ls.map((l) => ({
      name: l.dataset.output, href: l.querySelector('a').getAttribute('href'),
      dl: l.querySelector('a').hasAttribute('download'), video: !!l.querySelector('video'),
    })));
    const canHls = await page.evaluate(() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl') !== '');
    const hls = rows.find((r) => r.name === 'hls');
    // the browser reads the ladder: its video's duration is the clip's (2 s)
    const dur = canHls && hls?.video ? await it.locator('.outputs li[data-output=hls] video').evaluate((v) => new Promise((done) => {
      if (v.readyState >= 1) return done(v.duration);
      v.addEventListener('loadedmetadata', () => done(v.duration));
      v.addEventListener('error', () => done(-1));
      setTimeout(() => done(-2), 15000);
    })) : null;
    const res = hls ? await page.request.get(new URL(hls.href, base).href) : null;
    const body = res ? await res.text() : '';
    diag(`sent ${sent.join(' ')}; rows ${JSON.stringify(rows)}; browser plays HLS: ${canHls}, duration ${dur}; ${res?.headers()['content-type']}`);
    return sent.length === 1 && sent[0] === 'mp4,hls'
      && rows.map((r) => r.name).join() === 'mp4,hls'
      && /\/output\/hls\/master\.m3u8$/.test(hls.href) && !hls.dl && hls.video === canHls
      && (!canHls || Math.abs(dur - 2) < 0.3)
      && /^application\/vnd\.apple\.mpegurl/.test(res.headers()['content-type'] || '')
      && /#EXT-X-STREAM-INF:/.test(body) && rows[0].dl;
  });

  ok(foreign.length === 0, 'the page loads nothing from other hosts', foreign.join('\n'));
  ok(pageErrors.length === 0, 'no script errors on the page', pageErrors.join('\n'));
} catch (e) {
  ok(false, 'the test itself', e.stack || e);
} finally {
  await browser.close().catch(() => {});
  fs.rmSync(userDir, { recursive: true, force: true });
}

console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
