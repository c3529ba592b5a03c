// Shared pieces of the console pages: the htm binding, role checks, formatting, data loading.
import { h } from 'preact';
import { useEffect, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
import { api } from './api.js';

export const html = htm.bind(h);
export const RANK = { viewer: 1, operator: 2, admin: 3 };
export const can = (me, role) => me && RANK[me.role] >= RANK[role];
export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
export const fmtBytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

export function useRoute() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.slice(1);
}

/** Loads `fn()` when `deps` change: { data, error, loading, reload }. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

export function Problem({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}</p>`;
}

export function Loading({ what }) {
  return html`<p class="muted" aria-live="polite">Loading ${what}…</p>`;
}


let resultCodes = null;

/** The result codes and their meanings (GET /api/v1/result-codes), loaded once: name → { meaning, retry, codes }. */
export function useResultCodes() {
  const [codes, setCodes] = useState(null);
  useEffect(() => {
    resultCodes ??= api('/api/v1/result-codes').then(
      (r) => new Map(r.results.map((c) => [c.name, c])),
      () => {
        resultCodes = null;
        return new Map();
      },
    );
    let live = true;
    resultCodes.then((m) => live && setCodes(m));
    return () => {
      live = false;
    };
  }, []);
  return codes;
}

const RETRY_TEXT = { retry: 'retrying may help', 'retry-resume': 'retried, resuming the download', 'no-retry': 'fix the cause before retrying' };

/** A result code with its number on the wire and what it means. */
export function ResultCode({ name, codes }) {
  if (!name) return html`—`;
  const c = codes?.get(name);
  const numbers = c ? Object.entries(c.codes).map(([k, v]) => `${k} ${v}`).join(', ') : '';
  return html`<span class="mono">${name}</span>${numbers ? html` <span class="muted">(${numbers})</span>` : ''}${c ? html`<br /><span class="meaning" data-testid="result-meaning">${c.meaning}${c.retry ? ` — ${RETRY_TEXT[c.retry] ?? c.retry}` : ''}</span>` : ''}`;
}

/**
 * A list the server pages with a `next` cursor, newest first: the first page, then each older one
 * appended by `more()` — a device's whole history, however long. { items, next, error, more, reload }.
 */
export function useCursorList(path, key, deps) {
  const [pages, setPages] = useState({ items: null, next: null, error: null });
  const [tick, setTick] = useState(0);
  const page = (after) => api(`${path}${path.includes('?') ? '&' : '?'}${after ? `after=${encodeURIComponent(after)}` : ''}`);
  useEffect(() => {
    let live = true;
    page(null).then(
      (body) => live && setPages({ items: body[key], next: body.next, error: null }),
      (error) => live && setPages({ items: null, next: null, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const more = () =>
    page(pages.next).then(
      (body) => setPages((p) => ({ items: [...(p.items ?? []), ...body[key]], next: body.next, error: null })),
      (error) => setPages((p) => ({ ...p, error })),
    );
  return { ...pages, more, reload: useCallback(() => setTick((t) => t + 1), []) };
}

export function MoreButton({ list, what }) {
  if (!list.next) return null;
  return html`<p><button class="secondary" onClick=${list.more}>Show older ${what}</button></p>`;
}
