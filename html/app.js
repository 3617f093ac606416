// vconv page: files in, options, queue of conversions with progress and results.
import { getPresets, getJob, upload, previousUpload, watch, deleteJob, outputUrl, jobError, remedy, ApiError, TERMINAL } from './api.js';
import { makeZip } from './zip.js';

const $ = (sel, root = document) => root.querySelector(sel);

// Short descriptions for the format buttons; the list itself comes from the server.
const BLURB = {
  mp4: 'universal', webm: 'web', mkv: 'Matroska', mov: 'Apple',
  gif: 'animated', webp: 'animated', jpg: 'one frame', png: 'one frame',
  mp3: 'music', m4a: 'AAC', opus: 'small', ogg: 'Vorbis', wav: 'raw audio', flac: 'lossless',
  info: 'facts (JSON)', sprite: 'seek thumbnails', hls: 'adaptive stream',
};
// Made only beside another format ("Also make"), never the main one.
const EXTRA_ONLY = new Set(['info', 'sprite', 'hls']);
const isMain = (f) => !EXTRA_ONLY.has(kindOf(f));
// The file name suffix of an output (html's own guess when the server's
// job JSON does not say): sprite.vtt stays, a format takes its extension.
const OUT_EXT = { info: 'info.json', sprite: 'sprite.jpg', 'sprite.vtt': 'sprite.vtt', hls: 'm3u8' };
// hls is not in /api/presets' formats (every server makes it, beside a
// video): the page offers it among "Also make" when a video format is there.
const HLS = { name: 'hls', ext: 'm3u8', mime: 'application/vnd.apple.mpegurl', kind: 'hls', group: 'video' };
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
  end: 'duration', audio: 'audio', abitrate: 'audio_bitrate', fit: 'target_size' };
const OPTION_FIELD = { size: 'visual', width: 'visual', height: 'visual', fps: 'motion', quality: 'quality',
  start: 'trim', duration: 'end', audio: 'audio', audio_bitrate: 'abitrate', target_size: 'fit' };
function usesOf(f) {
  if (!Array.isArray(f.options)) return USES[kindOf(f)];
  return Object.keys(FIELD_OPTION).filter((k) => f.options.includes(FIELD_OPTION[k]));
}

const STORE_KEY = 'vconv.items.v1';
const PACE_MS = 500;       // uploads start at most twice a second (conf.example's limit_req rate)
const MAX_BUSY_TRIES = 8;  // 429/503 answers waited out before giving up

let formats = [];          // from GET /api/presets, each with .kind and .group filled in
let presets = [];          // presets.presets: the operator's named settings
let presetsOnly = false;   // the server converts with its presets only
let activePreset = null;   // the preset chip pressed, until an option changes
let limits = {};           // presets.options: {width: {min, max}, ...}
const items = [];          // one per conversion (a file and the options it was sent with)
let uploading = null;      // the item whose body is being sent (one at a time)
let nextId = 1;
let lastStart = 0, holdUntil = 0, pumpTimer = 0;

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

const upper = (f) => (f?.ext || f?.name || '').toUpperCase();

// The polite live region speaks one message at a time: messages that come
// close together wait their turn instead of replacing each other. A file's
// newer message takes the place of its older one still waiting (a batch
// does not fall minutes behind); minor ones (percentages) are dropped while
// others wait.
const sayQueue = [];   // [{text, key}]
let saying = false;
function announce(text, { key = null, minor = false } = {}) {
  text = String(text || '').trim();
  if (!text || sayQueue[sayQueue.length - 1]?.text === text) return;
  if (minor && sayQueue.length) return;
  const old = key == null ? -1 : sayQueue.findIndex((m) => m.key === key);
  if (old >= 0) sayQueue[old] = { text, key };
  else sayQueue.push({ text, key });
  if (!saying) sayNext();
}
function sayNext() {
  const el = $('#announce');
  const m = sayQueue.shift();
  if (!m) { saying = false; return; }
  saying = true;
  el.textContent = '';
  setTimeout(() => { el.textContent = m.text; setTimeout(sayNext, 700); }, 60);
}

// ---------- formats and options ----------

function kindOf(f) { return f.kind || KIND_OF[f.name] || 'video'; }

