// Campaigns: the list, a form to start one (group or filter, one package or selection per
// device, waves, approval), and a campaign's page with live progress from the server-sent
// events of /api/v1/campaigns/:id/events (per wave, per model, per method), an inline SVG chart
// and the actions the signed-in role may take (the API decides; the buttons only mirror it).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, can, fmtTime, useLoad, Problem, Loading } from '../ui.js';

const ENDED = new Set(['completed', 'cancelled']);
const MEMBERS_PAGE = 100;
const MEMBER_STATES = ['pending', 'no-package', 'starting', 'started', 'succeeded', 'failed', 'cancelled'];
const COLORS = { succeeded: '#1a6b2f', failed: '#a4161a', running: '#0b5cad', pending: '#8792a2', other: '#c9ced6' };

function stateLabel(c) {
  if (c.state === 'paused' && c.pauseReason) return `paused: ${c.pauseReason}`;
  return c.state;
}

export function Campaigns({ me }) {
  const list = useLoad(() => api('/api/v1/campaigns?limit=100'), []);
  return html`<h2>Campaigns</h2>
    ${can(me, 'operator') && html`<${CreateCampaign} />`}
    <section class="panel" aria-labelledby="cmp-list-h"><h3 id="cmp-list-h">All campaigns</h3>
      <${Problem} error=${list.error} />
      ${list.data && (list.data.campaigns.length === 0 ? html`<p class="muted">No campaigns yet.</p>` : html`<table data-testid="campaigns"><thead><tr><th scope="col">Name</th><th scope="col">State</th><th scope="col">Wave</th><th scope="col">Target</th><th scope="col">Package</th><th scope="col">Created</th><th scope="col">Finished</th></tr></thead>
        <tbody>${list.data.campaigns.map((c) => html`<tr><td><a href=${`#/campaigns/${encodeURIComponent(c.id)}`}>${c.name}</a></td><td class=${`state-${c.state}`}>${stateLabel(c)}</td><td>${c.currentWave} of ${c.spec.waves?.length ?? 1}</td><td>${targetText(c.spec.target)}</td><td>${packageText(c.spec.package)}</td><td>${fmtTime(c.createdAt)}</td><td>${fmtTime(c.finishedAt)}</td></tr>`)}</tbody></table>`)}
    </section>`;
}

function targetText(t) {
  if (t.kind === 'group') return `group ${t.group}`;
  if (t.kind === 'list') return `${t.devices.length} listed devices`;
  const f = Object.entries(t.filter ?? {}).map(([k, v]) => `${k} ${v}`);
  return f.length ? f.join(', ') : 'every device';
}

function packageText(p) {
  if (p.kind === 'fixed') return html`<span class="mono">${p.sha256.slice(0, 12)}…</span>`;
  return `selected per device${p.name ? ` (${p.name})` : ''}`;
}

/** "1, 10, 50, 100" → [{ percent: 1 }, …]; an error message when it is not a rising list ending at 100. */
export function parseWaves(text) {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) return { waves: [{ percent: 100 }] };
  const numbers = parts.map(Number);
  if (numbers.some((n) => !Number.isFinite(n) || n <= 0 || n > 100)) return { error: 'Waves are percentages above 0 and at most 100, separated by commas.' };
  for (let i = 1; i < numbers.length; i++) if (numbers[i] <= numbers[i - 1]) return { error: 'Wave percentages are cumulative: each is larger than the one before.' };
  if (numbers.at(-1) !== 100) return { error: 'The last wave is 100 (every device).' };
  return { waves: numbers.map((percent) => ({ percent })) };
}

/** The optional rules of the form as campaign spec fields; an error message when one is out of range. */
export function rulesOf(f) {
  const spec = {};
  const num = (key) => {
    const v = String(f.get(key) ?? '').trim();
    return v === '' ? undefined : Number(v);
  };
  for (const key of ['successThreshold', 'failureLimit', 'modelFailureLimit']) {
    const v = num(key);
    if (v === undefined) continue;
    if (!(v >= 0 && v <= 100)) return { error: 'Percentages are between 0 and 100.' };
    spec[key] = v / 100;
  }
  for (const key of ['minSamples', 'concurrency']) {
    const v = num(key);
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) return { error: `${key === 'concurrency' ? 'At most at once' : 'Results before judging'} is a whole number of 1 or more.` };
    spec[key] = v;
  }
  const order = String(f.get('order') ?? '');
  if (order) spec.order = order;
  const start = String(f.get('windowStart') ?? '');
  const end = String(f.get('windowEnd') ?? '');
  if ((start === '') !== (end === '')) return { error: 'A maintenance window has a start and an end.' };
  if (start) spec.window = { start: start.slice(0, 5), end: end.slice(0, 5), ...(f.get('windowDeviceTime') === 'on' ? { deviceTime: true } : {}) };
  spec.activate = f.get('activate') === 'on';
  return { spec };
}

function CreateCampaign() {
  const packages = useLoad(() => api('/api/v1/packages?limit=1000'), []);
  const [kind, setKind] = useState('filter');
  const [pkg, setPkg] = useState('');
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const waves = parseWaves(String(f.get('waves') ?? ''));
    if (waves.error) return setResult({ error: new Error(waves.error) });
    const devices = String(f.get('devices') ?? '').split(/[\s,]+/).filter(Boolean);
    if (kind === 'list' && devices.length === 0) return setResult({ error: new Error('List at least one device id (one per line).') });
    const target = kind === 'group' ? { kind: 'group', group: String(f.get('group')).trim() } : kind === 'list' ? { kind: 'list', devices } : { kind: 'filter', filter: Object.fromEntries(['make', 'model', 'os', 'protocol', 'fgroup'].map((k) => [k === 'fgroup' ? 'group' : k, String(f.get(k) ?? '').trim()]).filter(([, v]) => v)) };
    const choice = String(f.get('package'));
    const name = String(f.get('select-name') ?? '').trim();
    const pack = choice === 'select' ? { kind: 'select', ...(name ? { name } : {}) } : { kind: 'fixed', sha256: choice };
    const rules = rulesOf(f);
    if (rules.error) return setResult({ error: new Error(rules.error) });
    setBusy(true);
    setResult(null);
    try {
      const c = await api('/api/v1/campaigns', { method: 'POST', json: { name: String(f.get('name')).trim(), target, package: pack, waves: waves.waves, approval: f.get('approval') === 'on', ...rules.spec } });
      location.hash = `#/campaigns/${encodeURIComponent(c.id)}`;
    } catch (error) {
      setResult({ error });
    } finally {
      setBusy(false);
    }
  };
  const list = packages.data?.packages ?? [];
  const choice = pkg || (list[0]?.sha256 ?? 'select');
  return html`<section class="panel" aria-labelledby="cmp-new-h"><h3 id="cmp-new-h">Start a campaign</h3>
    <form onSubmit=${submit} data-testid="campaign-form">
      <div class="inline-fields">
        <div><label for="cmp-name">Name</label><input id="cmp-name" name="name" required maxLength="200" /></div>
        <div><label for="cmp-target">Devices</label><select id="cmp-target" value=${kind} onChange=${(e) => setKind(e.target.value)}><option value="filter">by filter (empty: every device)</option><option value="group">a group</option><option value="list">listed devices</option></select></div>
      </div>
      ${kind === 'group'
        ? html`<div><label for="cmp-group">Group</label><input id="cmp-group" name="group" required maxLength="64" /></div>`
        : kind === 'list'
        ? html`<div><label for="cmp-devices">Device ids (Depot ids from the inventory, one per line)</label><textarea id="cmp-devices" name="devices" rows="4" cols="60" required></textarea></div>`
        : html`<fieldset><legend>Filter (all that are given must match)</legend><div class="inline-fields">
            <div><label for="cmp-make">Make</label><input id="cmp-make" name="make" class="short" /></div>
            <div><label for="cmp-model">Model</label><input id="cmp-model" name="model" class="short" /></div>
            <div><label for="cmp-os">OS</label><input id="cmp-os" name="os" class="short" /></div>
            <div><label for="cmp-fgroup">In group</label><input id="cmp-fgroup" name="fgroup" class="short" /></div>
            <div><label for="cmp-protocol">Protocol</label><select id="cmp-protocol" name="protocol" class="short"><option value="">any</option><option value="lwm2m">LwM2M</option><option value="omadm">OMA DM</option></select></div>
          </div></fieldset>`}
      <div class="inline-fields">
        <div><label for="cmp-package">Package</label><select id="cmp-package" name="package" value=${choice} onChange=${(e) => setPkg(e.target.value)}>${list.map((p) => html`<option value=${p.sha256}>${p.name} ${p.version}</option>`)}<option value="select">Select per device (best fit from the catalog)</option></select></div>
        ${choice === 'select' && html`<div><label for="cmp-select-name">Only packages named (optional)</label><input id="cmp-select-name" name="select-name" /></div>`}
        <div><label for="cmp-waves">Waves (cumulative %, e.g. 10, 50, 100)</label><input id="cmp-waves" name="waves" value="100" aria-describedby="cmp-waves-help" /></div>
      </div>
      <p id="cmp-waves-help" class="muted">Each wave starts when the one before it has succeeded well enough (90 % by default); too many failures pause the campaign, or one model alone.</p>
      <fieldset><legend>Rollout rules (empty: Depot's defaults)</legend><div class="inline-fields">
        <div><label for="cmp-success">Next wave at success (%)</label><input id="cmp-success" name="successThreshold" type="number" min="0" max="100" placeholder="90" class="short" /></div>
        <div><label for="cmp-failure">Pause past failures (%)</label><input id="cmp-failure" name="failureLimit" type="number" min="0" max="100" placeholder="20" class="short" /></div>
        <div><label for="cmp-model-failure">Pause one model past failures (%)</label><input id="cmp-model-failure" name="modelFailureLimit" type="number" min="0" max="100" placeholder="50" class="short" /></div>
        <div><label for="cmp-samples">Results before judging</label><input id="cmp-samples" name="minSamples" type="number" min="1" placeholder="3" class="short" /></div>
        <div><label for="cmp-concurrency">At most at once</label><input id="cmp-concurrency" name="concurrency" type="number" min="1" max="100000" placeholder="100" class="short" /></div>
        <div><label for="cmp-order">Wave order</label><select id="cmp-order" name="order" class="short"><option value="">default: spread over models</option><option value="random">random (seeded)</option></select></div>
      </div></fieldset>
      <fieldset><legend>Maintenance window (optional: installs start only inside it)</legend><div class="inline-fields">
        <div><label for="cmp-window-start">From (HH:MM)</label><input id="cmp-window-start" name="windowStart" type="time" class="short" /></div>
        <div><label for="cmp-window-end">To (HH:MM)</label><input id="cmp-window-end" name="windowEnd" type="time" class="short" /></div>
        <div><input type="checkbox" id="cmp-window-device" name="windowDeviceTime" class="check" /> <label for="cmp-window-device" class="inline-label">in each device's time zone (else UTC)</label></div>
      </div></fieldset>
      <p><input type="checkbox" id="cmp-approval" name="approval" class="check" /> <label for="cmp-approval" class="inline-label">Wait for my approval before each wave after the first</label></p>
      <p><input type="checkbox" id="cmp-activate" name="activate" class="check" /> <label for="cmp-activate" class="inline-label">Activate the software once installed</label></p>
      <p><button type="submit" disabled=${busy} data-testid="create-campaign">Start campaign</button></p>
      <${Problem} error=${result?.error ?? packages.error} />
    </form>
  </section>`;
}

