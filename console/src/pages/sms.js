// SMS outbox and OMA DM bootstraps by phone number (read-only). Either API exists only when the
// server runs that part (SMS configured; the OMA DM endpoint): a 404 says it is not enabled.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, fmtTime, useLoad, Problem } from '../ui.js';

const notEnabled = (error, what) => (error?.status === 404 ? html`<p class="muted" data-testid=${`${what}-off`}>Not enabled on this server.</p>` : html`<${Problem} error=${error} />`);

export function SmsAndDm() {
  const [state, setState] = useState('');
  const outbox = useLoad(() => api(`/api/v1/sms/outbox?limit=100${state ? `&state=${state}` : ''}`), [state]);
  const dm = useLoad(() => api('/api/v1/omadm/bootstrap?limit=100'), []);
  const g = outbox.data?.gateway;
  return html`<h2>SMS and OMA DM bootstrap</h2>
    <section class="panel" aria-labelledby="sms-h"><h3 id="sms-h">SMS outbox</h3>
      ${outbox.error ? notEnabled(outbox.error, 'sms') : outbox.data && html`
        <p>Gateway: ${g.configured ? g.description : 'not configured'}${g.lastError ? html` — <span class="error">last error ${fmtTime(g.lastErrorAt)}: ${g.lastError}</span>` : ''}${g.pausedUntil ? ` (paused until ${fmtTime(g.pausedUntil)})` : ''}</p>
        <form class="inline" onSubmit=${(e) => e.preventDefault()}><div><label for="sms-state">State</label><input id="sms-state" class="short" value=${state} onChange=${(e) => setState(e.target.value.trim())} aria-describedby="sms-state-help" /></div><span id="sms-state-help" class="muted">e.g. queued, sent, delivered, failed (empty: all)</span></form>
        ${outbox.data.messages.length === 0 ? html`<p class="muted">No messages.</p>` : html`<table data-testid="sms-outbox"><thead><tr><th scope="col">To</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Parts</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Expires</th></tr></thead>
        <tbody>${outbox.data.messages.map((m) => html`<tr><td class="mono">${m.to}</td><td>${m.kind}</td><td>${m.state}</td><td>${m.parts}</td><td>${m.attempts}</td><td>${m.lastError ?? '—'}</td><td>${fmtTime(m.expiresAt)}</td></tr>`)}</tbody></table>`}`}
    </section>
    <section class="panel" aria-labelledby="dmb-h"><h3 id="dmb-h">OMA DM bootstraps by phone number</h3>
      ${dm.error ? notEnabled(dm.error, 'omadm') : dm.data && (dm.data.bootstraps.length === 0 ? html`<p class="muted">No OMA DM bootstraps.</p>` : html`<table data-testid="omadm-bootstraps"><thead><tr><th scope="col">Phone number</th><th scope="col">DevId</th><th scope="col">Model</th><th scope="col">Group</th><th scope="col">State</th><th scope="col">Security</th><th scope="col">Sends</th><th scope="col">Message</th><th scope="col">Updated</th></tr></thead>
        <tbody>${dm.data.bootstraps.map((b) => html`<tr><td class="mono">${b.msisdn}</td><td class="mono">${b.deviceId ?? '—'}</td><td>${b.model ?? '—'}</td><td>${b.group ?? '—'}</td><td>${b.state}</td><td>${b.security ?? '—'}</td><td>${b.sends}</td><td>${b.message ?? ''}</td><td>${fmtTime(b.updatedAt)}</td></tr>`)}</tbody></table>`)}
    </section>`;
}