function renderFormats() {
  const box = $('#formats');
  box.textContent = '';
  box.removeAttribute('aria-busy');
  for (const [group, title] of GROUPS) {
    const list = formats.filter((f) => f.group === group && isMain(f));
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
  box.addEventListener('keydown', onFormatKey);
  renderExtras();
  for (const item of items) fillFormatSelect(item);
  onFormatChange();
}

// "Also make": more outputs of the same upload, sent as format=a,b,c; the
// form's options then go to the main format only (prefixed: mp4.width=...)
// and the others keep their own defaults.
function renderExtras() {
  const box = $('#extras'), chips = $('#extra-chips');
  chips.textContent = '';
  for (const f of formats) {
    const label = document.createElement('label');
    label.className = 'chip extra';
    label.innerHTML = '<input type="checkbox" name="also"><span class="chip-name"></span><span class="chip-sub"></span>';
    const input = label.querySelector('input');
    input.value = f.name;
    input.id = `also-${f.name}`;
    label.querySelector('.chip-name').textContent = isMain(f) ? upper(f) : f.name.toUpperCase();
    label.querySelector('.chip-sub').textContent = BLURB[f.name] || f.mime || '';
    chips.append(label);
  }
  box.hidden = !formats.length;
  chips.addEventListener('change', () => { summarize(); refreshButtons(); });
}

// the extra formats ticked, less the main one
function extrasFor(main) {
  return [...document.querySelectorAll('#extra-chips input:checked')]
    .map((e) => e.value).filter((n) => n !== main);
}

// Arrow keys move through the format buttons as the grid they are drawn in:
// left/right along a row, up/down to the nearest button in the row above or
// below (across the groups), Home/End to the first and last.
function onFormatKey(e) {
  if (!e.target.matches('input[name=format]') || e.altKey || e.ctrlKey || e.metaKey) return;
  if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key)) return;
  const all = [...document.querySelectorAll('#formats input[name=format]')];
  const i = all.indexOf(e.target);
  const box = (el) => el.closest('.chip').getBoundingClientRect();
  let j = i;
  if (e.key === 'ArrowLeft') j = Math.max(0, i - 1);
  else if (e.key === 'ArrowRight') j = Math.min(all.length - 1, i + 1);
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = all.length - 1;
  else {
    const r0 = box(all[i]), cx = r0.left + r0.width / 2, down = e.key === 'ArrowDown';
    const rows = all.map((el, k) => [k, box(el)])
      .filter(([, r]) => down ? r.top >= r0.bottom - 1 : r.bottom <= r0.top + 1);
    if (rows.length) {
      const y = down ? Math.min(...rows.map(([, r]) => r.top)) : Math.max(...rows.map(([, r]) => r.top));
      const dist = ([, r]) => Math.abs(r.left + r.width / 2 - cx);
      j = rows.filter(([, r]) => Math.abs(r.top - y) < 2).reduce((a, b) => dist(b) < dist(a) ? b : a)[0];
    }
  }
  e.preventDefault();
  if (j === i) return;
  all[j].checked = true;
  all[j].focus();
  all[j].dispatchEvent(new Event('change', { bubbles: true }));
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
  for (const el of document.querySelectorAll('#extra-chips input')) {
    el.closest('.chip').hidden = el.value === f.name;
  }
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
  for (const item of items) if (item.status === 'ready') renderSetup(item);
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
  if (!$('[data-for=fit]').hidden && $('#fit').value) bits.push(`under ${fmtBytes(parseSize($('#fit').value))}`);
  const also = activePreset ? [] : extrasFor(currentFormat()?.name);
  if (also.length) bits.push(`also ${also.map((n) => n.toUpperCase()).join(', ')}`);
  if (activePreset) bits.unshift(activePreset.label || activePreset.name);
  $('#opt-summary').textContent = bits.length ? `· ${bits.join(', ')}` : '';
}

// Checks the fields as the server would; returns {params, errors}. The size
// presets are applied per file later (portrait videos get a width).
function readOptions(f = currentFormat()) {
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
  // a size to fit picks the bitrates itself: no quality or sound rate with it
  if (uses.includes('fit') && $('#fit').value) {
    opt.target_size = $('#fit').value;
    delete opt.quality;
    if (kindOf(f) === 'audio') delete opt.audio_bitrate;
  }
  // a preset: its options (for the estimate), sent as preset=NAME
  if (activePreset && activePreset.format === f.name) {
    const trim = { start: opt.start, duration: opt.duration };
    Object.assign(opt, activePreset.options, { preset: activePreset.name, format: f.name });
    for (const k of ['start', 'duration']) if (trim[k]) opt[k] = trim[k]; else delete opt[k];
    if (opt.height && !opt.width) { opt.size = +opt.height; delete opt.height; }
  }
  const also = activePreset ? [] : extrasFor(f.name);
  if (also.length) opt.also = also.join(',');
  return { opt, errors };
}

// nginx's sizes as the server reads them: 800k, 10m, 1g (times 1024)
export function parseSize(text) {
  const m = /^(\d+)([kmg]?)$/i.exec(String(text || ''));
  if (!m) return NaN;
  return +m[1] * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 })[m[2].toLowerCase()];
}

// The presets as chips beside the formats: one click picks a preset's
// format and settings; changing an option or a format afterwards leaves it.
function renderPresets() {
  const box = $('#presets'), chips = $('#preset-chips');
  chips.textContent = '';
  const usable = presets.filter((p) => formats.some((f) => f.name === p.format));
  box.hidden = !usable.length;
  for (const p of usable) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'chip preset';
    b.dataset.preset = p.name;
    b.setAttribute('aria-pressed', 'false');
    b.innerHTML = '<span class="chip-name"></span><span class="chip-sub"></span>';
    $('.chip-name', b).textContent = p.label || p.name;
    $('.chip-sub', b).textContent = [upper(formats.find((f) => f.name === p.format)),
      p.options?.target_size ? `under ${fmtBytes(parseSize(p.options.target_size))}` : ''].filter(Boolean).join(' · ');
    b.addEventListener('click', () => pickPreset(activePreset === p ? null : p));
    chips.append(b);
  }
  if (presetsOnly && usable.length && !activePreset) pickPreset(usable[0]);
}

function pickPreset(p) {
  activePreset = p;
  for (const b of document.querySelectorAll('#preset-chips .preset')) {
    b.setAttribute('aria-pressed', String(!!p && b.dataset.preset === p.name));
  }
  if (p) {
    const radio = $(`#fmt-${p.format}`);
    if (radio) radio.checked = true;
    const o = p.options || {};
    $('#fit').value = o.target_size && [...$('#fit').options].some((x) => x.value === o.target_size) ? o.target_size : '';
    if (o.quality) $('#quality').value = [...$('#quality').options].some((x) => x.value === o.quality) ? o.quality : '';
    if (o.audio_bitrate) {
      const b = String(parseFloat(o.audio_bitrate) * (/k$/i.test(o.audio_bitrate) ? 1000 : /M$/.test(o.audio_bitrate) ? 1e6 : 1));
      $('#abitrate').value = [...$('#abitrate').options].some((x) => x.value === b) ? b : '';
    }
    if (o.height && [...$('#size').options].some((x) => x.value === o.height)) $('#size').value = o.height;
    if (o.audio === '0') $('#audio').checked = false;
    announce(`Preset ${p.label || p.name}: ${upper(formats.find((f) => f.name === p.format))}.`);
  }
  onFormatChange();
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
  let p = { ...opt };
  if (p.preset) {
    p = { preset: p.preset, ...(p.start ? { start: p.start } : {}), ...(p.duration ? { duration: p.duration } : {}) };
    if (presetsOnly) { delete p.start; delete p.duration; }
  }
  if (p.size) {
    const portrait = item.meta && item.meta.height > item.meta.width;
    p[portrait ? 'width' : 'height'] = String(p.size);
    delete p.size;
  }
  if (p.start && item.meta?.duration && +p.start >= item.meta.duration) {
    return { error: `The start time is after the end of "${item.file.name}" (${fmtDur(item.meta.duration)}).` };
  }
  if (p.also) {
    // several outputs: the options are the main format's own
    const main = p.format, q = { format: [main, ...p.also.split(',').filter((n) => n !== main)].join(',') };
    for (const [k, v] of Object.entries(p)) if (!['format', 'also', 'preset'].includes(k)) q[`${main}.${k}`] = v;
    return { params: q };
  }
  return { params: p };
}