/** Live progress: the first answer of GET, then every "progress" event until the campaign ends. */
function useLiveProgress(id) {
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(false);
  const samples = useRef([]);
  const [, setTick] = useState(0);
  const take = (p) => {
    const t = p.totals;
    const s = samples.current;
    const last = s.at(-1);
    if (!last || last.succeeded !== t.succeeded || last.failed !== t.failed || last.done !== t.succeeded + t.failed + t.cancelled + t['no-package']) {
      const at = Math.max(last?.at ?? 0, p.campaign.finishedAt ? Date.parse(p.campaign.finishedAt) : Date.now());
      s.push({ at, succeeded: t.succeeded, failed: t.failed, done: t.succeeded + t.failed + t.cancelled + t['no-package'] });
    }
    setProgress(p);
    setTick((n) => n + 1);
  };
  useEffect(() => {
    samples.current = [];
    setProgress(null);
    setError(null);
    let source = null;
    let closed = false;
    api(`/api/v1/campaigns/${encodeURIComponent(id)}`).then(
      async (p) => {
        if (closed) return;
        // The server keeps the totals over time (also for a campaign nobody watched): start from them.
        const history = await api(`/api/v1/campaigns/${encodeURIComponent(id)}/history`).catch(() => null);
        if (closed) return;
        samples.current.push({ at: Date.parse(p.campaign.createdAt), succeeded: 0, failed: 0, done: 0 });
        for (const h of history?.samples ?? []) {
          const at = Date.parse(h.at);
          if (at >= samples.current.at(-1).at) samples.current.push({ at, succeeded: h.succeeded, failed: h.failed, done: h.ended });
        }
        take(p);
        if (ENDED.has(p.campaign.state)) return;
        source = new EventSource(`/api/v1/campaigns/${encodeURIComponent(id)}/events`);
        source.addEventListener('open', () => setLive(true));
        source.addEventListener('progress', (e) => {
          const next = JSON.parse(e.data);
          take(next);
          if (ENDED.has(next.campaign.state)) {
            source.close();
            setLive(false);
          }
        });
        source.addEventListener('error', () => setLive(false));
      },
      (e) => setError(e),
    );
    return () => {
      closed = true;
      source?.close();
    };
  }, [id]);
  const refresh = () => api(`/api/v1/campaigns/${encodeURIComponent(id)}`).then(take, setError);
  return { progress, error, live, samples: samples.current, refresh };
}

