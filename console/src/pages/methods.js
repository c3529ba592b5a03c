// Install methods per model: the learned table (successes and failures per method, with the
// last failure's reason) and the operator's pins (always first) and forbids (never tried).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, can, fmtTime, useLoad, Problem, Loading } from '../ui.js';

/** The table's rows grouped by make and model: [{ make, model, rows, rules }]. */
function byModel(data) {
  const groups = new Map();
  const key = (make, model) => `${make.toLowerCase()}\u0000${model.toLowerCase()}`;
  const group = (make, model) => {
    const k = key(make, model);
    if (!groups.has(k)) groups.set(k, { make, model, rows: [], rules: [] });
    return groups.get(k);
  };
  for (const s of data.stats) group(s.make, s.model).rows.push(s);
  for (const r of data.rules) group(r.make, r.model).rules.push(r);
  return [...groups.values()].sort((a, b) => `${a.make} ${a.model}`.localeCompare(`${b.make} ${b.model}`));
}

function Rate({ s }) {
  const n = s.successes + s.failures;
  const pct = n ? Math.round((s.successes / n) * 100) : 0;
  return html`<svg class="stack" viewBox="0 0 100 12" width="100" height="12" role="img" aria-label=${`${pct} % of ${n} attempts succeeded`}><rect width="100" height="12" fill="#a4161a" /><rect width=${pct} height="12" fill="#1a6b2f" /></svg> ${pct} %`;
}

export function Methods({ me }) {
  const [filter, setFilter] = useState({ make: '', model: '' });
  const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v.trim()));
  const { data, error, loading, reload } = useLoad(() => api(`/api/v1/install-methods?${q}`), [q.toString()]);
  const [result, setResult] = useState(null);
  const operator = can(me, 'operator');
  const rule = async (make, model, method, kind) => {
    setResult(null);
    const path = `/api/v1/install-methods/${encodeURIComponent(make)}/${encodeURIComponent(model)}/${encodeURIComponent(method)}`;
    try {
      if (kind === 'unpin') await api(path, { method: 'DELETE' });
      else await api(path, { method: 'PUT', json: { rule: kind } });
      setResult({ ok: kind === 'unpin' ? `${method} for ${make} ${model}: learning decides again.` : `${method} ${kind === 'pin' ? 'pinned (always first)' : 'forbidden (never tried)'} for ${make} ${model}.` });
      reload();
    } catch (error) {
      setResult({ error });
    }
  };
  const onRule = (make, model) => (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    void rule(make, model, String(f.get('method')), e.submitter?.value ?? 'pin');
  };
  return html`<h2>Install methods per model</h2>
    <div class="panel">
      <form class="inline" role="search" aria-label="Filter by model" onSubmit=${(e) => e.preventDefault()}>
        <div><label for="m-make">Make</label><input id="m-make" class="short" value=${filter.make} onInput=${(e) => setFilter({ ...filter, make: e.target.value })} /></div>
        <div><label for="m-model">Model</label><input id="m-model" class="short" value=${filter.model} onInput=${(e) => setFilter({ ...filter, model: e.target.value })} /></div>
      </form>
      <p class="muted">What Depot learned from every install, per make, model, OS version and method. A pinned method is always tried first; a forbidden one never. Jobs created with an explicit chain are not affected.</p>
    </div>
    ${result?.ok && html`<p class="ok" role="status">${result.ok}</p>`}<${Problem} error=${result?.error ?? error} />
    ${!data && loading && html`<${Loading} what="the learned table" />`}
    ${data && (byModel(data).length === 0 ? html`<div class="panel"><p class="muted">Nothing learned yet: the table fills as installs end.</p></div>` : byModel(data).map((g) => {
      const id = `m-${g.make}-${g.model}`.replace(/[^A-Za-z0-9-]/g, '_');
      return html`<section class="panel" aria-labelledby=${id} data-testid="method-model"><h3 id=${id}>${g.make} ${g.model}</h3>
        ${g.rows.length > 0 && html`<table><thead><tr><th scope="col">OS version</th><th scope="col">Method</th><th scope="col">Successes</th><th scope="col">Failures</th><th scope="col">Success rate</th><th scope="col">Last failure</th><th scope="col">Last success</th></tr></thead>
          <tbody>${g.rows.map((s) => html`<tr><td>${s.osVersion || '—'}</td><th scope="row">${s.method}</th><td>${s.successes}</td><td>${s.failures}</td><td><${Rate} s=${s} /></td><td>${s.lastFailureAt ? html`${fmtTime(s.lastFailureAt)}: ${s.lastReason ?? ''}${s.lastResult ? html` <span class="mono">(${s.lastResult})</span>` : ''}` : '—'}</td><td>${fmtTime(s.lastSuccessAt)}</td></tr>`)}</tbody></table>`}
        <h4>Operator rules</h4>
        ${g.rules.length === 0 ? html`<p class="muted">None: the learned order applies.</p>` : html`<ul class="plain">${g.rules.map((r) => html`<li><strong>${r.method}</strong> ${r.rule === 'pin' ? 'pinned' : 'forbidden'} <span class="muted">(${fmtTime(r.updatedAt)})</span> ${operator && html`<button class="secondary" onClick=${() => rule(g.make, g.model, r.method, 'unpin')}>Remove ${r.rule} of ${r.method}</button>`}</li>`)}</ul>`}
        ${operator && html`<form class="inline" onSubmit=${onRule(g.make, g.model)}>
          <div><label for=${`${id}-method`}>Method for ${g.make} ${g.model}</label><select id=${`${id}-method`} name="method" class="short">${data.methods.map((m) => html`<option>${m}</option>`)}</select></div>
          <button type="submit" name="kind" value="pin">Pin</button><button type="submit" name="kind" value="forbid" class="danger">Forbid</button>
        </form>`}
      </section>`;
    }))}`;
}
