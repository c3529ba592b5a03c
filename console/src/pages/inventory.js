// Inventory: every device Depot knows, over both protocols (LwM2M and OMA DM), one record per
// device. Filters and paging are the server's (GET /api/v1/inventory/devices with its `next`
// cursor), so the page stays fast however big the fleet. The device page shows identities,
// protocols with last contact, software, the record's history, "explain selection" and the
// install chain history (every attempt with its method, outcome, result and reason).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, fmtTime, useLoad, useCursorList, useResultCodes, Problem, Loading, ResultCode, MoreButton } from '../ui.js';

const PAGE = 50;
const FILTERS = [
  ['make', 'Make'],
  ['model', 'Model'],
  ['os', 'OS'],
  ['group', 'Group'],
];

/** The address install chains know a device by (docs/campaigns.md, "Jobs"). */
export function jobAddress(d) {
  if (d.identities.lwm2mEndpoint) return d.identities.lwm2mEndpoint;
  if (d.identities.omadmDevId) return `omadm:${d.identities.omadmDevId}`;
  return `device:${d.id}`;
}

export function deviceName(d) {
  return d.identities.lwm2mEndpoint ?? (d.identities.omadmDevId ? `DM ${d.identities.omadmDevId}` : d.identities.msisdn ?? d.identities.imei ?? d.id);
}

