// vconv page: the HTTP API (docs: README, "HTTP API") and its error messages.
// Paths are relative to the page, so the page works under a prefix too.

const API = new URL('api/', document.baseURI);
const url = (path) => new URL(path, API).href;

export const TERMINAL = new Set(['done', 'failed', 'canceled']);

// An error with the server's code, the HTTP status and a sentence for people.
export class ApiError extends Error {
  constructor(status, code, detail, extra = {}) {
    super(explain(status, code, detail, extra));
    this.status = status;
    this.code = code || '';
    this.detail = detail || '';
    Object.assign(this, extra);
  }
}

// Reads {"error":{"code","message"}}; nginx's own pages are HTML unless
// the server maps them to JSON (conf.example's error_page).
function errorOf(status, text, headers = {}) {
  let code = '', detail = '';
  try {
    const e = JSON.parse(text).error || {};
    code = e.code || '';
    detail = e.message || '';
  } catch { /* not JSON: keep the status alone */ }
  const extra = {};
  const ra = headers['retry-after'];
  if (ra && /^\d+$/.test(ra.trim())) extra.retryAfter = +ra;
  else if (ra && !Number.isNaN(Date.parse(ra))) extra.retryAfter = Math.max(0, Math.ceil((Date.parse(ra) - Date.now()) / 1000));
  return new ApiError(status, code, detail, extra);
}

const DAMAGED = 'This file looks damaged or incomplete';
const BY_CODE = {
  decode_error: `${DAMAGED}: part of it could not be read. Another copy of the file (the original, or a complete download) may work.`,
  empty_output: `${DAMAGED}: nothing could be converted from it. Another copy of the file (the original, or a complete download) may work.`,
  converter_crashed: `${DAMAGED}: the converter stopped on it. Another copy of the file may work.`,
  too_large: 'This file is too large for this server.',
  rate_limited: 'Too many uploads in a short time. The page waits and tries again by itself.',
  unavailable: 'The server is busy.',
  bad_gateway: 'The conversion server did not answer. Please try again.',
  gateway_timeout: 'The conversion server took too long to answer. Please try again.',
  start_beyond_end: 'The start time is after the end of the file.',
  cannot_copy: 'This file cannot be copied into that format without converting it.',
  too_many_streams: 'This file has more tracks than this server accepts.',
  unsupported_audio_format: 'The sound of this file cannot be converted (its channel layout or format is not supported).',
  unsupported_audio_layout: 'The sound of this file has more channels, or another channel layout, than can be converted.',
  unsupported_sample_rate: 'The sound of this file has a sample rate that cannot be converted.',
  unsupported_pixel_format: 'The picture of this file is stored in a pixel format that cannot be converted.',
  unsupported_picture_size: 'The picture of this file has a size that cannot be converted.',
  memory_limit: 'Converting this file needs more memory than this server allows. Choose a smaller size.',
  output_size_limit: 'The result would be larger than this server allows. Choose a smaller size, lower quality or a shorter part.',
  stalled: 'The conversion stopped making progress and was given up.',
  interrupted: 'The server restarted while converting. Please try again.',
  upload_aborted: 'The upload did not complete.',
  unsupported_input: 'This file is not a video, audio or image file that this server can read.',
  input_format_not_allowed: 'This server does not accept files of this type. Try an MP4, MOV, WebM or MKV video.',
  no_video_stream: 'This file has no picture, so it cannot become a video or image. Pick an audio format such as MP3.',
  no_audio_stream: 'This file has no sound, so it cannot become an audio file.',
  resolution_limit: 'The picture is larger than this server allows. Choose a smaller size.',
  duration_limit: 'The file is longer than this server allows. Trim it with "Start at" and "End at".',
  unknown_option: 'An option was not understood by the server.',
  out_of_range: 'An option is out of its allowed range.',
  not_a_number: 'An option needs a number.',
  bad_time: 'A time is not valid. Use seconds (90) or minutes:seconds (1:30).',
  format_not_allowed: 'This server does not offer that output format.',
  unknown_format: 'This server does not offer that output format.',
  queue_full: 'The server is busy converting other files.',
  store_full: 'The server has no room to store files right now. Please try again later.',
  stall_timeout: 'The conversion stopped making progress and was given up.',
  output_too_large: 'The result would be larger than this server allows. Choose a smaller size, lower quality or a shorter part.',
  not_found: 'This conversion no longer exists. It may have expired or been removed.',
  not_ready: 'The result is not ready yet.',
  worker_died: 'The server stopped while converting. Please try again.',
  canceled: 'The conversion was canceled.',
};

const BY_STATUS = {
  0: 'The upload was interrupted. The connection dropped, or the file is too large for this server.',
  400: 'The server did not accept the chosen options.',
  404: BY_CODE.not_found,
  409: BY_CODE.not_ready,
  413: 'This file is too large for this server.',
  415: BY_CODE.unsupported_input,
  422: 'This file cannot be converted as asked. Try another format or option.',
  429: BY_CODE.rate_limited,
  502: BY_CODE.bad_gateway,
  504: BY_CODE.gateway_timeout,
  503: BY_CODE.queue_full,
  507: BY_CODE.store_full,
};

