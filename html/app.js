// vconv page: files in, options, queue of conversions with progress and results.
import { getPresets, upload, watch, deleteJob, outputUrl, jobError, ApiError, TERMINAL } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);

// Short descriptions for the format buttons; the list itself comes from the server.
const BLURB = {
  mp4: 'universal', webm: 'web', mkv: 'Matroska', mov: 'Apple',
  gif: 'animated', webp: 'animated', jpg: 'one frame', png: 'one frame',
  mp3: 'music', m4a: 'AAC', opus: 'small', ogg: 'Vorbis', wav: 'raw audio', flac: 'lossless',
};
const GROUPS = [['video', 'Video'], ['image', 'Picture'], ['audio', 'Audio only']];
const GROUP_OF_KIND = { video: 'video', animation: 'image', image: 'image', audio: 'audio' };
const KIND_OF = { gif: 'animation', webp: 'animation', jpg: 'image', jpeg: 'image', png: 'image',
  mp3: 'audio', m4a: 'audio', opus: 'audio', ogg: 'audio', wav: 'audio', flac: 'audio', aac: 'audio' };
// Which option fields a kind of output uses, when the server does not list
// a format's options itself; and the server option behind each field.
const USES = {
  video: ['visual', 'motion', 'quality', 'trim', 'end', 'audio'],
  animation: ['visual', 'motion', 'trim', 'end'],
  image: ['visual', 'trim'],
  audio: ['trim', 'end', 'abitrate'],
};
const FIELD_OPTION = { visual: 'width', motion: 'fps', quality: 'quality', trim: 'start',
  end: 'duration', audio: 'audio', abitrate: 'audio_bitrate' };
function usesOf(f) {
  if (!Array.isArray(f.options)) return USES[kindOf(f)];
  return Object.keys(FIELD_OPTION).filter((k) => f.options.includes(FIELD_OPTION[k]));
}

let formats = [];          // from GET /api/presets, each with .kind and .group filled in
let limits = {};           // presets.options: {width: {min, max}, ...}
const items = [];          // one per conversion (a file and the options it was sent with)
let uploading = null;      // the item whose body is being sent (one at a time)
let nextId = 1;

// ---------- small formatting helpers ----------

export function fmtBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${u[i]}`;
}

export function fmtDur(s) {
  if (!Number.isFinite(s) || s < 0) return '—';
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const ss = s < 10 ? sec.toFixed(1).padStart(4, '0') : String(Math.floor(sec)).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const fmtLeft = (s) => !Number.isFinite(s) || s < 0 ? '' : s < 60 ? `${Math.ceil(s)} s left`
  : `${Math.ceil(s / 60)} min left`;

// "90", "1:30", "1:02:03.5" → seconds; NaN if not a time.
export function parseTime(text) {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return +t;
  const m = /^(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:\.\d+)?)$/.exec(t);
  return m ? (+(m[1] || 0)) * 3600 + (+m[2]) * 60 + (+m[3]) : NaN;
}

// Job times may be ISO strings or Unix seconds (or ms).
function toDate(v) {
  if (v == null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function fromNow(d) {
  const min = Math.round((d - Date.now()) / 60000);
  if (min < 1) return '';
  return min < 90 ? ` (in ${min} min)` : min < 48 * 60 ? ` (in ${Math.round(min / 60)} h)` : '';
}

let announceTimer;
function announce(text) {
  const el = $('#announce');
  el.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { el.textContent = text; }, 60);
}

// ---------- formats and options ----------

function kindOf(f) { return f.kind || KIND_OF[f.name] || 'video'; }

function renderFormats() {
  const box = $('#formats');
  box.textContent = '';
  box.removeAttribute('aria-busy');
  for (const [group, title] of GROUPS) {
    const list = formats.filter((f) => f.group === group);
    if (!list.length) continue;
    const fs = document.createElement('fieldset');
    fs.innerHTML = `<legend>${title}</legend><div class="chips"></div>`;
    for (const f of list) {
      const label = document.createElement('label');
      label.className = 'chip';
      label.innerHTML = '<input type="radio" name="format"><span class="chip-name"></span><span class="chip-sub"></span>';
      const input = label.querySelector('input');
      input.value = f.name;
      input.id = `fmt-${f.name}`;
      label.querySelector('.chip-name').textContent = (f.ext || f.name).toUpperCase();
      label.querySelector('.chip-sub').textContent = BLURB[f.name] || f.mime || '';
      $('.chips', fs).append(label);
    }
    box.append(fs);
  }
  const first = formats.find((f) => f.name === 'mp4') || formats[0];
  if (first) $(`#fmt-${first.name}`).checked = true;
  box.addEventListener('change', onFormatChange);
  onFormatChange();
}

