// vconv: the web page (html/) in a real browser, against a running server.
//
//   node t/web/e2e.mjs BASE_URL [ARTIFACT_DIR] [MEDIA_DIR]
//
// Debian's chromium driven by playwright-core. MEDIA_DIR holds small.mp4
// (2 s 320x240 H.264/AAC) and big.mp4 (long enough to cancel); they are made
// with ffmpeg if missing. Prints TAP; exits 1 if a test failed.

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
  window.__statuses = [];
  new MutationObserver((list) => {
    for (const m of list) {
      if (m.type !== 'attributes' || m.target.parentElement?.id !== 'items') continue;
      const i = [...m.target.parentElement.children].indexOf(m.target);
      const h = (window.__statuses[i] ||= []);
      const st = m.target.dataset.status;
      if (h[h.length - 1] !== st) h.push(st);
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
});
page.on('request', (r) => { const u = r.url(); if (/^https?:/.test(u) && !u.startsWith(origin)) foreign.push(u); });

const items = page.locator('#items > li');
const item = (i) => items.nth(i);
async function waitStatus(loc, statuses, timeout = slow) {
  const want = [].concat(statuses);
  await loc.and(page.locator(want.map((s) => `[data-status=${s}]`).join(','))).waitFor({ timeout });
  return loc.getAttribute('data-status');
}
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

  const first = item(0);
  await step('MP4: upload, convert, done', async () => {
    await page.check('#fmt-mp4');
    await page.click('#go');
    const st = await waitStatus(first, ['done', 'failed']);
    if (st !== 'done') throw new Error(await first.locator('.message').innerText());
    return true;
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
    return /\d/.test(facts.inBytes) && /\d/.test(facts.outBytes) && /0:0[12]/.test(facts.outDur) && /\d/.test(facts.expires);
  });

  await step('MP4: download is H.264 320x240, about 2 s', async () => {
    const { file, suggested } = await download(first, 'download.mp4');
    const p = probe(file);
    const v = p.streams.find((s) => s.codec_type === 'video');
    const dur = +p.format.duration;
    diag(`${suggested}: ${p.format.format_name} ${v?.codec_name} ${v?.width}x${v?.height} ${dur}s, audio ${p.streams.some((s) => s.codec_type === 'audio')}`);
    return v?.codec_name === 'h264' && v.width === 320 && v.height === 240 && Math.abs(dur - 2) < 0.3 && /\.mp4$/.test(suggested);
  });

  await shot('desktop-light-mp4-done.png');

  const second = item(1);
  await step('GIF (trimmed 0.5 to 1.5 s): the same file converted again without picking it again', async () => {
    await page.check('#fmt-gif');
    await page.locator('#more').evaluate((d) => { d.open = true; });
    await page.fill('#start', '0.5');
    await page.fill('#end', '0:01.5');
    const label = await first.locator('button.again').textContent();
    await first.locator('button.again').click();
    const st = await waitStatus(second, ['done', 'failed']);
    if (st !== 'done') throw new Error(await second.locator('.message').innerText());
    await page.waitForFunction(() => document.querySelectorAll('#items > li')[1]?.querySelector('.preview img')?.naturalWidth > 0);
    diag(`button: ${label}`);
    await page.fill('#start', '');
    await page.fill('#end', '');
    return /GIF/.test(label) && (await items.count()) === 2;
  });

  await step('GIF: download is a GIF animation of about 1 s', async () => {
    const { file } = await download(second, 'download.gif');
    const p = probe(file);
    const v = p.streams[0];
    const dur = +p.format.duration;
    diag(`${p.format.format_name} ${v.codec_name} ${v.width}x${v.height} ${dur}s`);
    return v.codec_name === 'gif' && v.width > 0 && v.width <= 320 && Math.abs(dur - 1) < 0.25;
  });

  const third = item(2);
  // The server may refuse it at once (HTTP 415) or, as it converts while it
  // uploads, take it (202) and fail the job with the same error code.
  await step('a text file gets the 415 message', async () => {
    await page.check('#fmt-mp4');
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, this is not a video\n'.repeat(20)) });
    await page.click('#go');
    await waitStatus(third, 'failed', 30000);
    const msg = await third.locator('.msg').textContent();
    const detail = await third.locator('.msg-detail').textContent();
    diag(`${msg} [${detail}]`);
    return /not a video, audio or image file|does not accept files of this type/.test(msg)
      && /HTTP 415|unsupported_input|input_format_not_allowed/.test(detail);
  });

  const fourth = item(3);
  await step('cancel during a conversion', async () => {
    await page.check('#fmt-webm');
    await page.setInputFiles('#file', big);
    await page.click('#go');
    await waitStatus(fourth, 'running');
    const id = await fourth.getAttribute('data-job');
    // conversion progress arrives (SSE, or polling) before we cancel
    await page.waitForFunction(() => document.querySelectorAll('#items > li')[3]?.querySelector('progress')?.value > 0,
      null, { timeout: slow });
    diag(`running: ${await fourth.locator('.prog-line .detail').textContent()}`);
    await fourth.screenshot({ path: path.join(artifacts, 'item-running.png') });
    const t0 = Date.now();
    const del = page.waitForResponse((r) => r.request().method() === 'DELETE');
    await fourth.locator('button.cancel').click();
    const res = await del;
    await waitStatus(fourth, 'canceled', 5000);
    // The job is gone (404) or says canceled, within a few seconds.
    let after = 0, status = '';
    for (let i = 0; i < 10; i++) {
      const r = await page.request.get(new URL(`api/jobs/${id}`, base).href);
      after = r.status();
      status = after === 200 ? (await r.json()).status : '';
      if (after === 404 || after === 410 || status === 'canceled') break;
      await page.waitForTimeout(500);
    }
    const seen = await page.evaluate(() => window.__statuses?.[3] || []);
    diag(`DELETE ${res.status()}; then GET ${after} ${status} (${Date.now() - t0} ms); states: ${seen.join(' > ')}`);
    return seen.includes('uploading') && seen.includes('running') && res.status() === 204 && (after === 404 || after === 410 || status === 'canceled');
  });

  await step('screenshots at desktop and phone widths, light and dark', async () => {
    await page.locator('#more').evaluate((d) => { d.open = false; });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('desktop-light.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('desktop-dark.png', { fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'light' });
    await shot('phone-light.png');
    await shot('phone-light-full.png', { fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('phone-dark-full.png', { fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    diag(`phone: horizontal overflow ${overflow}px; screenshots in ${artifacts}`);
    return overflow <= 0;
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