/** Succeeded and failed devices over time, from the samples seen (inline SVG, no library). */
function ProgressChart({ samples, total, end }) {
  const W = 560;
  const H = 160;
  const P = { l: 40, r: 12, t: 10, b: 26 };
  if (samples.length === 0 || total === 0) return null;
  const t0 = samples[0].at;
  const t1 = Math.max(end ?? samples.at(-1).at, t0 + 1000);
  const x = (t) => P.l + ((t - t0) / (t1 - t0)) * (W - P.l - P.r);
  const y = (n) => H - P.b - (n / total) * (H - P.t - P.b);
  const step = (key) => {
    let d = `M${x(samples[0].at).toFixed(1)},${y(samples[0][key]).toFixed(1)}`;
    for (let i = 1; i < samples.length; i++) d += ` H${x(samples[i].at).toFixed(1)} V${y(samples[i][key]).toFixed(1)}`;
    return `${d} H${x(t1).toFixed(1)}`;
  };
  const last = samples.at(-1);
  const secs = Math.round((t1 - t0) / 1000);
  const label = `Rollout over time: ${last.succeeded} of ${total} devices succeeded and ${last.failed} failed after ${secs} seconds`;
  return html`<figure class="chart"><svg viewBox=${`0 0 ${W} ${H}`} width="100%" role="img" aria-label=${label} data-testid="progress-chart">
      <line x1=${P.l} y1=${y(0)} x2=${W - P.r} y2=${y(0)} stroke="#4a5360" />
      <line x1=${P.l} y1=${y(total)} x2=${W - P.r} y2=${y(total)} stroke="#c9ced6" stroke-dasharray="4 3" />
      <line x1=${P.l} y1=${P.t} x2=${P.l} y2=${y(0)} stroke="#4a5360" />
      <text x=${P.l - 6} y=${y(total) + 4} text-anchor="end" font-size="11" fill="#1b1f24">${total}</text>
      <text x=${P.l - 6} y=${y(0) + 4} text-anchor="end" font-size="11" fill="#1b1f24">0</text>
      <text x=${P.l} y=${H - 8} font-size="11" fill="#1b1f24">${new Date(t0).toLocaleTimeString()}</text>
      <text x=${W - P.r} y=${H - 8} text-anchor="end" font-size="11" fill="#1b1f24">${new Date(t1).toLocaleTimeString()} (+${secs} s)</text>
      <path d=${step('succeeded')} fill="none" stroke=${COLORS.succeeded} stroke-width="2.5" />
      <path d=${step('failed')} fill="none" stroke=${COLORS.failed} stroke-width="2.5" stroke-dasharray="6 3" />
    </svg>
    <figcaption><span class="key" style=${`background:${COLORS.succeeded}`}></span> succeeded <span class="key" style=${`background:${COLORS.failed}`}></span> failed (dashed) — devices over time</figcaption></figure>`;
}