export function explain(status, code, detail, extra = {}) {
  let text = BY_CODE[code] || BY_STATUS[status] ||
    (status >= 500 ? 'The server had a problem. Please try again later.'
                   : 'The conversion did not work.');
  if (status === 503 || code === 'queue_full' || code === 'unavailable') {
    text += extra.retryAfter ? ` Please try again in ${extra.retryAfter} s.`
                             : ' Please try again in a minute.';
  }
  if (status === 400 && detail) text += ` (${detail})`;
  return text;
}

// A failed job's JSON into an ApiError (no HTTP status: -1).
export function jobError(job) {
  const e = job?.error || {};
  const err = new ApiError(-1, e.code, e.message);
  if (!BY_CODE[e.code]) err.message = 'The conversion failed.';
  return err;
}

// What can be done about an error: 'busy' (wait and send it again, the page
// does that by itself), 'retry' (the same again may work), 'settings'
// (another format or option may work), or 'none' (the file itself: damaged,
// not media, too large).
const SETTINGS = new Set(['no_video_stream', 'no_audio_stream', 'cannot_copy', 'start_beyond_end',
  'resolution_limit', 'duration_limit', 'output_size_limit', 'memory_limit', 'encode_error',
  'unknown_option', 'unknown_format', 'format_not_allowed', 'not_a_number', 'out_of_range',
  'invalid_value', 'codec_not_allowed', 'conflicting_options', 'duplicate_option', 'bad_time']);
const NONE = new Set(['decode_error', 'empty_output', 'converter_crashed', 'unsupported_input',
  'input_format_not_allowed', 'too_large', 'too_many_streams', 'unsupported_audio_format',
  'unsupported_audio_layout', 'unsupported_sample_rate', 'unsupported_pixel_format',
  'unsupported_picture_size']);
export function remedy(err) {
  if (err.status === 429 || err.status === 503 || ['rate_limited', 'queue_full', 'unavailable'].includes(err.code)) return 'busy';
  if (NONE.has(err.code) || err.status === 413 || err.status === 415) return 'none';
  if (SETTINGS.has(err.code) || err.status === 400 || err.status === 422) return 'settings';
  return 'retry';
}