// ---------- files and the queue ----------

// Reads duration and picture size locally, when the browser can decode it.
function probe(file) {
  return new Promise((resolve) => {
    if (!(file instanceof Blob)) return resolve(null);
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
  const f = currentFormat();
  announce(`${list.length} file${list.length > 1 ? 's' : ''} added${f ? `, to be converted to ${upper(f)}` : ''}. Convert is below the formats.`);
}

// The file kind's icon: a film strip, a note, a picture, or a plain page.
const ICONS = {
  video: '<path d="M4 5h16v14H4zM8 5v14M16 5v14M4 9h4M4 15h4M16 9h4M16 15h4"/>',
  audio: '<path d="M9 18V6l10-2v12"/><circle cx="6.5" cy="18" r="2.5"/><circle cx="16.5" cy="16" r="2.5"/>',
  image: '<path d="M4 5h16v14H4z"/><circle cx="9" cy="10" r="1.8"/><path d="m4 17 5-5 4 4 3-3 4 4"/>',
  file: '<path d="M6 3h8l4 4v14H6zM14 3v4h4"/>',
};
function kindOfFile(file) {
  const t = (file.type || '').split('/')[0];
  if (t === 'video' || t === 'audio' || t === 'image') return t;
  const ext = /\.([a-z0-9]+)$/i.exec(file.name || '')?.[1]?.toLowerCase();
  if (/^(mp4|mov|m4v|mkv|webm|avi|flv|ts|m2ts|mts|mpg|mpeg|wmv|3gp|mxf|dv)$/.test(ext)) return 'video';
  if (/^(mp3|m4a|aac|wav|flac|ogg|opus|wma)$/.test(ext)) return 'audio';
  if (/^(gif|webp|png|jpe?g|bmp)$/.test(ext)) return 'image';
  return 'file';
}

// file: a File, or {name, size, type} for a job restored after a reload.
// o: {own: options of its own, fmt: its format, after: the element to follow}
function newItem(file, meta, o = {}) {
  const el = $('#item-tpl').content.firstElementChild.cloneNode(true);
  const item = { id: nextId++, file, meta, el, status: 'ready', job: null, own: o.own || null,
    fmt: o.fmt || null, restored: !(file instanceof Blob) };
  el.dataset.item = item.id;
  $('.name', el).textContent = file.name;
  $('.name', el).title = file.name;
  $('.remove', el).setAttribute('aria-label', `Remove ${file.name}`);
  const kind = kindOfFile(file);
  const icon = $('.icon', el);
  icon.dataset.type = kind;
  icon.innerHTML = `<svg viewBox="0 0 24 24" width="22" height="22" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linecap="round" stroke-linejoin="round">${ICONS[kind]}</svg>`;
  const sel = $('select.fmt', el);
  sel.setAttribute('aria-label', `Format for ${file.name}`);
  sel.addEventListener('change', () => { item.fmt = sel.value; renderSetup(item); refreshButtons(); });
  el.addEventListener('click', (e) => {
    const act = e.target.closest('button[data-act]')?.dataset.act;
    if (act) actions[act](item);
  });
  items.splice(o.after ? items.indexOf(o.after) + 1 : items.length, 0, item);
  if (o.after) o.after.el.after(el); else $('#items').append(el);
  $('#empty').hidden = true;
  fillFormatSelect(item);
  renderMeta(item);
  if (!meta) probe(file).then((m) => { item.meta = m; renderMeta(item); renderSetup(item); });
  if (!item.restored) previousUpload(file).then((prev) => offerResume(item, prev));
  setStatus(item, 'ready');
  return item;
}

// After a reload, a file picked again whose earlier upload the server still
// has (tus, resumable) can go on from where it stopped, with the settings
// it was sent with.
function offerResume(item, prev) {
  if (!prev || item.status !== 'ready' || !items.includes(item)) return;
  const fmt = formats.find((f) => f.name === prev.metadata?.format);
  const pct = Math.floor(100 * prev.offset / prev.length);
  const p = document.createElement('p');
  p.className = 'resume-offer';
  p.append(`An earlier upload of this file stopped at ${pct}%${fmt ? ` (as ${upper(fmt)})` : ''}. `);
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'ghost';
  b.dataset.act = 'resume';
  b.textContent = 'Resume upload';
  p.append(b);
  item.resumable = prev;
  $('.setup', item.el).after(p);
}

function fillFormatSelect(item) {
  const sel = $('select.fmt', item.el);
  if (!formats.length || sel.options.length) return;
  for (const [group, title] of GROUPS) {
    const og = document.createElement('optgroup');
    og.label = title;
    for (const f of formats.filter((x) => x.group === group && isMain(x))) og.append(new Option(upper(f), f.name));
    if (og.children.length) sel.append(og);
  }
  renderSetup(item);
}

// The format an item will be converted to: its own choice, else the form's.
const formatOf = (item) => formats.find((f) => f.name === item.fmt) || currentFormat();

function renderMeta(item) {
  const bits = [fmtBytes(item.file.size)];
  if (item.meta?.duration && Number.isFinite(item.meta.duration)) bits.push(fmtDur(item.meta.duration));
  if (item.meta?.width) bits.push(`${item.meta.width}×${item.meta.height}`);
  $('.meta', item.el).textContent = bits.join(' · ');
}

// The options in words: "720p, 15 fps, trimmed, no sound".
function describe(opt) {
  const bits = [];
  if (opt.size) bits.push(`${opt.size}p`);
  else if (opt.width || opt.height) bits.push(`${opt.width || 'auto'}×${opt.height || 'auto'}`);
  if (opt.fps) bits.push(`${opt.fps} fps`);
  if (opt.quality) bits.push(`quality ${opt.quality}`);
  if (opt.start) bits.push(`from ${fmtDur(+opt.start)}`);
  if (opt.duration) bits.push(`${fmtDur(+opt.duration)} long`);
  if (opt.audio === '0') bits.push('no sound');
  if (opt.audio_bitrate) bits.push(`${+opt.audio_bitrate / 1000} kbit/s`);
  if (opt.target_size) bits.push(`under ${fmtBytes(parseSize(opt.target_size))}`);
  if (opt.also) bits.push(`also ${opt.also.split(',').map((n) => n.toUpperCase()).join(', ')}`);
  if (opt.preset) {
    const p = presets.find((x) => x.name === opt.preset);
    bits.unshift(p?.label || opt.preset);
  }
  return bits.join(', ');
}

// An item's own options for another format: what that format cannot use goes.
function adapt(own, f) {
  const uses = usesOf(f);
  const opt = { format: f.name };
  for (const [k, v] of Object.entries(own)) if (OPTION_FIELD[k] && uses.includes(OPTION_FIELD[k])) opt[k] = v;
  return opt;
}

// A rough size of the result, from the file's duration and picture size and
// the server's presets (README, "Presets"); NaN when there is no telling.
const AUDIO_KBPS = { mp3: 192, m4a: 192, opus: 128, ogg: 160, wav: 1411, flac: 800, mp4: 128, mov: 128, mkv: 128, webm: 96 };
export function estimateBytes(meta, f, opt = {}) {
  if (!meta || !f) return NaN;
  const kind = kindOf(f);
  let dur = meta.duration;
  if (!Number.isFinite(dur) || dur <= 0) dur = NaN;
  if (Number.isFinite(dur)) {
    dur = Math.max(0, dur - (+opt.start || 0));
    if (+opt.duration) dur = Math.min(dur, +opt.duration);
  }
  let w = meta.width || 0, h = meta.height || 0;
  if (w && h) {
    let s = 1;
    if (opt.size) s = Math.min(1, +opt.size / Math.min(w, h));
    else if (opt.height) s = Math.min(1, +opt.height / h);
    else if (opt.width) s = Math.min(1, +opt.width / w);
    const maxw = f.defaults?.max_width || (kind === 'animation' ? 480 : 0);
    if (maxw && w * s > maxw) s = maxw / w;
    w *= s; h *= s;
  }
  // with a size to fit, the server aims a little under it (README)
  const fit = parseSize(opt.target_size);
  if (fit > 0 && (kind === 'video' || kind === 'audio')) return 0.92 * fit;
  const abps = (+opt.audio_bitrate || (AUDIO_KBPS[f.name] || 128) * 1000) * (opt.audio === '0' ? 0 : 1);
  const px = w * h;
  if (kind === 'audio') return dur * abps / 8;
  if (!px) return NaN;
  if (kind === 'image') return px * (f.name === 'png' ? 1.2 : 0.15);
  const fps = +opt.fps || (kind === 'animation' ? (f.defaults?.fps || 12) : 30);
  const q = +opt.quality ? 2 ** ((+opt.quality - 60) / 20) : 1;
  const bpp = { webm: 0.12, gif: 2.5, webp: 0.6 }[f.name] ?? 0.1;
  const video = px * fps * bpp * q * dur / 8;
  return kind === 'animation' ? video : video + dur * abps / 8;
}

// A ready item: its format menu, the estimate, a warning when it grows a lot.
function renderSetup(item) {
  const f = formatOf(item);
  const sel = $('select.fmt', item.el);
  if (f && sel.value !== f.name) sel.value = f.name;
  const opt = item.own ? adapt(item.own, f || {}) : (f ? readOptions(f).opt : {});
  const est = estimateBytes(item.meta, f, opt);
  $('.estimate', item.el).textContent = Number.isFinite(est) && est > 0 ? `about ${fmtBytes(est)}` : '';
  $('.own', item.el).textContent = item.own ? `its own settings${describe(adapt(item.own, f || {})) ? ': ' + describe(adapt(item.own, f || {})) : ''}` : '';
  const ratio = est / item.file.size;
  const warn = $('.warn', item.el);
  warn.hidden = !(item.status === 'ready' && ratio >= 3);
  if (!warn.hidden) {
    warn.textContent = `As ${upper(f)} this file will be about ${Math.round(ratio)}× larger than it is now (${fmtBytes(est)}).`
      + (kindOf(f) === 'animation' ? ' MP4 or WebM keep moving pictures much smaller.' : '');
  }
}

const STATE_TEXT = {
  ready: 'Ready', waiting: 'Waiting to upload', uploading: 'Uploading', starting: 'Starting',
  queued: 'In line', running: 'Converting', done: 'Done', failed: 'Failed', canceled: 'Canceled',
};
const ACTIVE = ['waiting', 'uploading', 'starting', 'queued', 'running'];

function setStatus(item, status, detail = '') {
  const el = item.el;
  const prev = item.status;
  item.status = status;
  el.dataset.status = status;
  const active = ACTIVE.includes(status);
  $('.progress', el).hidden = !active;
  $('.cancel', el).hidden = !active;
  $('.remove', el).hidden = active;
  $('.setup', el).hidden = status !== 'ready';
  if (status !== 'ready') $('.warn', el).hidden = true;
  $('.state', el).textContent = STATE_TEXT[status] || status;
  $('.detail', el).textContent = detail;
  if (status !== 'failed' && status !== 'canceled') $('.message', el).hidden = true;
  if (status !== 'done') $('.result', el).hidden = true;
  if (prev !== status && status !== 'ready' && status !== 'failed' && status !== 'canceled') {
    announce(`${item.file.name}: ${(STATE_TEXT[status] || status).toLowerCase()}. ${detail}`, { key: item.id });
  }
  refreshButtons();
  save();
}

function setBar(item, value, label) {
  const bar = $('progress', item.el);
  if (value == null) bar.removeAttribute('value'); else bar.value = Math.max(0, Math.min(1, value));
  bar.setAttribute('aria-label', `${item.file.name}: ${label}`);
  // Announce progress in quarters so screen readers are told, not flooded.
  const q = value == null ? -1 : Math.floor(value * 4);
  if (q > 0 && q < 4 && q !== item.lastQuarter) {
    item.lastQuarter = q;
    announce(`${item.file.name}: ${label} ${q * 25}%`, { key: item.id, minor: true });
  }
}

function refreshButtons() {
  const f = currentFormat();
  const ready = items.filter((i) => i.status === 'ready');
  const go = $('#go');
  go.disabled = !f || !ready.length;
  const names = new Set(ready.map((i) => upper(formatOf(i))));
  const name = names.size > 1 ? 'their formats' : upper(ready.length ? formatOf(ready[0]) : f);
  go.textContent = ready.length > 1 ? `Convert ${ready.length} files to ${name}` : `Convert to ${name}`.trim();
  const count = ready.length ? `${ready.length} file${ready.length > 1 ? 's' : ''} ready` : '';
  $('#ready-count').textContent = count;
  document.body.classList.toggle('has-ready', ready.length > 0);
  const picked = $('#picked');
  picked.hidden = !items.length;
  picked.classList.toggle('summary', !ready.length);
  if (!ready.length && items.length) {
    // on a phone the list is far below: say how it goes, and link to it
    const n = (st) => items.filter((i) => st.includes(i.status)).length;
    const parts = [[n(['done']), 'converted'], [n(ACTIVE), 'on the way'], [n(['failed']), 'failed']]
      .filter(([k]) => k).map(([k, w]) => `${k} ${w}`);
    picked.innerHTML = '<a href="#queue-title"></a>';
    $('a', picked).textContent = `${parts.join(', ') || `${items.length} in the list`}: see your files ↓`;
  } else if (ready.length) {
    // what was picked, where it was picked: on a phone the list is far below
    picked.innerHTML = '<strong></strong><ul></ul>';
    $('strong', picked).textContent = `✓ ${count} to convert`;
    const shown = ready.slice(0, 3).map((i) => i.file.name);
    if (ready.length > 3) shown.push(`and ${ready.length - 3} more`);
    for (const name of shown) {
      const li = document.createElement('li');
      li.textContent = name;
      li.title = name;
      $('ul', picked).append(li);
    }
  }
  const done = items.filter((i) => i.status === 'done');
  $('#bulk').hidden = !items.length;
  $('#zip').hidden = done.length < 2;
  $('#zip').textContent = `Download all ${done.length} (.zip)`;
}

function start(item, opt) {
  $('.resume-offer', item.el)?.remove();
  const f = formats.find((x) => x.name === opt.format);
  const { params, error } = paramsFor(item, opt);
  item.opt = opt;
  item.format = f;
  $('.target', item.el).textContent = `→ ${upper(f)}`;
  if (error) return fail(item, new ApiError(-1, 'start_beyond_end', '', {}), error, 'settings');
  item.params = params;
  item.lastQuarter = 0;
  item.busyTries = 0;
  setStatus(item, 'waiting');
  setBar(item, 0, 'upload');
  pump();
}

// Sends the next waiting file. One upload at a time keeps each one fast; at
// most two starts a second keep a batch under conf.example's limit_req; a
// 429 or 503 holds every upload for its Retry-After (the limit is per client).
function pump() {
  if (uploading) return;
  const item = items.find((i) => i.status === 'waiting');
  if (!item) return;
  const now = Date.now(), at = Math.max(holdUntil, lastStart + PACE_MS);
  if (at > now) {
    clearTimeout(pumpTimer);
    pumpTimer = setTimeout(pump, at - now);
    return;
  }
  lastStart = now;
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
  }, {
    resumeFrom: item.resumeFrom,
    onState: (s) => {
      item.el.dataset.reconnecting = s === 'reconnecting' ? '1' : '';
      if (s === 'reconnecting') $('.detail', item.el).textContent = 'Connection lost; the upload goes on when it is back…';
    },
  });
  item.resumeFrom = null;
  item.req.promise.then((job) => {
    // the same job restored from before a reload: this item follows it now
    for (const other of items.filter((i) => i !== item && i.restored && i.job?.id === job.id)) {
      other.watcher?.stop();
      actions.remove(other, { quiet: true });
    }
    item.job = job;
    item.el.dataset.job = job.id;
    follow(item);
  }, (err) => {
    if (err.code === 'aborted') return;
    if (remedy(err) === 'busy' && item.status !== 'canceled' && ++item.busyTries <= MAX_BUSY_TRIES) {
      // wait what the server says (or 1, 2, 4... s), then send it again
      const wait = Math.min(60, Math.max(err.retryAfter || 0, 2 ** (item.busyTries - 1)));
      holdUntil = Date.now() + wait * 1000;
      item.retries = (item.retries || 0) + 1;
      setStatus(item, 'waiting', `The server is busy; trying again in ${wait} s`);
      item.el.dataset.retried = String(item.retries);
      setBar(item, 0, 'upload');
      return;
    }
    if (remedy(err) === 'busy') return fail(item, err, 'The server stayed busy and did not take the file. Try again in a minute.', 'retry');
    fail(item, err);
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
    if (item.status === 'canceled') return;
    if (item.restored && err.status === 404) return actions.remove(item, { quiet: true });
    fail(item, err);
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

// Ends an item with a sentence (and the technical detail, small), and the
// buttons that can help: "Try again" only where the same again may work.
function message(item, status, text, detail = '', fix = 'retry') {
  setStatus(item, status);
  const canResend = !item.restored;
  $('.message', item.el).hidden = false;
  $('.msg', item.el).textContent = text;
  $('.msg-detail', item.el).textContent = detail;
  $('.message .retry', item.el).hidden = !(canResend && (fix === 'retry' || fix === 'busy'));
  $('.message .change', item.el).hidden = !(canResend && fix === 'settings');
  announce(`${item.file.name}: ${text}`, { key: item.id });
}

function fail(item, err, text, fix) {
  const detail = [err.detail && err.detail !== err.message ? err.detail : '',
    err.status > 0 ? `HTTP ${err.status}` : '', err.code && err.code !== 'client' ? err.code : ''];
  message(item, 'failed', text || err.message, detail.filter(Boolean).join(' · '), fix || remedy(err));
}

function note(item, text) {
  const el = $('.notes', item.el);
  if (!text || el.textContent.includes(text)) return;
  el.textContent = [el.textContent, text].filter(Boolean).join(' ');
  el.hidden = false;
}

// "kept 320×568: the video is smaller than 720p", when the asked size was
// larger than the source (the server never enlarges unless asked).
function sizeNote(item, w, h) {
  const o = item.opt || {}, p = item.params || {};
  if (!w || !h) return;
  const askedH = +p.height, askedW = +p.width;
  const label = o.size ? `${o.size}p` : askedH ? `${askedH} px high` : `${askedW} px wide`;
  if ((askedH && h < askedH && !(askedW && w >= askedW)) || (askedW && w < askedW && !(askedH && h >= askedH))) {
    note(item, `Kept ${w}×${h}: the ${kindOf(item.format || {}) === 'video' ? 'video' : 'picture'} is smaller than ${label}.`);
  }
}

function showResult(item, job) {
  const el = item.el;
  setStatus(item, 'done');
  const f = item.format || formats.find((x) => x.name === job.output?.format) || {};
  const kind = kindOf(f);
  const src = outputUrl(job);
  const box = $('.preview', el);
  box.textContent = '';
  $('.notes', el).textContent = '';
  $('.notes', el).hidden = true;
  const media = document.createElement(kind === 'video' ? 'video' : kind === 'audio' ? 'audio' : 'img');
  if (kind === 'video' || kind === 'audio') {
    media.controls = true;
    media.preload = 'metadata';
    media.playsInline = true;
    media.addEventListener('loadedmetadata', () => {
      $('.out-dur', el).textContent = fmtDur(media.duration);
      if (media.videoWidth) {
        $('.out-px', el).textContent = `${media.videoWidth}×${media.videoHeight}`;
        sizeNote(item, media.videoWidth, media.videoHeight);
      }
    });
  } else {
    media.alt = `Preview of ${item.file.name} as ${upper(f)}`;
    media.addEventListener('load', () => {
      $('.out-px', el).textContent = `${media.naturalWidth}×${media.naturalHeight}`;
      sizeNote(item, media.naturalWidth, media.naturalHeight);
    });
  }
  media.src = src;
  box.append(media);
  const inDur = +job.input?.duration || item.meta?.duration;
  const inBytes = +job.input?.bytes || item.file.size, outBytes = +job.output?.bytes;
  $('.in-bytes', el).textContent = fmtBytes(inBytes);
  $('.out-bytes', el).textContent = fmtBytes(outBytes);
  $('.in-dur', el).textContent = fmtDur(inDur);
  $('.in-px', el).textContent = item.meta?.width ? `${item.meta.width}×${item.meta.height}` : '—';
  $('.out-px', el).textContent = kind === 'audio' ? 'none' : '—';
  // GIF/WebP have no duration the browser reports: the asked part, if known.
  const asked = Math.min(+item.params?.duration || Infinity, inDur - (+item.params?.start || 0));
  $('.out-dur', el).textContent = +job.output?.duration ? fmtDur(+job.output.duration)
    : kind === 'animation' && Number.isFinite(asked) ? fmtDur(asked) : '—';
  const ext = /\.([a-z0-9]{2,5})$/i.exec(item.file.name)?.[1];
  $('.in-fmt', el).textContent = ext ? ext.toUpperCase() : String(job.input?.format || '—').split(',')[0];
  $('.out-fmt', el).textContent = upper(f) || String(job.output?.format || '').toUpperCase();
  const fit = parseSize(item.opt?.target_size);
  if (fit > 0 && outBytes > 0) note(item, `${fmtBytes(outBytes)}: under the ${fmtBytes(fit)} asked.`);
  if (outBytes >= 3 * inBytes && inBytes > 0) {
    note(item, `This ${upper(f)} is ${Math.round(outBytes / inBytes)}× larger than the original.`
      + (kind === 'animation' ? ' MP4 or WebM keep moving pictures much smaller.' : ''));
  }
  const a = $('.download', el);
  a.href = src;
  a.textContent = `Download ${upper(f)} (${fmtBytes(outBytes)})`;
  item.outName = item.file.name.replace(/\.[^.]*$/, '') + '.' + (f.ext || f.name);
  a.setAttribute('download', item.outName);
  renderOutputs(item, job);
  $('.again', el).hidden = item.restored;
  const exp = toDate(job.expires);
  $('.expires', el).textContent = exp
    ? `Kept on the server until ${exp.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}${fromNow(exp)}.` : '';
  $('.result', el).classList.toggle('sound', kind === 'audio');
  $('.result', el).hidden = false;
  refreshButtons();
  if (!item.quietDone) announce(`${item.file.name} is converted. The download button is ready.`, { key: item.id });
  item.quietDone = false;
}

// A job of several outputs (its JSON's "outputs"; one without the list has
// only "output"): each with its own preview and download, and all of them
// as one zip from the server (/outputs.zip).
function renderOutputs(item, job) {
  const el = item.el, list = $('.outputs', el), zip = $('.zip-all', el);
  const outs = Array.isArray(job.outputs) ? job.outputs.filter((o) => o && o.name && o.url) : [];
  list.textContent = '';
  list.hidden = outs.length < 2;
  zip.hidden = outs.length < 2;
  if (outs.length < 2) return;
  const base = item.file.name.replace(/\.[^.]*$/, '') || 'output';
  zip.href = new URL(`api/jobs/${encodeURIComponent(job.id)}/outputs.zip`, document.baseURI).href;
  zip.setAttribute('download', `${base}.zip`);
  zip.textContent = `Download all ${outs.length} (.zip)`;
  for (const o of outs) {
    const f = formats.find((x) => x.name === (o.format || o.name));
    const kind = f ? kindOf(f) : 'data';
    const href = new URL(o.url, document.baseURI).href;
    const li = document.createElement('li');
    li.className = 'output';
    li.dataset.output = o.name;
    let media = null;
    if (kind === 'video' || kind === 'audio') {
      media = document.createElement(kind);
      media.controls = true;
      media.preload = 'metadata';
      media.playsInline = true;
    } else if (kind === 'hls') {
      // the master playlist plays where the browser plays HLS itself
      if (document.createElement('video').canPlayType(HLS.mime)) {
        media = document.createElement('video');
        media.controls = true;
        media.preload = 'metadata';
        media.playsInline = true;
      }
    } else if (kind === 'image' || kind === 'animation' || kind === 'sprite') {
      media = document.createElement('img');
      media.alt = `${o.name} of ${item.file.name}`;
      media.loading = 'lazy';
    }
    if (media) {
      media.className = 'out-preview';
      media.src = href;
      li.append(media);
    }
    const name = `${base}.${OUT_EXT[o.name] || f?.ext || o.name}`;
    const text = document.createElement('span');
    text.className = 'out-name';
    text.textContent = name;
    text.title = name;
    const link = document.createElement('a');
    link.className = 'button out-download';
    link.href = href;
    // a playlist alone is no file to keep: it opens; the zip has them all
    if (kind !== 'hls') link.setAttribute('download', name);
    link.textContent = `${o.name.toUpperCase()} (${fmtBytes(+o.bytes)})`;
    link.setAttribute('aria-label', kind === 'hls' ? `Open the HLS playlist of ${item.file.name}`
      : `Download ${name}, ${fmtBytes(+o.bytes)}`);
    li.append(text, link);
    list.append(li);
  }
}

// The first button of an item that can take focus, else the file picker.
function focusIn(item) {
  const b = item && [...item.el.querySelectorAll('button, a[href], select')].find((x) => x.offsetParent !== null);
  (b || $('#file')).focus();
}

const actions = {
  async cancel(item) {
    const was = item.status;
    item.req?.abort();
    item.watcher?.stop();
    item.watcher = null;
    message(item, 'canceled', 'Canceled.', '', 'retry');
    const again = $('.message .retry', item.el);
    if (!again.hidden) again.focus(); else focusIn(item);
    if (item.job && !['waiting', 'uploading'].includes(was)) {
      try { await deleteJob(item.job.id); } catch (e) { if (e.status !== 404) fail(item, e); }
    }
  },
  remove(item, o = {}) {
    if (item.job?.id && item.status === 'done') deleteJob(item.job.id).catch(() => {});
    const i = items.indexOf(item);
    if (i < 0) return;
    items.splice(i, 1);
    const next = items[i] || items[i - 1];
    item.el.remove();
    $('#empty').hidden = items.length > 0;
    if (!o.quiet) {
      focusIn(next);
      announce(`${item.file.name} removed.`);
    }
    refreshButtons();
    save();
  },
  // goes on with the upload previousUpload() found (tus), in its format
  resume(item) {
    if (!item.resumable) return;
    item.resumeFrom = item.resumable;
    item.resumable = null;
    const fmt = item.resumeFrom.metadata?.format;
    if (formats.some((f) => f.name === fmt)) item.fmt = fmt;
    start(item, readOptions(formatOf(item)).opt);
  },
  retry(item) {
    $('.notes', item.el).textContent = '';
    start(item, item.opt || readOptions(formatOf(item)).opt);
  },
  // A copy of the file with this conversion's own settings, ready to be
  // sent again (its format can be changed first).
  again(item) {
    const copy = newItem(item.file, item.meta, { own: item.opt, fmt: item.opt?.format, after: item });
    $('select.fmt', copy.el).focus();
    copy.el.scrollIntoView({ block: 'nearest' });
    announce(`${item.file.name} is in the list again with its own settings. Pick its format, then Convert.`);
  },
};

function convert(list) {
  const fromForm = new Map();
  const errors = [], plans = [];
  for (const item of list) {
    const f = formatOf(item);
    if (!f) continue;
    let opt;
    if (item.own) opt = adapt(item.own, f);
    else {
      if (!fromForm.has(f.name)) fromForm.set(f.name, readOptions(f));
      const r = fromForm.get(f.name);
      opt = r.opt;
      for (const e of r.errors) if (!errors.some(([el]) => el === e[0])) errors.push(e);
    }
    plans.push([item, opt]);
  }
  if (!showErrors(errors)) return false;
  for (const [item, opt] of plans) start(item, opt);
  return true;
}

// ---------- the list kept across reloads ----------

// Jobs the server took (their ids and settings) go into localStorage; after
// a reload they come back from GET /api/jobs/{id} until they expire.
let restoring = false;
function save() {
  if (restoring) return;
  try {
    const keep = items.filter((i) => i.job?.id && i.status !== 'canceled').slice(-50).map((i) => ({
      job: i.job.id, name: i.file.name, size: i.file.size, type: i.file.type || '',
      meta: i.meta || null, opt: i.opt || null, params: i.params || null,
    }));
    if (keep.length) localStorage.setItem(STORE_KEY, JSON.stringify(keep));
    else localStorage.removeItem(STORE_KEY);
  } catch { /* private mode or full: the list is just not kept */ }
}

async function restore() {
  let saved = [];
  try { saved = JSON.parse(localStorage.getItem(STORE_KEY) || '[]'); } catch { /* ignore */ }
  if (!Array.isArray(saved) || !saved.length) return;
  restoring = true;
  await Promise.all(saved.filter((s) => s && typeof s.job === 'string').map(async (s) => {
    const item = newItem({ name: String(s.name || 'file'), size: +s.size || 0, type: String(s.type || '') }, s.meta);
    item.opt = s.opt;
    item.params = s.params;
    item.format = formats.find((f) => f.name === s.opt?.format || f.name === s.params?.format);
    $('.target', item.el).textContent = item.format ? `→ ${upper(item.format)}` : '';
    item.job = { id: s.job, status: 'queued' };
    item.el.dataset.job = s.job;
    setStatus(item, 'starting', 'Checking on the server…');
    try {
      item.job = await getJob(s.job);
    } catch (e) {
      if (e.status === 404 || e.status === 410) return actions.remove(item, { quiet: true });
      return fail(item, e);
    }
    item.quietDone = true;
    follow(item);
  })).finally(() => { restoring = false; save(); });
  const n = items.length;
  if (n) announce(`${n} earlier conversion${n > 1 ? 's are' : ' is'} back in the list.`);
}

// ---------- batches ----------

async function downloadAll() {
  const done = items.filter((i) => i.status === 'done');
  const status = $('#bulk-status');
  const btn = $('#zip');
  btn.disabled = true;
  status.hidden = false;
  try {
    const entries = [];
    for (const [k, item] of done.entries()) {
      status.textContent = `Preparing the ZIP: fetching ${k + 1} of ${done.length}…`;
      const res = await fetch(outputUrl(item.job));
      if (!res.ok) throw new Error(`${item.file.name}: HTTP ${res.status}`);
      entries.push({ name: item.outName || item.file.name, blob: await res.blob() });
    }
    status.textContent = 'Preparing the ZIP…';
    const zip = await makeZip(entries);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(zip);
    const d = new Date(), p = (x) => String(x).padStart(2, '0');
    a.download = `vconv-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}.zip`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    status.textContent = `${done.length} files in ${a.download} (${fmtBytes(zip.size)}).`;
    announce(status.textContent);
  } catch (e) {
    status.textContent = `The ZIP could not be made: ${e.message}. Download the files one by one.`;
    announce(status.textContent);
  } finally {
    btn.disabled = false;
  }
}

function clearAll() {
  const busy = items.filter((i) => ACTIVE.includes(i.status));
  for (const item of items.filter((i) => !ACTIVE.includes(i.status))) actions.remove(item, { quiet: true });
  const status = $('#bulk-status');
  status.hidden = !busy.length;
  status.textContent = busy.length ? `${busy.length} file${busy.length > 1 ? 's' : ''} still on the way stayed in the list.` : '';
  announce(busy.length ? `List cleared. ${status.textContent}` : 'List cleared.');
  focusIn(busy[0]);
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
  $('#opts').addEventListener('input', (e) => {
    if (activePreset && !presetsOnly && e.target.closest('#more, #formats') && !e.target.matches('#start, #end')) {
      pickPreset(null);
    }
    summarize();
    for (const item of items) if (item.status === 'ready') renderSetup(item);
    if (!$('#opt-error').hidden) showErrors(readOptions().errors);
  });
  $('#opts').addEventListener('submit', (e) => {
    e.preventDefault();
    const ready = items.filter((i) => i.status === 'ready');
    if (ready.length && convert(ready)) $('#queue-title').focus();
  });
  $('#zip').addEventListener('click', downloadAll);
  $('#clear').addEventListener('click', clearAll);
  // Leaving while a file is being sent loses it; after that the server has it.
  window.addEventListener('beforeunload', (e) => {
    if (uploading || items.some((i) => i.status === 'waiting')) {
      e.preventDefault();
      e.returnValue = '';
    }
  });
}

async function init() {
  wire();
  try {
    const p = await getPresets();
    limits = p.options || {};
    presets = Array.isArray(p.presets) ? p.presets.filter((x) => x && x.name && x.format) : [];
    presetsOnly = p.presets_only === true;
    formats = (p.formats || []).filter((f) => f && f.name).map((f) => ({
      ...f, kind: kindOf(f), group: f.group || GROUP_OF_KIND[kindOf(f)] || 'video',
    }));
    if (!formats.length) throw new Error('no formats');
    if (formats.some((f) => f.kind === 'video') && !formats.some((f) => f.name === 'hls')) formats.push(HLS);
    for (const [id, key] of [['width', 'width'], ['height', 'height'], ['fps', 'fps']]) {
      if (limits[key]?.min != null) $(`#${id}`).min = limits[key].min;
      if (limits[key]?.max != null) $(`#${id}`).max = limits[key].max;
    }
    renderFormats();
    renderPresets();
    await restore();
  } catch (e) {
    $('#formats').removeAttribute('aria-busy');
    $('#formats-status').textContent = e instanceof ApiError && e.status
      ? `Could not load the list of formats: ${e.message}` : 'Could not reach the server. Reload the page to try again.';
    $('#formats-status').className = 'error-text';
  }
  document.documentElement.dataset.ready = '1';
}

init();