/** Success and failure per row (model or method): a bar chart, succeeded and failed side by side, with the success rate. */
export function SuccessChart({ rows, what, testid }) {
  if (rows.length === 0) return null;
  const W = 560;
  const ROW = 26;
  const L = 150;
  const R = 70;
  const H = rows.length * ROW + 8;
  const max = Math.max(1, ...rows.map((r) => r.succeeded + r.failed));
  const x = (n) => (n / max) * (W - L - R);
  const rate = (r) => (r.succeeded + r.failed === 0 ? '—' : `${Math.round((r.succeeded / (r.succeeded + r.failed)) * 100)} %`);
  const label = `Success by ${what}: ${rows.map((r) => `${r.label} ${r.succeeded} succeeded, ${r.failed} failed`).join('; ')}`;
  return html`<figure class="chart"><svg viewBox=${`0 0 ${W} ${H}`} width="100%" role="img" aria-label=${label} data-testid=${testid}>
      ${rows.map((r, i) => {
        const y = 4 + i * ROW;
        return html`<g>
          <text x=${L - 6} y=${y + 15} text-anchor="end" font-size="12" fill="#1b1f24">${r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label}</text>
          <rect x=${L} y=${y + 3} width=${x(r.succeeded)} height="16" fill=${COLORS.succeeded} />
          <rect x=${L + x(r.succeeded)} y=${y + 3} width=${x(r.failed)} height="16" fill=${COLORS.failed} />
          <text x=${L + x(r.succeeded + r.failed) + 6} y=${y + 15} font-size="12" fill="#1b1f24">${rate(r)}</text>
        </g>`;
      })}
    </svg>
    <figcaption><span class="key" style=${`background:${COLORS.succeeded}`}></span> succeeded <span class="key" style=${`background:${COLORS.failed}`}></span> failed — ended installs by ${what}, with the success rate</figcaption></figure>`;
}

