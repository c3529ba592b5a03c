// Depot's web console: Preact components written with htm (tagged templates, so no JSX
// compiler), hash routes, data from /api/v1 only. Buttons for actions a role may not do are
// not shown; the API refuses them anyway (the server decides, the console only mirrors it).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setCsrf, upload, whenSignedOut } from './api.js';
import { html, can, fmtTime, fmtBytes, useRoute, useLoad, useCursorList, useResultCodes, Problem, Loading, ResultCode, MoreButton } from './ui.js';
import { Inventory, InventoryDevice, ChainHistory } from './pages/inventory.js';
import { Campaigns, CampaignDetail } from './pages/campaigns.js';
import { Methods } from './pages/methods.js';
import { SmsAndDm } from './pages/sms.js';
import { Certificates } from './pages/certificates.js';
import { PackageDetail } from './pages/packages.js';

// ---- login

function Login({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    setBusy(true);
    setError(null);
    try {
      const me = await api('/api/v1/login', { method: 'POST', json: { username: form.get('username'), password: form.get('password') }, quiet: true });
      setCsrf(me.csrfToken);
      onSignedIn(me);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="login">
    <div class="panel">
      <h1>Depot</h1>
      <h2>Sign in</h2>
      <form onSubmit=${submit}>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required autofocus />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <p><button type="submit" disabled=${busy}>Sign in</button></p>
        <${Problem} error=${error} />
      </form>
    </div>
  </main>`;
}

// ---- layout

const PAGES = [
  ['/', 'Dashboard', 'viewer'],
  ['/inventory', 'Inventory', 'viewer'],
  ['/devices', 'LwM2M devices', 'viewer'],
  ['/campaigns', 'Campaigns', 'viewer'],
  ['/methods', 'Install methods', 'viewer'],
  ['/packages', 'Packages', 'viewer'],
  ['/bootstrap', 'Bootstrap', 'viewer'],
  ['/sms', 'SMS & OMA DM', 'viewer'],
  ['/certificates', 'Certificates', 'viewer'],
  ['/users', 'Users', 'admin'],
  ['/audit', 'Audit log', 'admin'],
];

function Shell({ me, route, onSignOut, children }) {
  const current = PAGES.filter(([path]) => path === '/' ? route === '/' : route.startsWith(path)).map(([p]) => p)[0];
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="top">
      <h1>Depot</h1>
      <nav aria-label="Main">
        <ul>
          ${PAGES.filter(([, , role]) => can(me, role)).map(([path, label]) => html`<li><a href=${'#' + path} aria-current=${current === path ? 'page' : undefined}>${label}</a></li>`)}
        </ul>
      </nav>
      <div class="who"><span>${me.username ?? me.actor} (<span data-testid="role">${me.role}</span>)</span><button class="secondary" onClick=${onSignOut}>Sign out</button></div>
    </header>
    <main id="main" tabindex="-1">${children}</main>`;
}

// ---- dashboard

function Bar({ value, max, label }) {
  const pct = max > 0 ? Math.round((value / max) * 100) : 0;
  return html`<div class="bar" role="img" aria-label=${`${label}: ${value}`}><span style=${`width:${pct}%`}></span></div>`;
}

function Dashboard() {
  const { data, error, loading } = useLoad(() => api('/api/v1/fleet/summary'), []);
  if (loading && !data) return html`<${Loading} what="the fleet" />`;
  if (error) return html`<${Problem} error=${error} />`;
  const inProgress = data.installsInProgress.length;
  const max = Math.max(1, ...data.byModel.map((m) => m.devices));
  const maxFail = Math.max(1, ...data.failuresByReason.map((f) => f.jobs));
  return html`<h2>Dashboard</h2>
    <div class="cards">
      <div class="card"><div class="n" data-testid="devices-total">${data.devices}</div><div class="l">devices</div></div>
      <div class="card"><div class="n">${data.registered}</div><div class="l">registered now</div></div>
      <div class="card"><div class="n">${inProgress}</div><div class="l">installs in progress</div></div>
      <div class="card"><div class="n">${data.bootstrapPending}</div><div class="l">bootstrap requests pending</div></div>
      <div class="card"><div class="n">${data.operationsQueued}</div><div class="l">operations queued</div></div>
    </div>
    <section class="panel" aria-labelledby="by-model"><h3 id="by-model">Fleet by make, model and OS</h3>
      <table><thead><tr><th scope="col">Make</th><th scope="col">Model</th><th scope="col">OS</th><th scope="col">Devices</th><th scope="col"><span class="muted">share</span></th></tr></thead>
      <tbody>${data.byModel.map((m) => html`<tr><td>${m.manufacturer ?? '—'}</td><td>${m.model ?? '—'}</td><td>${m.os ?? '—'}</td><td>${m.devices}</td><td><${Bar} value=${m.devices} max=${max} label=${`${m.manufacturer} ${m.model}`} /></td></tr>`)}</tbody></table>
    </section>
    <section class="panel" aria-labelledby="in-progress"><h3 id="in-progress">Installs in progress</h3>
      ${inProgress === 0 ? html`<p class="muted">None.</p>` : html`<table><thead><tr><th scope="col">Device</th><th scope="col">Job</th><th scope="col">State</th><th scope="col">Since</th></tr></thead>
      <tbody>${data.installsInProgress.map((j) => html`<tr><td><a href=${`#/devices/${encodeURIComponent(j.endpoint)}`}>${j.endpoint}</a></td><td class="mono">${j.kind} ${j.id}</td><td>${j.state}</td><td>${new Date(j.updatedAt).toLocaleString()}</td></tr>`)}</tbody></table>`}
    </section>
    <section class="panel" aria-labelledby="failures"><h3 id="failures">Failures by reason</h3>
      ${data.failuresByReason.length === 0 ? html`<p class="muted">No failed installs.</p>` : html`<table><thead><tr><th scope="col">Reason</th><th scope="col">Jobs</th><th scope="col"><span class="muted">share</span></th></tr></thead>
      <tbody>${data.failuresByReason.map((f) => html`<tr><td>${f.reason}</td><td>${f.jobs}</td><td><${Bar} value=${f.jobs} max=${maxFail} label=${f.reason} /></td></tr>`)}</tbody></table>`}
    </section>`;
}

// ---- devices

const COLUMNS = [
  ['endpoint', 'Endpoint'],
  ['manufacturer', 'Make'],
  ['model', 'Model'],
  ['os', 'OS'],
  ['firmware', 'Firmware'],
  ['lastSeen', 'Last seen'],
];
const PAGE = 50;

function Devices() {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState({ key: 'endpoint', dir: 'asc' });
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    const t = setTimeout(() => {
      setQuery(q);
      setOffset(0);
    }, 250);
    return () => clearTimeout(t);
  }, [q]);
  const { data, error, loading } = useLoad(() => api(`/api/v1/fleet/devices?${new URLSearchParams({ q: query, sort: sort.key, dir: sort.dir, limit: String(PAGE), offset: String(offset) })}`), [query, sort.key, sort.dir, offset]);
  const sortBy = (key) => {
    setSort((s) => ({ key, dir: s.key === key && s.dir === 'asc' ? 'desc' : 'asc' }));
    setOffset(0);
  };
  return html`<h2>Devices</h2>
    <div class="panel">
      <form class="inline" role="search" onSubmit=${(e) => e.preventDefault()}>
        <div><label for="device-search">Search (start of endpoint, make or model)</label><input id="device-search" type="search" value=${q} onInput=${(e) => setQ(e.target.value)} /></div>
      </form>
    </div>
    <${Problem} error=${error} />
    ${data && html`<div class="panel">
      <p aria-live="polite" data-testid="device-count">${data.total === 0 ? 'No devices' : `${offset + 1}–${offset + data.devices.length} of ${data.total} devices`}${loading ? ' (loading…)' : ''}</p>
      <table><thead><tr>${COLUMNS.map(([key, label]) => html`<th scope="col" aria-sort=${sort.key === key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}><button onClick=${() => sortBy(key)}>${label}${sort.key === key ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</button></th>`)}<th scope="col">State</th></tr></thead>
      <tbody>${data.devices.map((d) => html`<tr><td><a href=${`#/devices/${encodeURIComponent(d.endpoint)}`}>${d.endpoint}</a></td><td>${d.manufacturer ?? '—'}</td><td>${d.model ?? '—'}</td><td>${d.os ?? '—'}</td><td>${d.firmware ?? '—'}</td><td>${fmtTime(d.lastSeenAt)}</td><td>${d.state}</td></tr>`)}</tbody></table>
      <div class="pager"><button class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button><button class="secondary" disabled=${offset + PAGE >= data.total} onClick=${() => setOffset(offset + PAGE)}>Next page</button></div>
    </div>`}`;
}

function DeviceDetail({ me, endpoint }) {
  const device = useLoad(() => api(`/api/v1/devices/${encodeURIComponent(endpoint)}`), [endpoint]);
  const history = useCursorList(`/api/v1/devices/${encodeURIComponent(endpoint)}/installs?limit=100`, 'installs', [endpoint]);
  const codes = useResultCodes();
  const [software, setSoftware] = useState({ state: 'idle' });
  const packages = useLoad(() => (can(me, 'operator') ? api('/api/v1/packages?limit=1000') : Promise.resolve({ packages: [] })), [me.role]);
  const [started, setStarted] = useState(null);
  const readSoftware = async () => {
    setSoftware({ state: 'loading' });
    try {
      setSoftware({ state: 'done', data: await api(`/api/v1/devices/${encodeURIComponent(endpoint)}/software`) });
    } catch (error) {
      setSoftware({ state: 'error', error });
    }
  };
  const install = async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    try {
      const job = await api(`/api/v1/devices/${encodeURIComponent(endpoint)}/installs`, { method: 'POST', json: { package: form.get('package') } });
      setStarted({ ok: `Install job ${job.id} started (${job.state}).` });
      history.reload();
    } catch (error) {
      setStarted({ error });
    }
  };
  const d = device.data;
  return html`<p><a href="#/devices">← Devices</a></p><h2>Device <span class="mono">${endpoint}</span></h2>
    <${Problem} error=${device.error} />
    ${d && html`<section class="panel" aria-labelledby="facts"><h3 id="facts">Facts</h3><dl class="facts">
      <dt>Make</dt><dd>${d.facts?.manufacturer ?? '—'}</dd><dt>Model</dt><dd>${d.facts?.modelNumber ?? '—'}</dd>
      <dt>Serial</dt><dd>${d.facts?.serialNumber ?? '—'}</dd><dt>Firmware</dt><dd>${d.facts?.firmwareVersion ?? '—'}</dd>
      <dt>Software / OS</dt><dd>${d.facts?.osVersion ?? d.facts?.softwareVersion ?? '—'}</dd>
      <dt>Registration</dt><dd>${d.registration.state}, LwM2M ${d.registration.lwm2mVersion}, binding ${d.registration.binding}${d.registration.queueMode ? ', queue mode' : ''}, ${d.registration.secured ? 'DTLS' : 'plain CoAP'}</dd>
      <dt>Last update</dt><dd>${fmtTime(d.registration.lastUpdateAt)}</dd><dt>Address</dt><dd class="mono">${d.registration.address.scheme}://${d.registration.address.address}:${d.registration.address.port}</dd>
    </dl></section>`}
    <section class="panel" aria-labelledby="software"><h3 id="software">Installed software (Object 9)</h3>
      ${software.state === 'idle' && html`<button class="secondary" onClick=${readSoftware}>Read from the device</button>`}
      ${software.state === 'loading' && html`<${Loading} what="Object 9 from the device" />`}
      ${software.state === 'error' && html`<${Problem} error=${software.error} />`}
      ${software.state === 'done' && (software.data.instances.length === 0 ? html`<p class="muted">No Object 9 instances.</p>` : html`<table><thead><tr><th scope="col">Instance</th><th scope="col">Package</th><th scope="col">Version</th><th scope="col">State</th><th scope="col">Activated</th></tr></thead>
        <tbody>${software.data.instances.map((i) => html`<tr><td>/9/${i.instanceId}</td><td>${i.name ?? '—'}</td><td>${i.version ?? '—'}</td><td>${i.state ?? i.updateState ?? '—'}${i.result ? html` <span class="muted">(${i.result})</span>` : ''}</td><td>${i.activation === null ? '—' : i.activation ? 'yes' : 'no'}</td></tr>`)}</tbody></table>`)}
    </section>
    ${can(me, 'operator') && html`<section class="panel" aria-labelledby="install"><h3 id="install">Install a package</h3>
      <form class="inline" onSubmit=${install}>
        <div><label for="install-package">Package</label><select id="install-package" name="package" required>${(packages.data?.packages ?? []).map((p) => html`<option value=${p.sha256}>${p.name} ${p.version}</option>`)}</select></div>
        <button type="submit" data-testid="install-button">Install</button>
      </form>
      ${started?.ok && html`<p class="ok" role="status">${started.ok}</p>`}<${Problem} error=${started?.error} />
    </section>`}
    <${ChainHistory} address=${endpoint} />
    <section class="panel" aria-labelledby="history"><h3 id="history">Install history</h3>
      <${Problem} error=${history.error} />
      ${history.items && (history.items.length === 0 ? html`<p class="muted">No install jobs yet.</p>` : html`<table data-testid="history"><thead><tr><th scope="col">Created</th><th scope="col">Job</th><th scope="col">Method</th><th scope="col">State</th><th scope="col">Result</th><th scope="col">Message</th></tr></thead>
        <tbody>${history.items.map((j) => html`<tr><td>${fmtTime(j.createdAt)}</td><td class="mono"><a href=${`#/installs/${j.id}`}>${j.kind} ${j.id}</a></td><td>${j.method}</td><td class=${`state-${j.state}`}>${j.state}</td><td><${ResultCode} name=${j.result} codes=${codes} /></td><td>${j.message ?? ''}${j.retry ? html` <span class="muted">(${j.retry})</span>` : ''}</td></tr>`)}</tbody></table>`)}
      <${MoreButton} list=${history} what="jobs" />
    </section>`;
}

function InstallJob({ id }) {
  const { data, error } = useLoad(() => api(`/api/v1/installs/${encodeURIComponent(id)}`), [id]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<${Loading} what="the job" />`;
  return html`<p><a href=${`#/devices/${encodeURIComponent(data.endpoint)}`}>← ${data.endpoint}</a></p><h2>${data.kind} job <span class="mono">${data.id}</span></h2>
    <div class="panel"><dl class="facts"><dt>State</dt><dd class=${`state-${data.state}`}>${data.state} (${data.percent}%)</dd><dt>Method</dt><dd>${data.method} (chosen by ${data.methodChosenBy})</dd><dt>Result</dt><dd>${data.result ?? '—'}</dd><dt>Message</dt><dd>${data.message ?? '—'}</dd><dt>Attempts</dt><dd>${data.attempts}</dd></dl></div>
    <section class="panel" aria-labelledby="transitions"><h3 id="transitions">Transitions</h3><table><thead><tr><th scope="col">At</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Detail</th></tr></thead>
    <tbody>${data.transitions.map((t) => html`<tr><td>${fmtTime(t.at)}</td><td>${t.from ?? '—'}</td><td>${t.to}</td><td>${t.detail ?? ''}</td></tr>`)}</tbody></table></section>`;
}

// ---- packages

function Packages({ me }) {
  const list = useLoad(() => api('/api/v1/packages?limit=1000'), []);
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const file = e.target.elements.file.files[0];
    if (!file) return;
    setResult(null);
    setProgress({ loaded: 0, total: file.size });
    try {
      const added = await upload('/api/v1/packages', file, (loaded, total) => setProgress({ loaded, total }));
      setResult({ ok: `Added ${added.name} ${added.version} (${added.sha256.slice(0, 12)}…).` });
      list.reload();
    } catch (error) {
      setResult({ error });
    } finally {
      setProgress(null);
    }
  };
  return html`<h2>Packages</h2>
    ${can(me, 'operator') && html`<section class="panel" aria-labelledby="upload"><h3 id="upload">Upload a package</h3>
      <form class="inline" onSubmit=${submit}>
        <div><label for="package-file">Depot package file</label><input id="package-file" name="file" type="file" required /></div>
        <button type="submit" data-testid="upload-button" disabled=${progress !== null}>Upload</button>
      </form>
      ${progress && html`<p><label for="upload-progress">Uploading ${fmtBytes(progress.loaded)} of ${fmtBytes(progress.total)}</label><progress id="upload-progress" max=${progress.total} value=${progress.loaded}></progress></p>`}
      ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error} />
    </section>`}
    <section class="panel" aria-labelledby="catalog"><h3 id="catalog">Catalog</h3>
      <${Problem} error=${list.error} />
      ${list.data && (list.data.packages.length === 0 ? html`<p class="muted">No packages yet.</p>` : html`<table data-testid="packages"><thead><tr><th scope="col">Name</th><th scope="col">Version</th><th scope="col">Size</th><th scope="col">Signed by</th><th scope="col">SHA-256</th><th scope="col">Added</th></tr></thead>
      <tbody>${list.data.packages.map((p) => html`<tr><td><a href=${`#/packages/${p.sha256}`}>${p.name}</a></td><td>${p.version}</td><td>${fmtBytes(p.size)}</td><td>${p.keyId ?? '—'}</td><td class="mono">${p.sha256.slice(0, 16)}…</td><td>${fmtTime(p.addedAt)}</td></tr>`)}</tbody></table>`)}
    </section>`;
}

// ---- bootstrap queue

function Bootstrap({ me }) {
  const [state, setState] = useState('pending');
  const list = useLoad(() => api(`/api/v1/bootstrap?state=${state}&limit=200`), [state]);
  const [result, setResult] = useState(null);
  const decide = async (endpoint, action) => {
    try {
      await api(`/api/v1/bootstrap/${encodeURIComponent(endpoint)}/${action}`, { method: 'POST' });
      setResult({ ok: `${endpoint}: ${action}ed.` });
      list.reload();
    } catch (error) {
      setResult({ error });
    }
  };
  return html`<h2>Bootstrap queue</h2>
    <div class="panel"><form class="inline" onSubmit=${(e) => e.preventDefault()}><div><label for="bs-state">Show</label><select id="bs-state" value=${state} onChange=${(e) => setState(e.target.value)}><option value="pending">pending</option><option value="accepted">accepted</option><option value="rejected">rejected</option></select></div></form>
    ${list.data?.insecureBootstrap && html`<p class="error">Lab mode: bootstrap is also served over plain CoAP (DM keys in clear).</p>`}</div>
    ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error ?? list.error} />
    ${list.data && html`<div class="panel">${list.data.endpoints.length === 0 ? html`<p class="muted">No ${state} endpoints.</p>` : html`<table><thead><tr><th scope="col">Endpoint</th><th scope="col">State</th><th scope="col">Requests</th><th scope="col">Last request</th><th scope="col">From</th>${can(me, 'operator') && state === 'pending' && html`<th scope="col">Decision</th>`}</tr></thead>
      <tbody>${list.data.endpoints.map((b) => html`<tr><td class="mono">${b.endpoint}</td><td>${b.state}</td><td>${b.requestCount}</td><td>${fmtTime(new Date(b.lastSeenAt).toISOString())}</td><td class="mono">${b.lastPeerAddress ?? '—'}</td>${can(me, 'operator') && state === 'pending' && html`<td><button onClick=${() => decide(b.endpoint, 'accept')}>Accept</button> <button class="danger" onClick=${() => decide(b.endpoint, 'reject')}>Reject</button></td>`}</tr>`)}</tbody></table>`}</div>`}`;
}

// ---- users and tokens (admin)

function Users() {
  const users = useLoad(() => api('/api/v1/users'), []);
  const tokens = useLoad(() => api('/api/v1/tokens'), []);
  const [result, setResult] = useState(null);
  const act = async (fn, ok) => {
    try {
      const out = await fn();
      setResult({ ok: ok(out) });
      users.reload();
      tokens.reload();
    } catch (error) {
      setResult({ error });
    }
  };
  const addUser = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    void act(() => api('/api/v1/users', { method: 'POST', json: { username: f.get('username'), role: f.get('role'), password: f.get('password') } }), (u) => `User ${u.username} added (${u.role}).`);
  };
  const addToken = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    void act(() => api('/api/v1/tokens', { method: 'POST', json: { name: f.get('name'), role: f.get('role'), days: Number(f.get('days')) } }), (t) => `Token ${t.name} made; copy it now, it is not shown again: ${t.token}`);
  };
  return html`<h2>Users and API tokens</h2>
    ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error} />
    <section class="panel" aria-labelledby="users-h"><h3 id="users-h">Users</h3>
      ${users.data && html`<table><thead><tr><th scope="col">Username</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
      <tbody>${users.data.users.map((u) => html`<tr><td>${u.username}</td><td><label class="sr-only" for=${`role-${u.username}`}>Role of ${u.username}</label><select id=${`role-${u.username}`} value=${u.role} onChange=${(e) => act(() => api(`/api/v1/users/${encodeURIComponent(u.username)}/update`, { method: 'POST', json: { role: e.target.value } }), (x) => `${x.username} is now ${x.role}; their console sessions ended.`)}><option>viewer</option><option>operator</option><option>admin</option></select></td><td>${u.disabled ? 'disabled' : 'active'}</td><td>${fmtTime(u.createdAt)}</td><td>
        <button class="secondary" onClick=${() => act(() => api(`/api/v1/users/${encodeURIComponent(u.username)}/update`, { method: 'POST', json: { disabled: !u.disabled } }), () => `${u.username} ${u.disabled ? 'enabled' : 'disabled'}.`)}>${u.disabled ? 'Enable' : 'Disable'}</button>
        <button class="danger" onClick=${() => confirm(`Remove ${u.username}?`) && act(() => api(`/api/v1/users/${encodeURIComponent(u.username)}/remove`, { method: 'POST' }), () => `${u.username} removed.`)}>Remove</button></td></tr>`)}</tbody></table>`}
      <h4>Add a user</h4>
      <form class="inline" onSubmit=${addUser}>
        <div><label for="new-username">Username</label><input id="new-username" name="username" required /></div>
        <div><label for="new-role">Role</label><select id="new-role" name="role"><option>viewer</option><option>operator</option><option>admin</option></select></div>
        <div><label for="new-password">Password (10 characters or more)</label><input id="new-password" name="password" type="password" minLength="10" autocomplete="new-password" required /></div>
        <button type="submit">Add user</button>
      </form>
    </section>
    <section class="panel" aria-labelledby="tokens-h"><h3 id="tokens-h">API tokens</h3>
      ${tokens.data && html`<table><thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">User</th><th scope="col">State</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Actions</th></tr></thead>
      <tbody>${tokens.data.tokens.map((t) => html`<tr><td>${t.name}</td><td>${t.role}</td><td>${t.username ?? '—'}</td><td>${t.state}</td><td>${fmtTime(t.expiresAt)}</td><td>${fmtTime(t.lastUsedAt)}</td><td>${t.state === 'active' && html`<button class="danger" onClick=${() => act(() => api(`/api/v1/tokens/${t.id}/revoke`, { method: 'POST' }), () => `Token ${t.name} revoked.`)}>Revoke</button>`}</td></tr>`)}</tbody></table>`}
      <h4>Make a token</h4>
      <form class="inline" onSubmit=${addToken}>
        <div><label for="token-name">Name</label><input id="token-name" name="name" required /></div>
        <div><label for="token-role">Role</label><select id="token-role" name="role"><option>viewer</option><option>operator</option><option>admin</option></select></div>
        <div><label for="token-days">Valid for (days)</label><input id="token-days" name="days" type="number" min="1" max="3650" value="90" required /></div>
        <button type="submit">Make token</button>
      </form>
    </section>`;
}

function Audit() {
  const [before, setBefore] = useState(null);
  const { data, error } = useLoad(() => api(`/api/v1/audit?limit=100${before ? `&before=${before}` : ''}`), [before]);
  return html`<h2>Audit log</h2><${Problem} error=${error} />
    ${data && html`<div class="panel"><table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Role</th><th scope="col">What</th><th scope="col">On</th><th scope="col">Outcome</th><th scope="col">From</th></tr></thead>
    <tbody>${data.entries.map((e) => html`<tr><td>${fmtTime(e.at)}</td><td>${e.actor}</td><td>${e.role ?? '—'}</td><td class="mono">${e.action}</td><td class="mono">${e.target ?? ''}</td><td>${e.outcome}</td><td>${e.source ?? ''}</td></tr>`)}</tbody></table>
    <div class="pager">${before && html`<button class="secondary" onClick=${() => setBefore(null)}>Newest</button>`}${data.next && html`<button class="secondary" onClick=${() => setBefore(data.next)}>Older</button>`}</div></div>`}`;
}

// ---- app

function App() {
  const [me, setMe] = useState(undefined);
  const route = useRoute();
  useEffect(() => {
    whenSignedOut(() => setMe(null));
    api('/api/v1/session', { quiet: true }).then(
      (session) => {
        setCsrf(session.csrfToken ?? null);
        setMe(session);
      },
      () => setMe(null),
    );
  }, []);
  useEffect(() => {
    document.title = `Depot — ${PAGES.find(([p]) => (p === '/' ? route === '/' : route.startsWith(p)))?.[1] ?? 'console'}`;
  }, [route]);
  if (me === undefined) return html`<${Loading} what="the console" />`;
  if (me === null) return html`<${Login} onSignedIn=${(m) => setMe(m)} />`;
  const signOut = async () => {
    await api('/api/v1/logout', { method: 'POST' }).catch(() => undefined);
    setCsrf(null);
    setMe(null);
  };
  let page;
  const device = /^\/devices\/(.+)$/.exec(route);
  const job = /^\/installs\/(.+)$/.exec(route);
  const invDevice = /^\/inventory\/(.+)$/.exec(route);
  const campaign = /^\/campaigns\/(.+)$/.exec(route);
  const pkgPage = /^\/packages\/([0-9a-f]{64})$/.exec(route);
  if (pkgPage) page = html`<${PackageDetail} me=${me} sha256=${pkgPage[1]} />`;
  else if (invDevice) page = html`<${InventoryDevice} id=${decodeURIComponent(invDevice[1])} />`;
  else if (campaign) page = html`<${CampaignDetail} me=${me} id=${decodeURIComponent(campaign[1])} />`;
  else if (route === '/inventory') page = html`<${Inventory} />`;
  else if (route === '/campaigns') page = html`<${Campaigns} me=${me} />`;
  else if (route === '/methods') page = html`<${Methods} me=${me} />`;
  else if (route === '/sms') page = html`<${SmsAndDm} />`;
  else if (route === '/certificates') page = html`<${Certificates} me=${me} />`;
  else if (device) page = html`<${DeviceDetail} me=${me} endpoint=${decodeURIComponent(device[1])} />`;
  else if (job) page = html`<${InstallJob} id=${decodeURIComponent(job[1])} />`;
  else if (route === '/devices') page = html`<${Devices} />`;
  else if (route === '/packages') page = html`<${Packages} me=${me} />`;
  else if (route === '/bootstrap') page = html`<${Bootstrap} me=${me} />`;
  else if (route === '/users' && can(me, 'admin')) page = html`<${Users} />`;
  else if (route === '/audit' && can(me, 'admin')) page = html`<${Audit} />`;
  else page = html`<${Dashboard} />`;
  return html`<${Shell} me=${me} route=${route} onSignOut=${signOut}>${page}</${Shell}>`;
}

render(html`<${App} />`, document.getElementById('app'));