export function Inventory() {
  const [form, setForm] = useState({ make: '', model: '', os: '', group: '', protocol: '' });
  const [filter, setFilter] = useState(form);
  // Cursors of the pages seen so far: [undefined, next of page 1, next of page 2, …].
  const [cursors, setCursors] = useState([undefined]);
  const [pageNo, setPageNo] = useState(0);
  useEffect(() => {
    const t = setTimeout(() => {
      setFilter(form);
      setCursors([undefined]);
      setPageNo(0);
    }, 250);
    return () => clearTimeout(t);
  }, [form.make, form.model, form.os, form.group, form.protocol]);
  const after = cursors[pageNo];
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of Object.entries(filter)) if (v.trim()) params.set(k, v.trim());
  if (after) params.set('after', after);
  const { data, error, loading } = useLoad(() => api(`/api/v1/inventory/devices?${params}`), [params.toString()]);
  const next = () => {
    if (!data?.next) return;
    setCursors((c) => [...c.slice(0, pageNo + 1), data.next]);
    setPageNo(pageNo + 1);
  };
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  return html`<h2>Inventory</h2>
    <div class="panel">
      <form class="inline" role="search" aria-label="Filter the inventory" onSubmit=${(e) => e.preventDefault()}>
        ${FILTERS.map(([key, label]) => html`<div><label for=${`inv-${key}`}>${label}</label><input id=${`inv-${key}`} class="short" value=${form[key]} onInput=${set(key)} /></div>`)}
        <div><label for="inv-protocol">Protocol</label><select id="inv-protocol" class="short" value=${form.protocol} onChange=${set('protocol')}><option value="">any</option><option value="lwm2m">LwM2M</option><option value="omadm">OMA DM</option></select></div>
      </form>
      <p class="muted">Make, model and OS match exactly (case does not matter); filters combine.</p>
    </div>
    <${Problem} error=${error} />
    ${data && html`<div class="panel">
      <p aria-live="polite" data-testid="inventory-count">${data.devices.length === 0 ? 'No devices match.' : `Page ${pageNo + 1}: devices ${pageNo * PAGE + 1}–${pageNo * PAGE + data.devices.length}${data.next ? ', more on the next page' : ''}`}${loading ? ' (loading…)' : ''}</p>
      <table data-testid="inventory"><thead><tr><th scope="col">Device</th><th scope="col">Make</th><th scope="col">Model</th><th scope="col">OS</th><th scope="col">Protocols</th><th scope="col">Last contact</th><th scope="col">Groups</th></tr></thead>
      <tbody>${data.devices.map((d) => html`<tr><td><a href=${`#/inventory/${encodeURIComponent(d.id)}`}>${deviceName(d)}</a></td><td>${d.make ?? d.expected.make ?? '—'}</td><td>${d.model ?? d.expected.model ?? '—'}</td><td>${[d.os, d.osVersion].filter(Boolean).join(' ') || '—'}</td><td>${d.protocols.map((p) => (p === 'lwm2m' ? 'LwM2M' : p === 'omadm' ? 'OMA DM' : p)).join(', ') || '—'}</td><td>${fmtTime(Object.values(d.lastContact).filter(Boolean).sort().at(-1))}</td><td>${d.groups.join(', ') || '—'}</td></tr>`)}</tbody></table>
      <div class="pager"><button class="secondary" disabled=${pageNo === 0} onClick=${() => setPageNo(pageNo - 1)}>Previous page</button><button class="secondary" disabled=${!data.next} onClick=${next}>Next page</button></div>
    </div>`}`;
}

function Selection({ id }) {
  const [name, setName] = useState('');
  const [state, setState] = useState(null);
  const explain = async (e) => {
    e.preventDefault();
    setState({ loading: true });
    try {
      setState({ data: await api(`/api/v1/inventory/devices/${encodeURIComponent(id)}/selection${name.trim() ? `?name=${encodeURIComponent(name.trim())}` : ''}`) });
    } catch (error) {
      setState({ error });
    }
  };
  const d = state?.data;
  return html`<section class="panel" aria-labelledby="selection-h"><h3 id="selection-h">Explain selection</h3>
    <form class="inline" onSubmit=${explain}>
      <div><label for="sel-name">Package name (empty: every package)</label><input id="sel-name" value=${name} onInput=${(e) => setName(e.target.value)} /></div>
      <button type="submit">Explain selection</button>
    </form>
    ${state?.loading && html`<${Loading} what="the explanation" />`}<${Problem} error=${state?.error} />
    ${d && html`<div data-testid="selection"><p role="status"><strong>${d.chosen ? `Would get ${d.chosen.name} ${d.chosen.version}` : 'Would get no package'}</strong>: ${d.reason}</p>
      <p class="muted">Facts used: make ${d.facts.make ?? 'unknown'}, model ${d.facts.model ?? 'unknown'}, OS ${[d.facts.os, d.facts.osVersion].filter(Boolean).join(' ') || 'unknown'}.</p>
      ${d.packages.length > 0 && html`<table><thead><tr><th scope="col">Package</th><th scope="col">Priority</th><th scope="col">Fits</th><th scope="col">Rules</th></tr></thead>
        <tbody>${d.packages.map((p) => html`<tr><td>${p.name} ${p.version}</td><td>${p.priority}</td><td class=${p.fits ? 'ok' : 'error'}>${p.fits ? 'yes' : 'no'}</td><td><ul class="plain">${p.rules.map((r) => html`<li><span class=${r.ok ? 'ok' : 'error'}>${r.ok ? '✓' : '✗'}</span> ${r.rule}: ${r.detail}</li>`)}</ul></td></tr>`)}</tbody></table>`}</div>`}
  </section>`;
}

/** The install chain jobs of a device, each with every attempt. */
export function ChainHistory({ address }) {
  const list = useCursorList(`/api/v1/devices/${encodeURIComponent(address)}/install-chains?limit=50`, 'jobs', [address]);
  const { error } = list;
  const data = list.items && { jobs: list.items };
  const codes = useResultCodes();
  return html`<section class="panel" aria-labelledby="chains-h"><h3 id="chains-h">Install chain history</h3>
    <${Problem} error=${error} />
    ${data && (data.jobs.length === 0 ? html`<p class="muted">No install chain jobs yet.</p>` : html`<table data-testid="chain-history"><thead><tr><th scope="col">Job</th><th scope="col">Attempt</th><th scope="col">Method</th><th scope="col">Outcome</th><th scope="col">Result</th><th scope="col">Reason / message</th><th scope="col">Started</th></tr></thead>
      <tbody>${data.jobs.map((j) => [
        html`<tr class="group-row"><th scope="rowgroup" colspan="7"><span class="mono">${j.id.slice(0, 12)}</span> package <span class="mono">${j.package.slice(0, 12)}…</span>: <span class=${`state-${j.state}`}>${j.state}</span> <span class="muted">(order ${j.chosenBy}: ${j.methods.join(' → ')}; ${fmtTime(j.createdAt)})</span>${j.message ? html`<br /><span class="muted">${j.message}</span>` : ''}</th></tr>`,
        ...(j.attempts.length === 0 ? [html`<tr><td></td><td colspan="6" class="muted">No attempt yet${j.plan.note ? `: ${j.plan.note}` : ''}</td></tr>`] : j.attempts.map((a) => html`<tr><td></td><td>${a.seq}</td><td>${a.method}</td><td class=${`state-${a.outcome}`}>${a.outcome}</td><td><${ResultCode} name=${a.result} codes=${codes} /></td><td>${a.message ?? ''}</td><td>${fmtTime(a.startedAt)}</td></tr>`)),
      ])}</tbody></table>`)}
    <${MoreButton} list=${list} what="install chain jobs" />
  </section>`;
}

export function InventoryDevice({ id }) {
  const device = useLoad(() => api(`/api/v1/inventory/devices/${encodeURIComponent(id)}`), [id]);
  const history = useLoad(() => api(`/api/v1/inventory/devices/${encodeURIComponent(id)}/history?limit=100`), [id]);
  const d = device.data;
  if (device.error) return html`<p><a href="#/inventory">← Inventory</a></p><${Problem} error=${device.error} />`;
  if (!d) return html`<${Loading} what="the device" />`;
  const ids = [
    ['LwM2M endpoint', d.identities.lwm2mEndpoint],
    ['OMA DM DevId', d.identities.omadmDevId],
    ['IMEI', d.identities.imei],
    ['Phone number', d.identities.msisdn],
    ['Depot id', d.id],
  ];
  return html`<p><a href="#/inventory">← Inventory</a></p><h2>Device <span class="mono">${deviceName(d)}</span></h2>
    <div class="columns">
    <section class="panel" aria-labelledby="ids-h"><h3 id="ids-h">Identities</h3><dl class="facts">
      ${ids.map(([k, v]) => html`<dt>${k}</dt><dd class="mono">${v ?? '—'}</dd>`)}
      <dt>Make</dt><dd>${d.make ?? '—'}${d.expected.make && d.expected.make !== d.make ? html` <span class="muted">(expected ${d.expected.make})</span>` : ''}</dd>
      <dt>Model</dt><dd>${d.model ?? '—'}${d.expected.model && d.expected.model !== d.model ? html` <span class="muted">(expected ${d.expected.model})</span>` : ''}</dd>
      <dt>OS</dt><dd>${[d.os, d.osVersion].filter(Boolean).join(' ') || '—'}</dd><dt>Firmware</dt><dd>${d.firmware ?? '—'}</dd>
      <dt>Bootstrap</dt><dd>${d.bootstrapState}</dd><dt>Trusts Depot's root</dt><dd>${d.trustState}</dd>
      <dt>Time zone</dt><dd>${d.timeZone ?? 'unknown (UTC)'}</dd><dt>Tags</dt><dd>${d.tags.join(', ') || '—'}</dd><dt>Groups</dt><dd>${d.groups.join(', ') || '—'}</dd>
      <dt>Known since</dt><dd>${fmtTime(d.createdAt)} <span class="muted">(${d.source})</span></dd>
    </dl>${d.identities.lwm2mEndpoint && html`<p><a href=${`#/devices/${encodeURIComponent(d.identities.lwm2mEndpoint)}`}>LwM2M registration, Object 9 and direct installs →</a></p>`}</section>
    <section class="panel" aria-labelledby="proto-h"><h3 id="proto-h">Protocols</h3>
      ${d.protocols.length === 0 ? html`<p class="muted">Never in contact (imported).</p>` : html`<table data-testid="protocols"><thead><tr><th scope="col">Protocol</th><th scope="col">Last contact</th></tr></thead><tbody>${d.protocols.map((p) => html`<tr><td>${p === 'lwm2m' ? 'LwM2M' : p === 'omadm' ? 'OMA DM' : p}</td><td>${fmtTime(d.lastContact[p])}</td></tr>`)}</tbody></table>`}
      <h3>Installed software</h3>
      ${d.software.length === 0 ? html`<p class="muted">None reported.</p>` : html`<table data-testid="software"><thead><tr><th scope="col">Name</th><th scope="col">Version</th><th scope="col">Reported by</th></tr></thead><tbody>${d.software.map((s) => html`<tr><td>${s.name ?? '—'}</td><td>${s.version ?? '—'}</td><td class="mono">${s.source ?? ''}</td></tr>`)}</tbody></table>`}
    </section>
    </div>
    <${Selection} id=${d.id} />
    <${ChainHistory} address=${jobAddress(d)} />
    <section class="panel" aria-labelledby="rec-h"><h3 id="rec-h">Record history</h3>
      <${Problem} error=${history.error} />
      ${history.data && html`<table data-testid="record-history"><thead><tr><th scope="col">When</th><th scope="col">By</th><th scope="col">Changes</th></tr></thead>
        <tbody>${history.data.history.map((e) => html`<tr><td>${fmtTime(e.at)}</td><td>${e.source}</td><td><ul class="plain">${Object.entries(e.changes).map(([k, v]) => html`<li><strong>${k}</strong>: ${Array.isArray(v) && v.length === 2 ? `${JSON.stringify(v[0])} → ${JSON.stringify(v[1])}` : JSON.stringify(v)}</li>`)}</ul></td></tr>`)}</tbody></table>`}
    </section>`;
}