/** One horizontal stacked bar of a counts object (inline SVG). */
function StackBar({ counts, label }) {
  const total = counts.total || 1;
  const parts = [
    ['succeeded', counts.succeeded],
    ['failed', counts.failed],
    ['running', counts.starting + counts.started],
    ['pending', counts.pending],
    ['other', counts.cancelled + counts['no-package']],
  ];
  let at = 0;
  return html`<svg class="stack" viewBox="0 0 200 14" width="200" height="14" role="img" aria-label=${`${label}: ${parts.filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') || 'no devices'}`}>
    <rect x="0" y="0" width="200" height="14" fill="#eef1f5" />
    ${parts.map(([k, n]) => {
      const w = (n / total) * 200;
      const r = html`<rect x=${at} y="0" width=${w} height="14" fill=${COLORS[k]} />`;
      at += w;
      return r;
    })}</svg>`;
}

function Counts({ c }) {
  return html`<td>${c.total}</td><td>${c.succeeded}</td><td>${c.failed}</td><td>${c.starting + c.started}</td><td>${c.pending}</td><td>${c['no-package'] + c.cancelled}</td>`;
}
const COUNT_HEADS = html`<th scope="col">Devices</th><th scope="col">Succeeded</th><th scope="col">Failed</th><th scope="col">Running</th><th scope="col">Pending</th><th scope="col">No package / cancelled</th>`;

export function CampaignDetail({ me, id }) {
  const { progress: p, error, live, samples, refresh } = useLiveProgress(id);
  const totalsKey = p ? JSON.stringify(p.totals) : '';
  // Cursors of the member pages seen: [undefined, next of page 1, …] (the server's `next`).
  const [cursors, setCursors] = useState([undefined]);
  const [pageNo, setPageNo] = useState(0);
  const [memberState, setMemberState] = useState('');
  const after = cursors[pageNo];
  const members = useLoad(
    () => (p ? api(`/api/v1/campaigns/${encodeURIComponent(id)}/members?${new URLSearchParams({ limit: String(MEMBERS_PAGE), ...(after ? { after } : {}), ...(memberState ? { state: memberState } : {}) })}`) : Promise.resolve(null)),
    [id, totalsKey, after, memberState],
  );
  const nextPage = () => {
    if (!members.data?.next) return;
    setCursors((c) => [...c.slice(0, pageNo + 1), members.data.next]);
    setPageNo(pageNo + 1);
  };
  const showState = (value) => {
    setMemberState(value);
    setCursors([undefined]);
    setPageNo(0);
  };
  const [result, setResult] = useState(null);
  if (error) return html`<p><a href="#/campaigns">← Campaigns</a></p><${Problem} error=${error} />`;
  if (!p) return html`<${Loading} what="the campaign" />`;
  const c = p.campaign;
  const t = p.totals;
  const ended = ENDED.has(c.state);
  const pausedModels = Object.keys(c.pausedModels ?? {});
  const act = async (name, body, ok) => {
    setResult(null);
    try {
      const out = await api(`/api/v1/campaigns/${encodeURIComponent(id)}/${name}`, { method: 'POST', json: body ?? {} });
      if (name === 'retry-failed') {
        location.hash = `#/campaigns/${encodeURIComponent(out.id)}`;
        return;
      }
      setResult({ ok });
      await refresh();
    } catch (e) {
      setResult({ error: e });
    }
  };
  const done = t.succeeded + t.failed + t.cancelled + t['no-package'];
  return html`<p><a href="#/campaigns">← Campaigns</a></p>
    <h2>Campaign ${c.name}</h2>
    <div class="panel">
      <dl class="facts">
        <dt>State</dt><dd><strong class=${`state-${c.state}`} data-testid="campaign-state">${c.state}</strong>${c.pauseReason ? html` — ${c.pauseReason}` : ''} <span class="muted">${live ? '(live)' : ended ? '' : '(reconnecting…)'}</span></dd>
        <dt>Progress</dt><dd><span aria-live="polite" data-testid="campaign-totals">${t.succeeded} succeeded, ${t.failed} failed, ${t.starting + t.started} running, ${t.pending} pending of ${t.total}</span> <progress max=${t.total || 1} value=${done} aria-label="Devices finished"></progress></dd>
        <dt>Wave</dt><dd>${c.currentWave} of ${p.waves.length}</dd>
        <dt>Devices</dt><dd>${targetText(c.spec.target)}</dd><dt>Package</dt><dd>${packageText(c.spec.package)}</dd>
        <dt>Window</dt><dd>${c.spec.window ? `${c.spec.window.start}–${c.spec.window.end} ${c.spec.window.deviceTime ? 'device time' : 'UTC'}` : 'any time'}</dd>
        <dt>Rules</dt><dd>next wave at ${Math.round(c.spec.successThreshold * 100)} % success; pause past ${Math.round(c.spec.failureLimit * 100)} % failures (a model alone past ${Math.round(c.spec.modelFailureLimit * 100)} %) after ${c.spec.minSamples} results; ${c.spec.approval ? 'each wave waits for approval' : 'no approval'}; at most ${c.spec.concurrency} at once</dd>
        <dt>Created</dt><dd>${fmtTime(c.createdAt)}</dd><dt>Finished</dt><dd>${fmtTime(c.finishedAt)}</dd>
        ${c.retryOf && html`<dt>Retry of</dt><dd><a href=${`#/campaigns/${encodeURIComponent(c.retryOf)}`}>${c.retryOf}</a></dd>`}
        ${pausedModels.length > 0 && html`<dt>Paused models</dt><dd>${pausedModels.map((m) => `${m} (${c.pausedModels[m]})`).join('; ')}</dd>`}
      </dl>
      ${can(me, 'operator') && html`<div class="actions" role="group" aria-label="Campaign actions">
        ${(c.state === 'running' || c.state === 'awaiting-approval') && html`<button class="secondary" onClick=${() => act('pause', undefined, 'Paused: nothing more starts; running installs go on.')}>Pause</button>`}
        ${(c.state === 'paused' || (!ended && pausedModels.length > 0)) && html`<button onClick=${() => act('resume', pausedModels.length ? { models: 'all' } : undefined, 'Resumed.')}>Resume${pausedModels.length ? ' (and paused models)' : ''}</button>`}
        ${c.state === 'awaiting-approval' && html`<button onClick=${() => act('approve', undefined, `Wave ${c.currentWave} approved.`)}>Approve wave ${c.currentWave}</button>`}
        ${t.failed > 0 && html`<button class="secondary" onClick=${() => act('retry-failed', undefined, '')}>Retry the ${t.failed} failed</button>`}
        ${!ended && html`<button class="danger" onClick=${() => confirm(`Cancel campaign ${c.name}? Pending devices will not be started.`) && act('cancel', undefined, 'Cancelled.')}>Cancel campaign</button>`}
      </div>`}
      ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error} />
    </div>
    <section class="panel" aria-labelledby="chart-h"><h3 id="chart-h">Rollout progress</h3><${ProgressChart} samples=${samples} total=${t.total} end=${c.finishedAt ? Date.parse(c.finishedAt) : Date.now()} /></section>
    <section class="panel" aria-labelledby="waves-h"><h3 id="waves-h">Waves</h3>
      <table data-testid="waves"><thead><tr><th scope="col">Wave</th><th scope="col">State</th><th scope="col"><span class="muted">progress</span></th>${COUNT_HEADS}<th scope="col">Started</th><th scope="col">Ended</th></tr></thead>
      <tbody>${p.waves.map((w) => html`<tr><th scope="row">${w.wave}</th><td>${w.state}</td><td><${StackBar} counts=${w.counts} label=${`Wave ${w.wave}`} /></td><${Counts} c=${w.counts} /><td>${fmtTime(w.startedAt)}</td><td>${fmtTime(w.endedAt)}</td></tr>`)}</tbody></table>
      <p class="muted legend">${Object.entries(COLORS).map(([k, col]) => html`<span class="key" style=${`background:${col}`}></span> ${k === 'other' ? 'no package / cancelled' : k} `)}</p>
    </section>
    <section class="panel" aria-labelledby="models-h"><h3 id="models-h">By model</h3>
      <${SuccessChart} rows=${p.models.map((m) => ({ label: m.model, succeeded: m.counts.succeeded, failed: m.counts.failed }))} what="model" testid="models-chart" />
      <table data-testid="models"><thead><tr><th scope="col">Model</th><th scope="col"><span class="muted">progress</span></th>${COUNT_HEADS}<th scope="col">Paused</th></tr></thead>
      <tbody>${p.models.map((m) => html`<tr><th scope="row">${m.model}</th><td><${StackBar} counts=${m.counts} label=${m.model} /></td><${Counts} c=${m.counts} /><td>${m.paused ?? '—'}</td></tr>`)}</tbody></table>
    </section>
    <section class="panel" aria-labelledby="methods-h"><h3 id="methods-h">By install method</h3>
      ${p.methods.length > 0 && html`<${SuccessChart} rows=${p.methods.map((m) => ({ label: m.method, succeeded: m.succeeded, failed: m.failed }))} what="install method" testid="methods-chart" />`}
      ${p.methods.length === 0 ? html`<p class="muted">No install has ended yet.</p>` : html`<table data-testid="campaign-methods"><thead><tr><th scope="col">Method</th><th scope="col">Succeeded</th><th scope="col">Failed</th></tr></thead>
      <tbody>${p.methods.map((m) => html`<tr><th scope="row">${m.method}</th><td>${m.succeeded}</td><td>${m.failed}</td></tr>`)}</tbody></table>`}
    </section>
    <section class="panel" aria-labelledby="members-h"><h3 id="members-h">Devices</h3>
      <${Problem} error=${members.error} />
      <form class="inline" onSubmit=${(e) => e.preventDefault()}><div><label for="members-state">Show</label><select id="members-state" value=${memberState} onChange=${(e) => showState(e.target.value)}><option value="">every device</option>${MEMBER_STATES.map((st) => html`<option value=${st}>${st}</option>`)}</select></div></form>
      ${members.data && html`<p class="muted" aria-live="polite" data-testid="members-page">Page ${pageNo + 1}: devices ${pageNo * MEMBERS_PAGE + 1}–${pageNo * MEMBERS_PAGE + members.data.members.length}${members.data.next ? ', more on the next page' : ''}</p>`}
      ${members.data && html`<table data-testid="members"><thead><tr><th scope="col">Device</th><th scope="col">Wave</th><th scope="col">Model</th><th scope="col">State</th><th scope="col">Method</th><th scope="col">Message</th><th scope="col">Ended</th></tr></thead>
      <tbody>${members.data.members.map((m) => html`<tr><td><a href=${`#/inventory/${encodeURIComponent(m.device)}`}>${m.endpoint ?? m.device}</a></td><td>${m.wave}</td><td>${m.model}</td><td class=${`state-${m.state}`}>${m.state}</td><td>${m.method ?? '—'}</td><td>${m.message ?? ''}</td><td>${fmtTime(m.endedAt)}</td></tr>`)}</tbody></table>
      <div class="pager"><button class="secondary" disabled=${pageNo === 0} onClick=${() => setPageNo(pageNo - 1)}>Previous devices</button><button class="secondary" disabled=${!members.data.next} onClick=${nextPage} data-testid="members-next">Next devices</button></div>`}
    </section>`;
}