async function request(method, path) {
  let res;
  try {
    res = await fetch(url(path), { method, headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError(0, 'network', '', {});
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text, Object.fromEntries(res.headers));
  return text ? JSON.parse(text) : null;
}

export const getPresets = () => request('GET', 'presets');
export const getJob = (id) => request('GET', `jobs/${encodeURIComponent(id)}`);
export const deleteJob = (id) => request('DELETE', `jobs/${encodeURIComponent(id)}`);
export const outputUrl = (job) =>
  job.output?.url ? new URL(job.output.url, document.baseURI).href
                  : url(`jobs/${encodeURIComponent(job.id)}/output`);

// Resumable uploads (tus 1.0.0, /api/uploads/) with tus-js-client, which
// the page serves itself (vendor/tus.min.js).  The job is made with the
// upload and converts while the bytes arrive.  A connection that drops
// (offline, a network change) resumes by itself from the server's offset:
// tus-js-client retries a few times, then the page waits for the browser
// to be online again (or a few seconds) and starts it again, which asks
// the server where it stopped.  Each upload's URL is kept in localStorage
// under the file's fingerprint (name, type, size, date), so after a
// reload previousUpload() finds an upload of the same file that did not
// finish, and upload(..., {resumeFrom}) goes on with it.
const TUS_ENDPOINT = () => url('uploads/');
const TUS_RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
const TUS_MAX_RESUMES = 50;
const tusClient = () => (window.tus && window.tus.isSupported ? window.tus : null);

// An earlier upload of this file that the server still has and that did
// not finish: {uploadUrl, offset, length, metadata, ...}, or null.
export async function previousUpload(file) {
  const tus = tusClient();
  if (!tus || !(file instanceof Blob)) return null;
  const up = new tus.Upload(file, { endpoint: TUS_ENDPOINT() });
  let found = [];
  try { found = await up.findPreviousUploads(); } catch { return null; }
  found.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
  for (const p of found) {
    let res;
    try {
      res = await fetch(p.uploadUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    } catch { continue; }
    const offset = +res.headers.get('Upload-Offset'), length = +res.headers.get('Upload-Length');
    if (res.ok && offset < length) return { ...p, offset, length };
    // gone, ended or complete: not worth offering again
    if (res.ok || (res.status >= 400 && res.status < 500)) {
      try { await up.options.urlStorage.removeUpload(p.urlStorageKey); } catch { /* ignore */ }
    }
  }
  return null;
}

// Sends the file with tus (or, without tus-js-client, as one raw POST).
// onProgress(loaded, total); o.onState('reconnecting' | 'uploading');
// o.resumeFrom: a previousUpload() to go on with (its options stay the
// ones it was created with).  Resolves with the job JSON once every byte
// is in.  Returns {promise, abort}; abort() also ends the upload and its
// job on the server.
export function upload(file, params, onProgress, o = {}) {
  const tus = tusClient();
  if (!tus) return uploadRaw(file, params, onProgress);
  let up = null, stopped = false, timer = null, resumes = 0, online = null;
  const promise = new Promise((resolve, reject) => {
    const metadata = { filename: file.name, filetype: file.type || '' };
    for (const [k, v] of new URLSearchParams(params)) metadata[k] = v;
    const again = () => {
      clearTimeout(timer);
      if (online) window.removeEventListener('online', online);
      online = null;
      if (stopped) return;
      o.onState?.('uploading');
      up.start();
    };
    up = new tus.Upload(file, {
      endpoint: TUS_ENDPOINT(),
      metadata,
      retryDelays: TUS_RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      onProgress: (n, total) => onProgress(n, total),
      onSuccess: async () => {
        const id = decodeURIComponent(String(up.url).split('/').pop());
        try {
          resolve(await getJob(id));
        } catch (e) {
          reject(e);
        }
      },
      onError: (err) => {
        if (stopped) return;
        const res = err.originalResponse;
        const status = res ? res.getStatus() : 0;
        // the server's refusal is final; a lost connection is not
        const lost = !status || status === 423 || status === 409
                     || status === 502 || status === 504;
        if (lost && up.url && ++resumes <= TUS_MAX_RESUMES) {
          o.onState?.('reconnecting');
          if (navigator.onLine === false) {
            online = again;
            window.addEventListener('online', online);
          } else {
            timer = setTimeout(again, Math.min(30000, 1000 * resumes));
          }
          return;
        }
        if (!status) return reject(new ApiError(0, 'network', err.message || ''));
        reject(errorOf(status, res.getBody() || '',
                       { 'retry-after': res.getHeader('Retry-After') || '' }));
      },
    });
    if (o.resumeFrom) up.resumeFromPreviousUpload(o.resumeFrom);
    up.start();
  });
  const abort = () => {
    stopped = true;
    clearTimeout(timer);
    if (online) window.removeEventListener('online', online);
    // terminate: the server drops the upload and its job
    up.abort(true).catch(() => {});
  };
  return { promise, abort };
}

// POSTs the raw file. onProgress(loaded, total); resolves with the job JSON.
// Returns {promise, abort}.
export function uploadRaw(file, params, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', url('jobs?' + new URLSearchParams(params)));
    xhr.setRequestHeader('X-File-Name', encodeURIComponent(file.name));
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 202 || xhr.status === 200 || xhr.status === 201) {
        try { resolve(JSON.parse(xhr.responseText)); }
        catch { reject(new ApiError(xhr.status, 'bad_answer', 'the answer was not JSON')); }
      } else {
        const headers = { 'retry-after': xhr.getResponseHeader('Retry-After') || '' };
        reject(errorOf(xhr.status, xhr.responseText, headers));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', ''));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', ''));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

// Event streams open at once. A browser keeps at most 6 connections to a
// server over HTTP/1.1; a stream per job of a batch would leave none for the
// uploads, so jobs beyond these poll.
const MAX_STREAMS = 3;
let streams = 0;

// Follows a job: the SSE stream, polling every second as the fallback.
// onUpdate(job) for each state; resolves with the terminal job JSON.
// Returns {promise, stop}.
export function watch(id, onUpdate) {
  let stopped = false, es = null, timer = null;
  const close = () => { if (es) { es.close(); es = null; streams--; } };
  let finish;
  const promise = new Promise((resolve, reject) => {
    finish = (job, err) => {
      if (stopped) return;
      stopped = true;
      close();
      clearTimeout(timer);
      err ? reject(err) : resolve(job);
    };
    const seen = (job) => {
      if (stopped) return;
      onUpdate(job);
      if (TERMINAL.has(job.status)) finish(job);
    };
    const poll = async () => {
      if (stopped) return;
      try {
        seen(await getJob(id));
      } catch (e) {
        if (e.status === 404 || e.status === 410) return finish(null, e);
        /* a blip: keep polling */
      }
      if (!stopped) timer = setTimeout(poll, 1000);
    };
    if (!('EventSource' in window) || streams >= MAX_STREAMS) return poll();
    streams++;
    es = new EventSource(url(`jobs/${encodeURIComponent(id)}/events`));
    const onEvent = (ev) => {
      try { seen(JSON.parse(ev.data)); } catch { /* ignore a bad event */ }
    };
    for (const t of ['progress', 'done', 'failed', 'canceled', 'message']) {
      es.addEventListener(t, onEvent);
    }
    es.onerror = () => {
      // The stream closed or never opened before the end: poll instead.
      if (stopped) return;
      close();
      poll();
    };
  });
  return { promise, stop: () => { stopped = true; close(); clearTimeout(timer); } };
}
