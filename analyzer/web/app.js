// mcptap-analyzer web page: vanilla JS, no dependencies. Reads the JSON API of the same
// origin, authenticated by the HttpOnly cookie that the login form (shown after a 401, a plain
// POST to `login`) sets; the page never sees the token. Range: `?since=&until=` (else the
// service's cached window).
// Routes: `#/` overview, `#/finding/<id>` finding drill-down, `#/trace/<trace id>` spans.
'use strict';
(function () {
  const params = new URLSearchParams(location.search);
  const range = {};
  for (const k of ['since', 'until']) {
    const v = params.get(k);
    if (v) range[k] = v;
  }
  let doc = null; // the findings document

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function query(extra) {
    const p = new URLSearchParams(Object.assign({}, range, extra || {}));
    const s = p.toString();
    return s ? '?' + s : '';
  }

  class AuthError extends Error {}

  async function api(path, extra) {
    const headers = { Accept: 'application/json' };
    const r = await fetch(path + query(extra), { headers, credentials: 'same-origin' });
    if (r.status === 401) {
      $('auth').classList.remove('hidden');
      throw new AuthError('bearer token required');
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : r.statusText;
      throw new Error(path + ': ' + r.status + ' ' + msg);
    }
    return body;
  }

  function showError(e) {
    if (e instanceof AuthError) return;
    const box = $('error');
    box.textContent = String(e.message || e);
    box.classList.remove('hidden');
  }

  const short = (t) => (t || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const pct = (x) => (100 * (x || 0)).toFixed(1) + '%';

  function clientLabel(c) {
    if (!c) return '';
    let who = c.name ? (c.version ? c.name + '/' + c.version : c.name) : (c.user_agent ? 'ua:' + c.user_agent : 'unknown');
    return c.address ? who + ' @ ' + c.address : who;
  }

  function subjectNodes(s) {
    const parts = [];
    if (s.client) parts.push(el('span', { class: 'client' }, clientLabel(s.client)));
    if (s.instance) parts.push(el('span', { class: 'tag' }, 'instance ' + s.instance));
    if (s.instances && s.instances.length) parts.push(el('span', { class: 'tag instances' }, 'instances ' + s.instances.join(', ')));
    if (s.method) parts.push(el('span', { class: 'tag' }, 'method ' + s.method));
    if (s.tool) parts.push(el('span', { class: 'tag' }, 'tool ' + s.tool));
    if (s.handle) parts.push(el('span', { class: 'tag handle' }, 'handle ' + s.handle));
    return parts;
  }

  function renderReadiness(d) {
    const sec = $('readiness');
    sec.replaceChildren(el('h2', {}, 'Cutover readiness'));
    const r = d.readiness;
    if (!r) {
      sec.appendChild(el('p', { class: 'error' }, 'readiness unavailable: ' + (d.errors || []).join('; ')));
      return;
    }
    const label = { ready: 'READY', not_ready: 'NOT READY', no_data: 'NO DATA' }[r.verdict] || r.verdict;
    sec.appendChild(el('div', { class: 'verdict verdict-' + r.verdict, id: 'verdict', 'data-verdict': r.verdict },
      el('span', { class: 'badge' }, label),
      el('span', {}, r.sticky_sessions_removable ? 'sticky sessions can be removed' : 'sticky sessions cannot be removed yet')));
    sec.appendChild(el('p', { class: 'share', id: 'session-share' },
      el('strong', {}, pct(r.session_dependent_share)), ' of requests depend on MCP sessions (',
      String(r.session_dependent_requests), ' of ', String(r.requests), '); legacy-era ', String(r.legacy_requests),
      ', session 404s ', String(r.session_404), ', cross-instance handle failures ', String(r.cross_instance_handle_failures)));
    if (r.reasons.length) sec.appendChild(el('ul', { class: 'reasons' }, r.reasons.map((x) => el('li', {}, x))));
    if (r.advice.length) sec.appendChild(el('ul', { class: 'advice' }, r.advice.map((x) => el('li', {}, x))));
    if (r.clients.length) {
      sec.appendChild(el('h3', {}, 'Clients still on sessions'));
      sec.appendChild(el('table', { class: 'grid', id: 'session-clients' },
        el('thead', {}, el('tr', {}, ['client', 'session-dependent', 'share', 'session 404s', 'instances'].map((h) => el('th', {}, h)))),
        el('tbody', {}, r.clients.map((c) => el('tr', {},
          el('td', { class: 'client' }, clientLabel(c.client)),
          el('td', { class: 'num' }, c.session_dependent + ' / ' + c.requests),
          el('td', { class: 'num' }, pct(c.share)),
          el('td', { class: 'num' }, String(c.session_404)),
          el('td', {}, c.instances.join(', ')))))));
    }
    if (r.instances.length) {
      sec.appendChild(el('h3', {}, 'Instances'));
      sec.appendChild(el('table', { class: 'grid', id: 'instances' },
        el('thead', {}, el('tr', {}, ['instance', 'session-dependent', 'share', 'session 404s'].map((h) => el('th', {}, h)))),
        el('tbody', {}, r.instances.map((i) => el('tr', {},
          el('td', {}, i.instance),
          el('td', { class: 'num' }, i.session_dependent + ' / ' + i.requests),
          el('td', { class: 'num' }, pct(i.share)),
          el('td', { class: 'num' }, String(i.session_404)))))));
    }
  }

  function renderFindings(d) {
    const sec = $('findings');
    const s = d.summary.by_severity;
    sec.replaceChildren(el('h2', {}, 'Findings ',
      el('span', { class: 'muted' }, d.findings.length + ' (' + s.critical + ' critical, ' + s.warning + ' warning, ' + s.info + ' info)')));
    if (!d.findings.length) {
      sec.appendChild(el('p', { class: 'muted' }, 'No findings in the range.'));
      return;
    }
    const rows = d.findings.map((f) => el('tr', {
      class: 'finding sev-' + f.severity, 'data-id': f.id, 'data-rule': f.rule, title: 'click for the drill-down',
      onclick: () => { location.hash = '#/finding/' + f.id; },
    },
      el('td', {}, el('span', { class: 'sev sev-' + f.severity }, f.severity)),
      el('td', { class: 'rule' }, f.rule),
      el('td', { class: 'subject' }, el('div', { class: 'summary' }, f.summary), el('div', {}, subjectNodes(f.subject))),
      el('td', { class: 'num' }, String(f.count)),
      el('td', { class: 'counts' }, Object.entries(f.counts).map(([k, v]) => el('span', { class: 'kv' }, k + '=' + v))),
      el('td', { class: 'time' }, short(f.first_seen)),
      el('td', { class: 'time' }, short(f.last_seen))));
    sec.appendChild(el('table', { class: 'grid', id: 'findings-table' },
      el('thead', {}, el('tr', {}, ['severity', 'rule', 'subject', 'count', 'counts', 'first seen', 'last seen'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows)));
  }

  function chart(series) {
    const pts = series.points || [];
    const W = 320, H = 64, pad = 2;
    const max = Math.max(1, ...pts.map((p) => p.requests || 0));
    const svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + (H + 14), width: W, height: H + 14, class: 'chart', role: 'img' });
    svg.appendChild(svgEl('line', { x1: 0, y1: H, x2: W, y2: H, class: 'axis' }));
    const bw = pts.length ? (W - pad) / pts.length : W;
    pts.forEach((p, i) => {
      const v = p.requests || 0;
      const h = v ? Math.max(2, (H - 4) * v / max) : 0;
      const sev = p.error ? 'err' : (p.by_severity && p.by_severity.critical ? 'critical' : (p.by_severity && p.by_severity.warning ? 'warning' : 'info'));
      const r = svgEl('rect', { x: (pad + i * bw).toFixed(1), y: (H - h).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: h.toFixed(1), class: 'bar bar-' + sev });
      const t = svgEl('title', {});
      t.textContent = short(p.t) + ': ' + (p.error ? 'error ' + p.error : (p.findings + ' finding(s), ' + v + ' request(s)'));
      r.appendChild(t);
      svg.appendChild(r);
    });
    const lbl = svgEl('text', { x: 0, y: H + 12, class: 'axis-label' });
    lbl.textContent = pts.length ? short(pts[0].t) + ' … step ' + series.step_seconds + ' s, max ' + max : 'no points';
    svg.appendChild(lbl);
    return svg;
  }

  async function renderTrends(d) {
    const sec = $('trends');
    sec.replaceChildren(el('h2', {}, 'Trends ', el('span', { class: 'muted' }, 'requests behind each rule\'s findings, per step')));
    const byRule = d.summary.by_rule;
    const active = Object.keys(byRule).filter((r) => byRule[r] > 0);
    const quiet = Object.keys(byRule).filter((r) => byRule[r] === 0);
    const grid = el('div', { class: 'trends' });
    sec.appendChild(grid);
    for (const rule of active) {
      const box = el('div', { class: 'trend', 'data-rule': rule }, el('div', { class: 'rule' }, rule + ' (' + byRule[rule] + ')'), el('span', { class: 'muted' }, 'loading…'));
      grid.appendChild(box);
    }
    if (quiet.length) sec.appendChild(el('p', { class: 'muted' }, 'No findings: ' + quiet.join(', ')));
    for (const box of grid.children) {
      const rule = box.getAttribute('data-rule');
      try {
        const extra = {};
        if (!range.since && !range.until) { /* cached window */ } else { extra.since = String(d.range.since); extra.until = String(d.range.until); }
        const s = await api('/api/v1/rules/' + encodeURIComponent(rule) + '/series', extra);
        box.replaceChild(chart(s), box.lastChild);
      } catch (e) {
        box.replaceChild(el('span', { class: 'error' }, String(e.message || e)), box.lastChild);
      }
    }
  }

  function closeButton() {
    return el('a', { href: '#/', class: 'close' }, '× close');
  }

  async function renderFinding(id) {
    const sec = $('drill');
    sec.classList.remove('hidden');
    let f = doc && doc.findings.find((x) => x.id === id);
    if (!f) f = (await api('/api/v1/findings/' + encodeURIComponent(id))).finding;
    sec.replaceChildren(closeButton(), el('h2', {}, 'Finding ', el('code', {}, f.rule)),
      el('p', { class: 'summary', id: 'finding-summary' }, el('span', { class: 'sev sev-' + f.severity }, f.severity), ' ', f.summary),
      el('div', {}, subjectNodes(f.subject)),
      el('p', {}, 'count ' + f.count + ', seen ' + short(f.first_seen) + ' … ' + short(f.last_seen) + ' ',
        Object.entries(f.counts).map(([k, v]) => el('span', { class: 'kv' }, k + '=' + v))),
      el('h3', {}, 'Sample traces'),
      el('ul', { class: 'traces', id: 'sample-traces' }, f.sample_trace_ids.map((t) => el('li', {}, el('a', { href: '#/trace/' + t, class: 'trace-link' }, t)))),
      el('details', {}, el('summary', {}, 'details'), el('pre', {}, JSON.stringify(f.details, null, 2))));
  }

  async function renderTrace(tid) {
    const sec = $('drill');
    sec.classList.remove('hidden');
    sec.replaceChildren(closeButton(), el('h2', {}, 'Trace ', el('code', {}, tid)), el('p', { class: 'muted' }, 'loading…'));
    const t = await api('/api/v1/traces/' + encodeURIComponent(tid));
    const rows = t.spans.map((s) => el('tr', { class: 'span', 'data-span-id': s.span_id },
      el('td', { class: 'time' }, short(s.start)),
      el('td', {}, s.name),
      el('td', {}, s.instance),
      el('td', { class: 'num' }, s.duration_ms.toFixed(2)),
      el('td', {}, s.status_code + (s.status_message ? ': ' + s.status_message : '')),
      el('td', { class: 'num' }, s.http_status ? String(s.http_status) : ''),
      el('td', {}, s.rpc_code),
      el('td', {}, s.method + (s.tool ? ' ' + s.tool : '')),
      el('td', {}, s.client_name ? s.client_name + (s.client_version ? '/' + s.client_version : '') + ' @ ' + s.client_address : s.client_address),
      el('td', {}, s.era),
      el('td', { class: 'mono' }, s.session_id),
      el('td', { class: 'mono' }, s.span_id + (s.parent_span_id ? ' ← ' + s.parent_span_id : ''))));
    const attrs = t.spans.map((s) => el('details', {}, el('summary', {}, 'attributes of span ' + s.span_id),
      el('table', { class: 'grid attrs' }, el('tbody', {}, Object.entries(s.attributes).map(([k, v]) => el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v)))))));
    sec.replaceChildren(closeButton(), el('h2', {}, 'Trace ', el('code', {}, tid), ' ', el('span', { class: 'muted' }, t.spans.length + ' span(s)')),
      el('table', { class: 'grid', id: 'trace-spans', 'data-trace-id': tid },
        el('thead', {}, el('tr', {}, ['start', 'name', 'instance', 'ms', 'status', 'HTTP', 'JSON-RPC error', 'method / tool', 'client', 'era', 'session id', 'span ← parent'].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)),
      ...attrs);
  }

  async function route() {
    const h = location.hash || '#/';
    const m = h.match(/^#\/(finding|trace)\/([0-9a-fA-F]{1,32})$/);
    try {
      if (!m) {
        $('drill').classList.add('hidden');
      } else if (m[1] === 'finding') {
        await renderFinding(m[2]);
      } else {
        await renderTrace(m[2]);
      }
      if (m) window.scrollTo(0, 0);
    } catch (e) {
      showError(e);
    }
  }

  async function load() {
    $('f-since').value = range.since || '';
    $('f-until').value = range.until || '';
    try {
      doc = await api('/api/v1/findings');
      $('range').textContent = short(doc.range.since) + ' … ' + short(doc.range.until) + (doc.cached ? ' (refreshed ' + short(doc.generated_at) + ')' : '');
      renderReadiness(doc);
      renderFindings(doc);
      $('status').textContent = doc.generator + ' — ' + doc.source.database + '.' + doc.source.table + (doc.errors.length ? ' — errors: ' + doc.errors.join('; ') : '');
      await route();
      await renderTrends(doc);
      document.body.setAttribute('data-state', 'ready');
    } catch (e) {
      showError(e);
      document.body.setAttribute('data-state', 'error');
    }
  }

  $('range-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if ($('f-since').value) p.set('since', $('f-since').value);
    if ($('f-until').value) p.set('until', $('f-until').value);
    const q = p.toString();
    location.href = location.pathname + (q ? '?' + q : '') + location.hash;
  });
  window.addEventListener('hashchange', route);
  load();
})();