const currentFormat = () => formats.find((f) => f.name === $('input[name=format]:checked')?.value);

function onFormatChange() {
  const f = currentFormat();
  if (!f) return;
  const uses = usesOf(f);
  for (const el of document.querySelectorAll('#opts [data-for]')) {
    const key = el.dataset.for;
    el.hidden = key === 'custom' ? !(uses.includes('visual') && $('#size').value === 'custom')
                                 : !uses.includes(key);
  }
  $('#start-label').textContent = kindOf(f) === 'image' ? 'Picture at' : 'Start at';
  // The format's own defaults (if the server says them) as placeholders.
  const d = f.defaults || {};
  const maxw = d.max_width || d.width;
  $('#fps').placeholder = d.fps ? String(d.fps) : 'same';
  $('#width').placeholder = maxw ? `≤ ${maxw}` : 'auto';
  $('#height').placeholder = d.height ? String(d.height) : 'auto';
  $('#size').options[0].textContent = maxw ? `Recommended (at most ${maxw} px wide)` : 'Same as the original';
  const kbps = d.audio_bitrate ? Math.round(d.audio_bitrate / 1000) : 0;
  $('#abitrate').options[0].textContent = kbps ? `Recommended (${kbps} kbit/s)` : 'Recommended';
  summarize();
  refreshButtons();
}

