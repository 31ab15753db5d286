//! The report as one self-contained HTML page: no external assets. A summary per framework
//! with coverage, a table per control with status colours, filters, and a drill-down to the
//! hosts, failing checks and signed records behind each control, with a freshness timeline.

use super::Report;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1e0}
main{padding:16px 24px}.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002;min-width:260px}
.card h2{font-size:15px;margin:0 0 6px}.bar{height:10px;background:#e5e8ee;border-radius:5px;overflow:hidden;display:flex}
.bar span{display:block;height:100%}.pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap}
.passing{background:#d7f5df;color:#116329}.failing{background:#ffd8d3;color:#a40e26}.stale{background:#fff1c2;color:#7a5200}
.waived{background:#e1e4ff;color:#3b3fb6}.no_evidence{background:#eceef2;color:#57606a}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eef0f3;vertical-align:top}th{background:#f0f2f5;font-size:12px;text-transform:uppercase;color:#57606a}
tr.ctl{cursor:pointer}tr.ctl:hover{background:#f7f9fc}tr.detail td{background:#fbfcfd}code{font-size:12px}
.filters{margin:8px 0 12px}.filters button{border:1px solid #c9d1e0;background:#fff;border-radius:14px;padding:3px 10px;margin-right:6px;cursor:pointer}
.filters button.on{background:#1d2433;color:#fff}.muted{color:#57606a}svg.tl{display:block}
"#;

const SCRIPT: &str = r#"
const R = JSON.parse(document.getElementById('report-data').textContent);
const el = (t, a = {}, ...kids) => { const e = document.createElement(t); for (const [k, v] of Object.entries(a)) { if (k === 'class') e.className = v; else e.setAttribute(k, v); } for (const k of kids) e.append(k); return e; };
const label = s => s.replace('_', ' ');
document.getElementById('meta').textContent = `Store ${R.store} · state at ${R.at} · ${R.records} verified records from ${R.hosts.length} host(s) · ${R.rejected.records} rejected`;
const cards = document.getElementById('cards');
const order = ['passing', 'waived', 'stale', 'failing', 'no_evidence'];
const colour = {passing: '#2da44e', waived: '#6f73e0', stale: '#d4a72c', failing: '#cf222e', no_evidence: '#d0d7de'};
for (const f of R.frameworks) {
  const bar = el('div', {class: 'bar'});
  for (const s of order) { const n = f.by_status[s] || 0; if (n) bar.append(el('span', {style: `width:${100 * n / f.controls}%;background:${colour[s]}`, title: `${label(s)}: ${n}`})); }
  const counts = el('div', {class: 'muted'}, order.filter(s => f.by_status[s]).map(s => `${label(s)} ${f.by_status[s]}`).join(' · '));
  cards.append(el('div', {class: 'card', 'data-framework': f.id}, el('h2', {}, f.title), el('div', {}, `coverage ${f.coverage_percent}% · passing ${f.passing_percent}%`), bar, counts, el('div', {class: 'muted', 'data-clauses': f.id}, `clauses 4-10: ${f.clauses.clauses} · coverage ${f.clauses.coverage_percent}% · passing ${f.clauses.passing_percent}%`)));
}
const timeline = c => {
  const ns = 'http://www.w3.org/2000/svg', w = 320, h = 18;
  const svg = document.createElementNS(ns, 'svg'); svg.setAttribute('class', 'tl'); svg.setAttribute('width', w); svg.setAttribute('height', h);
  const end = Date.parse(R.at), start = R.since ? Date.parse(R.since) : end - 30 * 86400e3;
  const base = document.createElementNS(ns, 'line'); Object.entries({x1: 0, x2: w, y1: h / 2, y2: h / 2, stroke: '#d0d7de'}).forEach(([k, v]) => base.setAttribute(k, v)); svg.append(base);
  for (const t of c.timeline) { const x = Math.max(0, Math.min(w, (Date.parse(t) - start) / (end - start) * w)); const d = document.createElementNS(ns, 'circle'); Object.entries({cx: x, cy: h / 2, r: 3, fill: colour[c.status]}).forEach(([k, v]) => d.setAttribute(k, v)); svg.append(d); }
  return svg;
};
const body = document.getElementById('controls');
let filter = 'all', fw = 'all';
const render = () => {
  body.textContent = '';
  for (const c of R.controls) {
    if ((filter !== 'all' && c.status !== filter) || (fw !== 'all' && c.framework !== fw)) continue;
    const row = el('tr', {class: 'ctl', 'data-control': c.id, 'data-status': c.status},
      el('td', {}, el('code', {}, c.id)), el('td', {}, c.title), el('td', {}, el('span', {class: `pill ${c.status}`}, label(c.status))),
      el('td', {}, String(c.hosts)), el('td', {}, String(c.records)), el('td', {}, c.newest || '—'), el('td', {}, c.status === 'no_evidence' ? '—' : (c.chain_ok ? 'verified' : 'chain problem')));
    const detail = el('tr', {class: 'detail', hidden: ''});
    const cell = el('td', {colspan: '7'});
    cell.append(el('div', {class: 'muted'}, `${c.group} · expected cadence ${Math.round(c.cadence_seconds / 3600)} h`), timeline(c));
    if (c.failing_checks.length) { const ul = el('ul'); for (const f of c.failing_checks) ul.append(el('li', {}, el('b', {}, f.check), `: ${f.message} — hosts: ${f.hosts.join(', ')}`, f.waived_by.length ? ` (waived: ${f.waived_by.join(', ')})` : '')); cell.append(el('div', {}, 'Failing checks'), ul); }
    if (c.stale_hosts.length) { const ul = el('ul'); for (const s of c.stale_hosts) ul.append(el('li', {}, `${s.host} (${s.collector}): newest ${s.newest}`, s.waived_by.length ? ` (waived: ${s.waived_by.join(', ')})` : '')); cell.append(el('div', {}, 'Stale evidence'), ul); }
    if (c.evidence.length) { const ul = el('ul'); for (const e of c.evidence) ul.append(el('li', {}, `${e.host} · ${e.collector} · ${e.collected_at} · ${e.status} · `, el('code', {}, e.key))); cell.append(el('div', {}, 'Newest signed records'), ul); }
    detail.append(cell);
    row.addEventListener('click', () => { detail.hidden = !detail.hidden; });
    body.append(row, detail);
  }
  document.getElementById('shown').textContent = `${body.querySelectorAll('tr.ctl').length} control(s) shown`;
};
const bar = document.getElementById('filters');
for (const s of ['all', ...order]) { const b = el('button', {'data-filter': s}, label(s)); if (s === filter) b.className = 'on'; b.addEventListener('click', () => { filter = s; bar.querySelectorAll('button').forEach(x => x.className = x === b ? 'on' : ''); render(); }); bar.append(b); }
const fsel = el('select', {id: 'framework'}, el('option', {value: 'all'}, 'all frameworks'), ...R.frameworks.map(f => el('option', {value: f.id}, f.id)));
fsel.addEventListener('change', () => { fw = fsel.value; render(); }); bar.append(fsel);
render();
const xw = document.getElementById('crosswalk');
for (const p of R.crosswalk) xw.append(el('tr', {}, el('td', {}, el('code', {}, p.iso27001)), el('td', {}, el('code', {}, p.iso42001)), el('td', {}, String(p.shared_records)), el('td', {}, el('span', {class: `pill ${p.status[0]}`}, label(p.status[0])), ' ', el('span', {class: `pill ${p.status[1]}`}, label(p.status[1]))), el('td', {class: 'muted'}, p.reason)));
const wv = document.getElementById('waivers');
for (const w of R.waivers) wv.append(el('tr', {}, el('td', {}, w.id), el('td', {}, w.control || w.check), el('td', {}, w.hosts.join(', ') || 'all hosts'), el('td', {}, w.approver), el('td', {}, w.expires), el('td', {}, el('span', {class: `pill ${w.state === 'active' ? 'waived' : 'failing'}`}, w.state)), el('td', {class: 'muted'}, w.justification)));
const rj = document.getElementById('rejected');
for (const p of R.rejected.problems.slice(0, 200)) rj.append(el('li', {}, el('code', {}, p.key), `: ${p.message}`));
document.body.setAttribute('data-rendered', 'yes');
"#;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the dashboard.
pub fn render(r: &Report) -> String {
    // JSON inside <script> must not be able to close the element.
    let data = serde_json::to_string(r)
        .unwrap_or_default()
        .replace("</", "<\\/")
        .replace("<!--", "<\\!--");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Evident audit readiness — {store}</title><style>{STYLE}</style></head>
<body><header><h1>Audit readiness</h1><p id="meta"></p></header>
{trust}{conflicts}
<main>
<noscript><p>This page draws its tables with JavaScript; the same data is in the JSON report (<code>evident report --format json</code>).</p></noscript>
<section class="cards" id="cards"></section>
<div class="filters" id="filters"></div><p class="muted" id="shown"></p>
<table><thead><tr><th>Control</th><th>Title</th><th>Status</th><th>Hosts</th><th>Records</th><th>Newest evidence</th><th>Chain</th></tr></thead><tbody id="controls"></tbody></table>
<h2>ISO/IEC 27001 ↔ 42001: one piece of evidence, two controls</h2>
<table><thead><tr><th>ISO 27001</th><th>ISO 42001</th><th>Shared records</th><th>Status</th><th>Why</th></tr></thead><tbody id="crosswalk"></tbody></table>
<h2>Waivers</h2>
<table><thead><tr><th>Id</th><th>Waives</th><th>Hosts</th><th>Approver</th><th>Expires</th><th>State</th><th>Justification</th></tr></thead><tbody id="waivers"></tbody></table>
<h2>Rejected records</h2><ul id="rejected"></ul>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"#,
        store = escape(&r.store),
        conflicts = r
            .host_conflicts
            .iter()
            .map(|c| format!(
                r#"<p class="host-conflict" style="margin:0;padding:8px 24px;background:#ffd8d3;color:#a40e26;font-weight:600">Host {} is claimed by {} agents ({}){}</p>"#,
                escape(&c.host),
                c.agents.len(),
                escape(&c.agents.join(", ")),
                if c.enrolled {
                    ", each enrolled for it by the trust policy."
                } else {
                    ": a forged agent with its own key, or a reinstalled host. Its evidence does not count as a sound chain; bind agents to hosts with --trust POLICY."
                }
            ))
            .collect::<String>(),
        trust = if r.anchored {
            format!(
                r#"<p id="trust" class="anchored" style="margin:0;padding:8px 24px;background:#d7f5df;color:#116329">Agent keys anchored by the auditor's trust policy; {} record(s) by untrusted keys rejected and not counted.</p>"#,
                r.untrusted
            )
        } else {
            r#"<p id="trust" class="not-anchored" style="margin:0;padding:8px 24px;background:#ffd8d3;color:#a40e26;font-weight:600">NOT ANCHORED: no trust policy was given, so every key published in the store was trusted on first sight. Anyone who can write to the store could have added evidence. Run with --trust POLICY.</p>"#.to_string()
        },
    )
}
