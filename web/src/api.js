// The one way the page talks to the API: bearer token from sessionStorage, problem+json
// errors turned into Chinese messages, cancellable requests (AbortController).

import { lang } from './i18n.js';

const TOKEN_KEY = 'gis-service.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, body) {
    const fields = (body && body.fields) || [];
    // problem+json carries the message in both languages: the page's language first.
    const said = body && (lang === 'en' ? body.detail || body.detail_zh : body.detail_zh || body.detail);
    const base = said || (body && body.title) || `请求失败（HTTP ${status}）`;
    const where = fields.length ? `（${fields.map((f) => f.field || f.name).filter(Boolean).join('、')}）` : '';
    super(base + where);
    this.status = status;
    this.body = body;
  }
}

const listeners = new Set();
/** Called with no argument whenever the API answers 401 (token missing or expired). */
export function onUnauthorized(fn) { listeners.add(fn); }

export function authHeaders() {
  const token = session.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * fetch + JSON. Options: method, body (object → JSON; FormData/string passed through),
 * signal, headers, raw (return the Response).
 */
export async function api(path, { method = 'GET', body, signal, headers = {}, raw = false } = {}) {
  const h = { Accept: 'application/json', ...authHeaders(), ...headers };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return answer(await fetch(path, { method, headers: h, body: payload, signal }), raw);
}

async function answer(response, raw = false) {
  if (response.status === 401) listeners.forEach((fn) => fn());
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/**
 * A GET that early.js already sent at navigation (same token): its answer, taken once;
 * otherwise a normal request.
 */
export function early(path) {
  const e = window.__early;
  const sent = e && e.pending[path];
  if (sent && e.token === session.token) {
    delete e.pending[path];
    return sent.then((response) => answer(response));
  }
  return api(path);
}

/** Returns a function that aborts the previous request and hands out a fresh signal. */
export function latestOnly() {
  let controller = null;
  return () => {
    if (controller) controller.abort();
    controller = new AbortController();
    return controller.signal;
  };
}

export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.code === 20);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Download an API answer (CSV/XLSX …) as a file, with the token. */
export async function download(path, { method = 'GET', body, filename } = {}) {
  const response = await api(path, { method, body, raw: true, headers: { Accept: '*/*' } });
  const blob = await response.blob();
  const disposition = response.headers.get('Content-Disposition') || '';
  const match = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(disposition);
  const name = filename || (match ? decodeURIComponent(match[1] || match[2]) : 'download');
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob;
}
