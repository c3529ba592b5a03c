// Certificates (issue 17; docs/trust.md): Depot's root (fingerprint, download) and the fleet by
// trust — does each device hold the root, and what Depot last did about it (sent, pushed,
// confirmed, failed; when). Operators and admins send the root to one device or to the devices
// selected; viewers see no button (the API refuses them anyway).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, can, fmtTime, useLoad, Problem, Loading } from '../ui.js';

const STATES = ['', 'sent', 'pushed', 'confirmed', 'failed'];

export function Certificates({ me }) {
  const [state, setState] = useState('');
  const [selected, setSelected] = useState(new Set());
  const [outcome, setOutcome] = useState(null);
  const [busy, setBusy] = useState(false);
  const info = useLoad(() => api('/api/v1/certificates'), []);
  const list = useLoad(() => api(`/api/v1/certificates/devices?limit=200${state ? `&state=${state}` : ''}`), [state]);
  const operator = can(me, 'operator');
  const send = async (endpoints) => {
    setBusy(true);
    setOutcome(null);
    try {
      const out = await api('/api/v1/certificates/send', { method: 'POST', json: { endpoints } });
      setOutcome({ results: out.results });
      setSelected(new Set());
      list.reload();
      info.reload();
    } catch (error) {
      setOutcome({ error });
    } finally {
      setBusy(false);
    }
  };
  const toggle = (endpoint) => {
    const next = new Set(selected);
    if (next.has(endpoint)) next.delete(endpoint);
    else next.add(endpoint);
    setSelected(next);
  };
  const root = info.data?.root;
  return html`<h2>Certificates</h2>
    <section class="panel" aria-labelledby="root-h"><h3 id="root-h">Depot's root certificate</h3>
      ${info.error ? (info.error.status === 409 ? html`<p class="muted" data-testid="certificates-off">Depot has no CA on this server (depot ca init).</p>` : html`<${Problem} error=${info.error} />`) : !info.data ? html`<${Loading} what="the root" />` : html`
        <dl class="facts"><dt>SHA-256 fingerprint</dt><dd class="mono" data-testid="root-fingerprint">${root.fingerprint}</dd>
          <dt>Download</dt><dd><a href=${root.pem} download="depot-root.pem">PEM</a> · <a href=${root.der} download="depot-root.cer">DER (application/x-x509-ca-cert)</a></dd>
          <dt>Send certificate can use</dt><dd>${info.data.channels.length === 0 ? html`<span class="muted">nothing (SMS is off and LwM2M bootstrap does not use certificates)</span>` : info.data.channels.join(', ')}</dd>
          <dt>Pushes</dt><dd data-testid="push-counts">${Object.entries(info.data.pushes).map(([k, v]) => `${k} ${v}`).join(' · ')}</dd></dl>`}
    </section>
    <section class="panel" aria-labelledby="trust-h"><h3 id="trust-h">Devices by trust</h3>
      <form class="inline" onSubmit=${(e) => e.preventDefault()}><div><label for="trust-state">Last push</label>
        <select id="trust-state" value=${state} onChange=${(e) => setState(e.target.value)}>${STATES.map((s) => html`<option value=${s}>${s || 'any (all inventory devices)'}</option>`)}</select></div>
        ${operator && html`<button type="button" disabled=${busy || selected.size === 0} onClick=${() => send([...selected])} data-testid="send-selected">Send certificate to ${selected.size} selected</button>`}
      </form>
      ${outcome?.error && html`<${Problem} error=${outcome.error} />`}
      ${outcome?.results && html`<ul class="plain" role="status" data-testid="send-results">${outcome.results.map((r) => html`<li><span class="mono">${r.endpoint}</span>: ${r.outcome}${r.message ? ` — ${r.message}` : ''}</li>`)}</ul>`}
      ${list.error ? html`<${Problem} error=${list.error} />` : !list.data ? html`<${Loading} what="devices" />` : list.data.devices.length === 0 ? html`<p class="muted">No devices.</p>` : html`
        <table data-testid="trust-devices"><thead><tr>${operator && html`<th scope="col"><span class="sr-only">Select</span></th>`}<th scope="col">Device</th><th scope="col">Make / model</th><th scope="col">Holds the root</th><th scope="col">Last push</th><th scope="col">Channel</th><th scope="col">Sent</th><th scope="col">Taken</th><th scope="col">Confirmed</th><th scope="col">Detail</th>${operator && html`<th scope="col">Action</th>`}</tr></thead>
        <tbody>${list.data.devices.map((d) => html`<tr>
          ${operator && html`<td>${d.endpoint && html`<input type="checkbox" aria-label=${`select ${d.endpoint}`} checked=${selected.has(d.endpoint)} onChange=${() => toggle(d.endpoint)} />`}</td>`}
          <td class="mono">${d.endpoint ?? d.msisdn ?? d.id}</td><td>${[d.make, d.model].filter(Boolean).join(' ') || '—'}</td><td>${d.trustState}</td>
          <td>${d.push ? d.push.state + (d.push.currentRoot ? '' : ' (older root)') : 'unknown'}</td><td>${d.push?.channel ?? '—'}</td>
          <td>${fmtTime(d.push?.sentAt)}</td><td>${fmtTime(d.push?.pushedAt)}</td><td>${fmtTime(d.push?.confirmedAt)}</td><td>${d.push?.detail ?? ''}</td>
          ${operator && html`<td>${d.endpoint && html`<button class="secondary" disabled=${busy} onClick=${() => send([d.endpoint])}>Send certificate</button>`}</td>`}
        </tr>`)}</tbody></table>
        ${list.data.next && html`<p class="muted">More devices: narrow by last push.</p>`}`}
    </section>`;
}