function summarize() {
  const bits = [];
  const size = $('#size').value;
  if (!$('[data-for=visual]').hidden && size) bits.push(size === 'custom' ? 'custom size' : `${size}p`);
  if (!$('[data-for=motion]').hidden && $('#fps').value) bits.push(`${$('#fps').value} fps`);
  if ($('#quality').value) bits.push($('#quality').selectedOptions[0].textContent.replace(/ \(.*/, '').toLowerCase());
  if ($('#start').value || (!$('[data-for=end]').hidden && $('#end').value)) bits.push('trimmed');
  if (!$('[data-for=audio]').hidden && !$('#audio').checked) bits.push('no sound');
  if (!$('[data-for=abitrate]').hidden && $('#abitrate').value) bits.push(`${+$('#abitrate').value / 1000} kbit/s`);
  $('#opt-summary').textContent = bits.length ? `· ${bits.join(', ')}` : '';
}

// Checks the fields as the server would; returns {params, errors}. The size
// presets are applied per file later (portrait videos get a width).
function readOptions() {
  const f = currentFormat();
  const uses = usesOf(f);
  const errors = [];
  const opt = { format: f.name };
  const num = (id, key, int) => {
    const el = $(`#${id}`);
    const raw = el.value.trim();
    if (!raw) return;
    const lim = limits[key] || {};
    const v = Number(raw);
    let bad = '';
    if (!Number.isFinite(v) || (int && !Number.isInteger(v))) bad = `${el.labels[0].firstChild.textContent.trim()} must be a${int ? ' whole' : ''} number.`;
    else if ((lim.min != null && v < lim.min) || (lim.max != null && v > lim.max) || v <= 0) {
      bad = `${el.labels[0].firstChild.textContent.trim()} must be between ${lim.min ?? 1} and ${lim.max ?? '∞'}.`;
    }
    if (bad) errors.push([el, bad]); else opt[key] = String(v);
  };
  if (uses.includes('visual')) {
    const size = $('#size').value;
    if (size === 'custom') { num('width', 'width', true); num('height', 'height', true); }
    else if (size) opt.size = +size;
  }
  if (uses.includes('motion')) num('fps', 'fps', false);
  if (uses.includes('quality') && $('#quality').value) {
    const q = +$('#quality').value, lim = limits.quality || {};
    opt.quality = String(Math.min(lim.max ?? q, Math.max(lim.min ?? q, q)));
  }
  const start = $('#start').value.trim(), end = uses.includes('end') ? $('#end').value.trim() : '';
  const s = start ? parseTime(start) : 0, e = end ? parseTime(end) : NaN;
  const tmax = limits.start?.max ?? Infinity;
  if (start && Number.isFinite(s) && s > tmax) errors.push([$('#start'), `The start must be before ${fmtDur(tmax)}.`]);
  else if (start && !Number.isFinite(s)) errors.push([$('#start'), 'The start time is not a time. Use seconds (90) or m:ss (1:30).']);
  else if (start && s > 0) opt.start = String(s);
  if (end && !Number.isFinite(e)) errors.push([$('#end'), 'The end time is not a time. Use seconds (90) or m:ss (1:30).']);
  else if (end && Number.isFinite(s) && e <= s) errors.push([$('#end'), 'The end must come after the start.']);
  else if (end) opt.duration = String(+(e - s).toFixed(3));
  if (uses.includes('audio') && !$('#audio').checked) opt.audio = '0';
  if (uses.includes('abitrate') && $('#abitrate').value) {
    const lim = limits.audio_bitrate || {}, b = +$('#abitrate').value;
    if ((lim.min == null || b >= lim.min) && (lim.max == null || b <= lim.max)) opt.audio_bitrate = String(b);
  }
  return { opt, errors };
}

function showErrors(errors) {
  for (const el of document.querySelectorAll('#opts [aria-invalid]')) el.removeAttribute('aria-invalid');
  const box = $('#opt-error');
  box.hidden = !errors.length;
  box.textContent = errors.map(([, m]) => m).join(' ');
  if (!errors.length) return true;
  for (const [el] of errors) el.setAttribute('aria-invalid', 'true');
  $('#more').open = true;
  errors[0][0].focus();
  return false;
}

// The query for one file: the size preset becomes a width or a height.
function paramsFor(item, opt) {
  const p = { ...opt };
  if (p.size) {
    const portrait = item.meta && item.meta.height > item.meta.width;
    p[portrait ? 'width' : 'height'] = String(p.size);
    delete p.size;
  }
  if (p.start && item.meta?.duration && +p.start >= item.meta.duration) {
    return { error: `The start time is after the end of "${item.file.name}" (${fmtDur(item.meta.duration)}).` };
  }
  return { params: p };
}

// ---------- files and the queue ----------

// Reads duration and picture size locally, when the browser can decode it.
function probe(file) {
  return new Promise((resolve) => {
    if (!/^(video|audio)\//.test(file.type) && !/\.(mp4|mov|m4v|webm|mkv|mp3|m4a|ogg|opus|wav|flac)$/i.test(file.name)) return resolve(null);
    const v = document.createElement('video');
    const src = URL.createObjectURL(file);
    const done = (m) => { clearTimeout(t); URL.revokeObjectURL(src); v.removeAttribute('src'); resolve(m); };
    const t = setTimeout(() => done(null), 4000);
    v.preload = 'metadata';
    v.muted = true;
    v.onloadedmetadata = () => done({ duration: v.duration, width: v.videoWidth, height: v.videoHeight });
    v.onerror = () => done(null);
    v.src = src;
  });
}

function addFiles(files) {
  const list = [...files];
  if (!list.length) return;
  for (const file of list) newItem(file, null);
  announce(`${list.length} file${list.length > 1 ? 's' : ''} added. Choose a format, then Convert.`);
}

function newItem(file, meta) {
  const el = $('#item-tpl').content.firstElementChild.cloneNode(true);
  const item = { id: nextId++, file, meta, el, status: 'ready', job: null };
  el.dataset.item = item.id;
  $('.name', el).textContent = file.name;
  $('.remove', el).setAttribute('aria-label', `Remove ${file.name}`);
  $('.icon', el).dataset.type = (file.type.split('/')[0] || 'file');
  el.addEventListener('click', (e) => {
    const act = e.target.closest('[data-act]')?.dataset.act;
    if (act) actions[act](item);
  });
  items.push(item);
  $('#items').append(el);
  $('#empty').hidden = true;
  renderMeta(item);
  if (!meta) probe(file).then((m) => { item.meta = m; renderMeta(item); });
  setStatus(item, 'ready');
  return item;
}

function renderMeta(item) {
  const bits = [fmtBytes(item.file.size)];
  if (item.meta?.duration && Number.isFinite(item.meta.duration)) bits.push(fmtDur(item.meta.duration));
  if (item.meta?.width) bits.push(`${item.meta.width}×${item.meta.height}`);
  $('.meta', item.el).textContent = bits.join(' · ');
}

const STATE_TEXT = {
  ready: 'Ready', waiting: 'Waiting to upload', uploading: 'Uploading', starting: 'Starting',
  queued: 'In line', running: 'Converting', done: 'Done', failed: 'Failed', canceled: 'Canceled',
};

function setStatus(item, status, detail = '') {
  const el = item.el;
  const prev = item.status;
  item.status = status;
  el.dataset.status = status;
  const active = ['waiting', 'uploading', 'starting', 'queued', 'running'].includes(status);
  $('.progress', el).hidden = !active;
  $('.cancel', el).hidden = !active;
  $('.remove', el).hidden = active;
  $('.state', el).textContent = STATE_TEXT[status] || status;
  $('.detail', el).textContent = detail;
  if (status !== 'failed' && status !== 'canceled') $('.message', el).hidden = true;
  if (status !== 'done') $('.result', el).hidden = true;
  if (prev !== status && status !== 'ready') announce(`${item.file.name}: ${(STATE_TEXT[status] || status).toLowerCase()}. ${detail}`);
  refreshButtons();
}

function setBar(item, value, label) {
  const bar = $('progress', item.el);
  if (value == null) bar.removeAttribute('value'); else bar.value = Math.max(0, Math.min(1, value));
  bar.setAttribute('aria-label', `${item.file.name}: ${label}`);
  // Announce progress in quarters so screen readers are told, not flooded.
  const q = value == null ? -1 : Math.floor(value * 4);
  if (q > 0 && q < 4 && q !== item.lastQuarter) {
    item.lastQuarter = q;
    announce(`${item.file.name}: ${label} ${q * 25}%`);
  }
}

function refreshButtons() {
  const f = currentFormat();
  const ready = items.filter((i) => i.status === 'ready').length;
  const go = $('#go');
  go.disabled = !f || !ready;
  const name = f ? (f.ext || f.name).toUpperCase() : '';
  go.textContent = ready > 1 ? `Convert ${ready} files to ${name}` : `Convert to ${name}`.trim();
  for (const b of document.querySelectorAll('.again')) b.textContent = `Convert again as ${name}`;
}

function start(item, opt) {
  const { params, error } = paramsFor(item, opt);
  if (error) return fail(item, new ApiError(-1, 'client', '', {}), error);
  item.params = params;
  item.format = formats.find((f) => f.name === params.format);
  $('.target', item.el).textContent = `→ ${(item.format.ext || item.format.name).toUpperCase()}`;
  item.lastQuarter = 0;
  setStatus(item, 'waiting');
  setBar(item, 0, 'upload');
  pump();
}

// Sends the next waiting file; one upload at a time keeps each one fast.
function pump() {
  if (uploading) return;
  const item = items.find((i) => i.status === 'waiting');
  if (!item) return;
  uploading = item;
  setStatus(item, 'uploading', '0%');
  const t0 = performance.now();
  let last = { t: t0, n: 0 }, speed = 0;
  item.req = upload(item.file, item.params, (n, total) => {
    const now = performance.now();
    if (now - last.t > 250) {
      const s = (n - last.n) / ((now - last.t) / 1000);
      speed = speed ? speed * 0.7 + s * 0.3 : s;
      last = { t: now, n };
    }
    const pct = total ? n / total : 0;
    const bits = [`${Math.floor(pct * 100)}%`, `${fmtBytes(n)} of ${fmtBytes(total)}`];
    if (speed > 0) bits.push(`${fmtBytes(speed)}/s`, fmtLeft((total - n) / speed));
    if (n >= total) setStatus(item, 'starting', 'Upload complete, the server is reading the file…');
    else $('.detail', item.el).textContent = bits.filter(Boolean).join(' · ');
    setBar(item, n >= total ? null : pct, 'upload');
  });
  item.req.promise.then((job) => {
    item.job = job;
    item.el.dataset.job = job.id;
    follow(item);
  }, (err) => {
    if (err.code !== 'aborted') fail(item, err);
  }).finally(() => {
    item.req = null;
    uploading = null;
    pump();
  });
}

function follow(item) {
  item.lastQuarter = 0;
  let runStart = 0;
  const show = (job) => {
    if (item.status === 'canceled') return;
    item.job = job;
    if (job.status === 'queued') {
      const pos = job.queue_position;
      setStatus(item, 'queued', pos ? `Position ${pos} in the line` : 'Waiting for a free converter');
      setBar(item, null, 'waiting');
    } else if (job.status === 'running' || job.status === 'uploading') {
      const p = Math.max(0, Math.min(1, +job.progress || 0));
      if (!runStart || p === 0) runStart = performance.now();
      const el = (performance.now() - runStart) / 1000;
      const left = p > 0.02 && el > 1 ? el * (1 - p) / p : NaN;
      const pct = p > 0 && p < 0.01 ? '<1%' : `${Math.floor(p * 100)}%`;
      const text = [pct, fmtLeft(left)].filter(Boolean).join(' · ');
      if (item.status !== 'running') setStatus(item, 'running', text);
      else $('.detail', item.el).textContent = text;
      setBar(item, p, 'converting');
    }
  };
  show(item.job);
  if (TERMINAL.has(item.job.status)) return finish(item, item.job);
  item.watcher = watch(item.job.id, show);
  item.watcher.promise.then((job) => finish(item, job), (err) => {
    if (item.status !== 'canceled') fail(item, err);
  });
}

function finish(item, job) {
  item.watcher = null;
  if (item.status === 'canceled') return;
  item.job = job;
  if (job.status === 'done') return showResult(item, job);
  if (job.status === 'canceled') return message(item, 'canceled', 'The conversion was canceled.');
  fail(item, jobError(job));
}

// Ends an item with a sentence (and the technical detail, small).
function message(item, status, text, detail = '') {
  setStatus(item, status);
  $('.message', item.el).hidden = false;
  $('.msg', item.el).textContent = text;
  $('.msg-detail', item.el).textContent = detail;
  announce(`${item.file.name}: ${text}`);
}

function fail(item, err, text) {
  const detail = [err.detail && err.detail !== err.message ? err.detail : '',
    err.status > 0 ? `HTTP ${err.status}` : '', err.code && err.code !== 'client' ? err.code : ''];
  message(item, 'failed', text || err.message, detail.filter(Boolean).join(' · '));
}

function showResult(item, job) {
  const el = item.el;
  setStatus(item, 'done');
  const f = item.format || formats.find((x) => x.name === job.output?.format) || {};
  const kind = kindOf(f);
  const src = outputUrl(job);
  const box = $('.preview', el);
  box.textContent = '';
  const media = document.createElement(kind === 'video' ? 'video' : kind === 'audio' ? 'audio' : 'img');
  if (kind === 'video' || kind === 'audio') {
    media.controls = true;
    media.preload = 'metadata';
    media.playsInline = true;
    media.addEventListener('loadedmetadata', () => {
      $('.out-dur', el).textContent = fmtDur(media.duration);
      if (media.videoWidth) $('.out-px', el).textContent = `${media.videoWidth}×${media.videoHeight}`;
    });
  } else {
    media.alt = `Preview of ${item.file.name} as ${(f.ext || f.name || '').toUpperCase()}`;
    media.addEventListener('load', () => { $('.out-px', el).textContent = `${media.naturalWidth}×${media.naturalHeight}`; });
  }
  media.src = src;
  box.append(media);
  const inDur = +job.input?.duration || item.meta?.duration;
  $('.in-bytes', el).textContent = fmtBytes(+job.input?.bytes || item.file.size);
  $('.out-bytes', el).textContent = fmtBytes(+job.output?.bytes);
  $('.in-dur', el).textContent = fmtDur(inDur);
  $('.in-px', el).textContent = item.meta?.width ? `${item.meta.width}×${item.meta.height}` : '—';
  $('.out-px', el).textContent = kind === 'audio' ? 'none' : '—';
  // GIF/WebP have no duration the browser reports: the asked part, if known.
  const asked = Math.min(+item.params?.duration || Infinity, inDur - (+item.params?.start || 0));
  $('.out-dur', el).textContent = +job.output?.duration ? fmtDur(+job.output.duration)
    : kind === 'animation' && Number.isFinite(asked) ? fmtDur(asked) : '—';
  const ext = /\.([a-z0-9]{2,5})$/i.exec(item.file.name)?.[1];
  $('.in-fmt', el).textContent = ext ? ext.toUpperCase() : String(job.input?.format || '—').split(',')[0];
  $('.out-fmt', el).textContent = (f.ext || f.name || job.output?.format || '').toUpperCase();
  const a = $('.download', el);
  a.href = src;
  a.textContent = `Download ${(f.ext || f.name || '').toUpperCase()} (${fmtBytes(+job.output?.bytes)})`;
  a.setAttribute('download', item.file.name.replace(/\.[^.]*$/, '') + '.' + (f.ext || f.name));
  const exp = toDate(job.expires);
  $('.expires', el).textContent = exp
    ? `Kept on the server until ${exp.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}${fromNow(exp)}.` : '';
  $('.result', el).classList.toggle('sound', kind === 'audio');
  $('.result', el).hidden = false;
  refreshButtons();
  announce(`${item.file.name} is converted. The download button is ready.`);
}

const actions = {
  async cancel(item) {
    const was = item.status;
    item.req?.abort();
    item.watcher?.stop();
    item.watcher = null;
    message(item, 'canceled', 'Canceled.');
    if (item.job && !['waiting', 'uploading'].includes(was)) {
      try { await deleteJob(item.job.id); } catch (e) { if (e.status !== 404) fail(item, e); }
    }
  },
  remove(item) {
    if (item.job?.id && item.status === 'done') deleteJob(item.job.id).catch(() => {});
    items.splice(items.indexOf(item), 1);
    const next = item.el.nextElementSibling || item.el.previousElementSibling;
    item.el.remove();
    $('#empty').hidden = items.length > 0;
    (next ? $('button', next) : $('#file')).focus();
    refreshButtons();
  },
  retry(item) { convert([item]); },
  again(item) {
    const copy = newItem(item.file, item.meta);
    if (!convert([copy])) actions.remove(copy);
    else copy.el.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  },
};

function convert(list) {
  const { opt, errors } = readOptions();
  if (!showErrors(errors)) return false;
  for (const item of list) start(item, opt);
  return true;
}

// ---------- wiring ----------

function wire() {
  const drop = $('#drop');
  $('#file').addEventListener('change', (e) => { addFiles(e.target.files); e.target.value = ''; });
  // Files may be dropped anywhere on the page.
  let depth = 0;
  window.addEventListener('dragenter', (e) => { e.preventDefault(); depth++; drop.classList.add('over'); });
  window.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; drop.classList.remove('over'); } });
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove('over');
    addFiles(e.dataTransfer?.files || []);
  });
  $('#size').addEventListener('change', onFormatChange);
  $('#opts').addEventListener('input', () => { summarize(); if (!$('#opt-error').hidden) showErrors(readOptions().errors); });
  $('#opts').addEventListener('submit', (e) => {
    e.preventDefault();
    const ready = items.filter((i) => i.status === 'ready');
    if (ready.length && convert(ready)) $('#queue-title').focus();
  });
}

async function init() {
  wire();
  try {
    const p = await getPresets();
    limits = p.options || {};
    formats = (p.formats || []).filter((f) => f && f.name).map((f) => ({
      ...f, kind: kindOf(f), group: f.group || GROUP_OF_KIND[kindOf(f)] || 'video',
    }));
    if (!formats.length) throw new Error('no formats');
    for (const [id, key] of [['width', 'width'], ['height', 'height'], ['fps', 'fps']]) {
      if (limits[key]?.min != null) $(`#${id}`).min = limits[key].min;
      if (limits[key]?.max != null) $(`#${id}`).max = limits[key].max;
    }
    renderFormats();
  } catch (e) {
    $('#formats').removeAttribute('aria-busy');
    $('#formats-status').textContent = e instanceof ApiError && e.status
      ? `Could not load the list of formats: ${e.message}` : 'Could not reach the server. Reload the page to try again.';
    $('#formats-status').className = 'error-text';
  }
  document.documentElement.dataset.ready = '1';
}

init();
