// A package's page: what it is, what it targets (set once, by an operator, when not yet set),
// which devices would get it (the inventory judged on the server a slice at a time, as a
// campaign selecting by the package's name would), and deleting it while nothing uses it.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, can, fmtTime, fmtBytes, useLoad, Problem, Loading } from '../ui.js';
import { deviceName } from './inventory.js';

const SCAN = 1000;

function Targets({ me, sha256 }) {
  const targets = useLoad(() => api(`/api/v1/packages/${sha256}/targets`), [sha256]);
  const [result, setResult] = useState(null);
  const list = (v) => String(v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {};
    if (String(f.get('platform')).trim()) body.platform = String(f.get('platform')).trim();
    if (String(f.get('osVersion')).trim()) body.osVersion = String(f.get('osVersion')).trim();
    if (list(f.get('make')).length) body.make = list(f.get('make'));
    if (list(f.get('model')).length) body.model = list(f.get('model'));
    if (String(f.get('priority')).trim()) body.priority = Number(f.get('priority'));
    try {
      await api(`/api/v1/packages/${sha256}/targets`, { method: 'POST', json: body });
      setResult({ ok: 'Targets set.' });
      targets.reload();
    } catch (error) {
      setResult({ error });
    }
  };
  const t = targets.data;
  const empty = t && Object.keys(t).filter((k) => k !== 'priority').length === 0;
  return html`<section class="panel" aria-labelledby="targets-h"><h3 id="targets-h">Targets</h3>
    <${Problem} error=${targets.error} />
    ${t && html`<dl class="facts" data-testid="targets">
      <dt>Platform</dt><dd>${t.platform ?? 'any'}</dd><dt>OS version</dt><dd>${t.osVersion ?? 'any'}</dd>
      <dt>Make</dt><dd>${t.make?.join(', ') ?? 'any'}</dd><dt>Model</dt><dd>${t.model?.join(', ') ?? 'any'}</dd>
      <dt>Package type</dt><dd>${t.packageType ?? 'any'}</dd><dt>Priority</dt><dd>${t.priority ?? 0}</dd>
    </dl>`}
    ${empty && can(me, 'operator') && html`<h4>Set the targets (once: they are part of the package)</h4>
      <form class="inline" onSubmit=${submit}>
        <div><label for="t-platform">Platform</label><input id="t-platform" name="platform" class="short" placeholder="linux*" /></div>
        <div><label for="t-os">OS versions</label><input id="t-os" name="osVersion" class="short" placeholder=">=3 <5" /></div>
        <div><label for="t-make">Makes (comma-separated)</label><input id="t-make" name="make" class="short" /></div>
        <div><label for="t-model">Models (comma-separated)</label><input id="t-model" name="model" class="short" /></div>
        <div><label for="t-priority">Priority</label><input id="t-priority" name="priority" type="number" class="short" /></div>
        <button type="submit">Set targets</button>
      </form>`}
    ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error} />
  </section>`;
}

function WouldGet({ sha256 }) {
  const [state, setState] = useState({ devices: [], scanned: 0, next: undefined, busy: false, error: null, started: false });
  const scan = async () => {
    setState((s) => ({ ...s, busy: true, error: null, started: true }));
    try {
      const page = await api(`/api/v1/packages/${sha256}/devices?${new URLSearchParams({ scan: String(SCAN), ...(state.next ? { after: state.next } : {}) })}`);
      setState((s) => ({ devices: [...s.devices, ...page.devices], scanned: s.scanned + page.scanned, next: page.next, busy: false, error: null, started: true }));
    } catch (error) {
      setState((s) => ({ ...s, busy: false, error }));
    }
  };
  const done = state.started && state.next === null;
  return html`<section class="panel" aria-labelledby="would-h"><h3 id="would-h">Which devices would get this</h3>
    <p class="muted">Devices this package fits, and whether it wins among the packages of its name (what a campaign selecting by that name installs). The inventory is judged ${SCAN} devices at a time.</p>
    <p><button class="secondary" onClick=${scan} disabled=${state.busy || done} data-testid="would-get">${!state.started ? 'Find the devices' : done ? 'Every device judged' : `Judge ${SCAN} more devices`}</button></p>
    ${state.busy && html`<${Loading} what="the selection" />`}<${Problem} error=${state.error} />
    ${state.started && html`<p aria-live="polite" data-testid="would-get-count">${state.devices.filter((d) => d.chosen).length} of ${state.scanned} devices judged would get it${state.devices.some((d) => !d.chosen) ? `; it fits ${state.devices.filter((d) => !d.chosen).length} more that would get another version` : ''}.</p>`}
    ${state.devices.length > 0 && html`<table data-testid="would-get-devices"><thead><tr><th scope="col">Device</th><th scope="col">Make</th><th scope="col">Model</th><th scope="col">OS</th><th scope="col">Would get</th></tr></thead>
      <tbody>${state.devices.slice(0, 500).map((d) => html`<tr><td><a href=${`#/inventory/${encodeURIComponent(d.id)}`}>${deviceName(d)}</a></td><td>${d.make ?? d.expected.make ?? '—'}</td><td>${d.model ?? d.expected.model ?? '—'}</td><td>${[d.os, d.osVersion].filter(Boolean).join(' ') || '—'}</td><td>${d.chosen ? 'this package' : html`<span class="muted">${d.instead ? `${d.instead.name} ${d.instead.version} instead` : 'another package'}</span>`}</td></tr>`)}</tbody></table>
      ${state.devices.length > 500 && html`<p class="muted">The first 500 are listed.</p>`}`}
  </section>`;
}

export function PackageDetail({ me, sha256 }) {
  const pkg = useLoad(() => api(`/api/v1/packages/${sha256}`), [sha256]);
  const [result, setResult] = useState(null);
  const remove = async () => {
    if (!confirm('Delete this package from the catalog?')) return;
    try {
      await api(`/api/v1/packages/${sha256}/remove`, { method: 'POST' });
      location.hash = '#/packages';
    } catch (error) {
      setResult({ error });
    }
  };
  if (pkg.error) return html`<p><a href="#/packages">← Packages</a></p><${Problem} error=${pkg.error} />`;
  if (!pkg.data) return html`<${Loading} what="the package" />`;
  const p = pkg.data;
  return html`<p><a href="#/packages">← Packages</a></p><h2>Package ${p.name} ${p.version}</h2>
    <div class="panel"><dl class="facts">
      <dt>SHA-256</dt><dd class="mono">${p.sha256}</dd><dt>Size</dt><dd>${fmtBytes(p.size)}</dd>
      <dt>Signed by</dt><dd>${p.keyId ?? '— (opaque or unsigned)'}</dd><dt>Added</dt><dd>${fmtTime(p.addedAt)}</dd>
    </dl>
    ${can(me, 'operator') && html`<p><button class="danger" onClick=${remove}>Delete package</button></p>`}
    <${Problem} error=${result?.error} /></div>
    <${Targets} me=${me} sha256=${sha256} />
    <${WouldGet} sha256=${sha256} />`;
}
