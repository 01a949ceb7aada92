// The approver page: plain DOM, no build step, no dependencies. Everything the API returns is
// rendered with textContent (never innerHTML), because job data comes from an LLM and a producer.
import { highlightPython } from './highlight.js';

const TOKEN_KEY = 'pyexec-approver-token';
const FOLLOW_KEY = 'pyexec-approver-following';
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  held: [],
  /** The job on screen (hold job id) and its detail. */
  selectedId: null,
  wantedId: null,
  detail: null,
  readings: {},
  view: 'held',
  stream: null,
  /** Requests decided on this page, followed until they end: requestId -> entry. */
  following: new Map(JSON.parse(sessionStorage.getItem(FOLLOW_KEY) ?? '[]')),
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}`, 'x-pyexec-client': 'web' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) {
    signOut('The token was refused. Ask an operator for a new one (pyexec approver new-token).');
    throw new ApiError(401, 'unauthorized', 'The token was refused.');
  }
  if (!res.ok) throw new ApiError(res.status, json.error?.code ?? 'error', json.error?.message ?? res.statusText);
  return json;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const pill = (text, kind = text) => el('span', { class: `pill pill-${kind}` }, text);

function until(deadline) {
  const s = Math.round((deadline - Date.now()) / 1000);
  if (s <= 0) return 'deadline passed';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h ` : ''}${m}m ${String(s % 60).padStart(2, '0')}s left`;
}

function ago(at) {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return new Date(at).toLocaleString();
}

const time = (at) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const short = (id) => (id.length > 13 ? `${id.slice(0, 8)}…` : id);

function countdown(deadline, cls = 'countdown') {
  return el('span', { class: cls, dataset: { deadline: String(deadline) } }, until(deadline));
}

// ---- sign-in -------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api('GET', '/api/whoami');
  } catch (err) {
    $('signin-error').textContent = err.status === 401 ? 'That token is not known here.' : err.message;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('help-button').hidden = false;
  $('who').textContent = `${state.me.name} · ${state.me.role}`;
  $('token').value = '';
  await refreshList();
  await route();
  connectEvents();
  for (const requestId of state.following.keys()) follow(requestId);
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.held = [];
  state.detail = null;
  state.selectedId = null;
  state.wantedId = null;
  state.stream?.abort();
  state.stream = null;
  for (const id of ['desk', 'nav', 'signout', 'help-button']) $(id).hidden = true;
  $('signin').hidden = false;
  $('who').textContent = '';
  $('signin-error').textContent = message;
  setLive(false);
}

// ---- routing: #job=<hold job, request or thread id>, #history&decision=...&q=... ---------------

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const params = new URLSearchParams(raw.startsWith('history') ? raw.slice('history'.length) : raw);
  return { view: raw.startsWith('history') ? 'history' : 'held', job: params.get('job'), params };
}

async function route() {
  if (!state.me) return;
  const { view, job, params } = parseHash();
  showView(view);
  if (view === 'history') {
    applyFiltersFromHash(params);
    await loadHistory();
    return;
  }
  if (job) await openJob(job);
  else if (state.held.length > 0) await openJob(state.held[0].holdJobId, { replace: true });
  else renderNothingSelected();
}

function showView(view) {
  state.view = view;
  $('held-view').hidden = view !== 'held';
  $('history-view').hidden = view !== 'history';
  $('nav-held').classList.toggle('current', view === 'held');
  $('nav-history').classList.toggle('current', view === 'history');
}

function go(hash, { replace = false } = {}) {
  const target = `#${hash}`;
  if (location.hash === target) return route();
  if (replace) {
    history.replaceState(null, '', target);
    return route();
  }
  location.hash = target;
}

// ---- the list of held jobs -------------------------------------------------------------------

// Responses can arrive out of order (a live refresh and a decision's refresh): render only the newest.
let listSeq = 0;
let detailSeq = 0;

async function refreshList() {
  const seq = ++listSeq;
  const { held } = await api('GET', '/api/held');
  if (seq !== listSeq) return;
  state.held = held;
  renderList();
}

function renderList() {
  $('held').replaceChildren(
    ...state.held.map((h) => {
      const writes = h.writePvs.length
        ? `writes ${h.writePvs.slice(0, 3).join(', ')}${h.writePvs.length > 3 ? ` +${h.writePvs.length - 3}` : ''}`
        : h.writeCount
          ? `${h.writeCount} write(s), PV not resolved`
          : 'no EPICS writes';
      return el(
        'li',
        {
          class: h.holdJobId === state.selectedId ? 'selected' : '',
          dataset: { testid: 'held-item', holdJobId: h.holdJobId },
        },
        el(
          'a',
          { href: `#job=${encodeURIComponent(h.holdJobId)}`, class: 'item-link' },
          el('div', { class: 'item-task' }, h.taskObjective),
          el(
            'div',
            { class: 'item-who' },
            el('b', {}, h.requester ?? 'requester not given'),
            ` · submitted ${ago(h.submittedAt)}`,
          ),
          el('div', { class: 'item-writes' }, writes),
          el(
            'div',
            { class: 'item-meta' },
            pill(`risk ${h.risk}`, `risk-${h.risk}`),
            ' ',
            pill(h.mode, `mode-${h.mode}`),
            ' ',
            countdown(h.deadline),
          ),
          el(
            'div',
            { class: 'item-ids mono' },
            el('span', { title: 'thread id' }, `thread ${h.threadId}`),
            ' · ',
            el('span', { title: `request id ${h.requestId}` }, `request ${short(h.requestId)}`),
          ),
        ),
      );
    }),
  );
  $('count').textContent = String(state.held.length);
  $('count').classList.toggle('zero', state.held.length === 0);
  $('empty').hidden = state.held.length > 0;
  document.title = state.held.length ? `(${state.held.length}) pyexec approvals` : 'pyexec approvals';
}

function renderNothingSelected() {
  state.selectedId = null;
  state.wantedId = null;
  state.detail = null;
  $('detail').hidden = true;
  for (const li of $('held').children) li.classList.remove('selected');
}

// ---- one job ---------------------------------------------------------------------------------

async function openJob(id, { replace = false } = {}) {
  if (replace && location.hash !== `#job=${encodeURIComponent(id)}`) {
    history.replaceState(null, '', `#job=${encodeURIComponent(id)}`);
  }
  // What the page is opening now: a live refresh reloads this, not the job it is leaving.
  state.wantedId = id;
  const seq = ++detailSeq;
  let detail;
  try {
    detail = await api('GET', `/api/held/${encodeURIComponent(id)}`);
  } catch (err) {
    if (seq !== detailSeq) return;
    $('detail').hidden = false;
    showBanner(err.status === 404 ? `No job, request or thread "${id}" is known here.` : err.message);
    return;
  }
  if (seq !== detailSeq) return;
  const changedJob = state.selectedId !== detail.holdJobId;
  state.selectedId = detail.holdJobId;
  state.detail = detail;
  if (changedJob) {
    state.readings = {};
    hideBanner();
    $('outcome').textContent = '';
    $('payload').value = '';
  }
  for (const li of $('held').children) li.classList.toggle('selected', li.dataset.holdJobId === detail.holdJobId);
  renderDetail(detail);
  if (changedJob) window.scrollTo({ top: 0 });
  readCurrentValues(detail);
  if (detail.status !== 'held' && detail.status !== 'expiring') showOutcome(detail.requestId);
  else $('outcome-panel').hidden = true;
}

async function reloadDetail() {
  const id = state.wantedId ?? state.selectedId;
  if (id) await openJob(id);
}

function renderDetail(d) {
  $('detail').hidden = false;
  $('d-task').textContent = d.taskObjective;
  const statusText = {
    held: 'waiting for a decision',
    expiring: 'deadline passed',
    approved: 'approved',
    rejected: 'rejected',
    expired: 'expired',
    cancelled: 'cancelled by its producer',
  }[d.status];
  $('d-status').className = `pill pill-status-${d.status}`;
  $('d-status').textContent = statusText ?? d.status;
  $('d-countdown').replaceChildren(d.status === 'held' ? countdown(d.deadline) : '');
  const link = $('d-link');
  link.href = `#job=${encodeURIComponent(d.holdJobId)}`;
  $('d-requester').textContent = d.requester ?? 'not given (the request has no session_context.user_id)';
  $('d-submitted').textContent = `${new Date(d.submittedAt).toLocaleString()} (${ago(d.submittedAt)})`;
  $('d-thread').textContent = d.threadId;
  $('d-request').textContent = d.requestId;
  $('d-reason').textContent = d.approvalReason;
  $('d-mode').replaceChildren(pill(d.mode, `mode-${d.mode}`));
  $('d-risk').replaceChildren(pill(`risk ${d.risk}`, `risk-${d.risk}`));
  $('d-deadline').replaceChildren(`${new Date(d.deadline).toLocaleString()} · `, countdown(d.deadline));
  $('d-sha').textContent = d.codeSha256;
  $('d-id').textContent = d.holdJobId;
  $('d-query').textContent = d.userQuery;

  $('writes-title').textContent =
    d.status === 'approved'
      ? 'What it writes'
      : d.status === 'held' || d.status === 'expiring'
        ? 'What it will write'
        : 'What it would have written';
  renderWrites(d);
  renderCode(d);
  $('finding-count').textContent = `(${d.findings.length})`;
  $('findings').replaceChildren(
    ...(d.findings.length === 0
      ? [el('li', { class: 'muted' }, 'No findings.')]
      : d.findings.map((f) =>
          el(
            'li',
            { dataset: { testid: 'finding', line: String(f.line) } },
            pill(f.severity, `sev-${f.severity}`),
            ' ',
            f.line
              ? el(
                  'a',
                  { href: `#job=${encodeURIComponent(d.holdJobId)}`, dataset: { goto: String(f.line) } },
                  `line ${f.line}`,
                )
              : 'whole program',
            ` · ${f.rule}: ${f.message}`,
          ),
        )),
  );
  const decidable = d.status === 'held';
  const canDecide = state.me?.role === 'approver' && decidable;
  $('approve').disabled = !canDecide;
  $('reject').disabled = !canDecide;
  $('viewer-note').hidden = state.me?.role === 'approver';
  $('decide').hidden = !decidable;
  if (d.status === 'cancelled') showBanner('Cancelled by its producer: there is nothing to decide.', 'info');
  else if ((d.status === 'approved' || d.status === 'rejected') && d.decision && $('banner').hidden) {
    const why = d.decision.reason ? `: ${d.decision.reason}` : '';
    showBanner(
      `${d.status === 'approved' ? 'Approved' : 'Rejected'} by ${d.decision.approver} at ${time(d.decision.decidedAt)}${why}.`,
      'info',
    );
  } else if (d.status === 'expiring' || d.status === 'expired')
    showBanner('The deadline passed: there is nothing to decide.', 'info');
}

function renderWrites(d) {
  const rows = d.writes.map((w, i) => {
    const pvs = w.pvs.length ? w.pvs : [];
    const pvCell = pvs.length
      ? el('td', { class: 'pv' }, ...pvs.map((pv) => el('div', { class: 'mono', dataset: { testid: 'write-pv' } }, pv)))
      : el(
          'td',
          { class: 'pv unresolved' },
          w.target ? el('div', { class: 'mono' }, w.target) : null,
          el('div', { class: 'small' }, w.resolved ? 'PV name not worked out by the analysis' : (w.message ?? w.call)),
        );
    const now = el(
      'td',
      { class: 'now' },
      ...(pvs.length
        ? pvs.map((pv) =>
            el(
              'div',
              { class: 'mono reading', dataset: { testid: 'current-value', pv } },
              readingText(state.readings[pv]),
            ),
          )
        : [el('span', { class: 'muted' }, '—')]),
    );
    return el(
      'tr',
      { dataset: { testid: 'write', line: String(w.line), index: String(i) } },
      el(
        'td',
        { class: 'w-line' },
        w.line ? el('a', { href: '#', dataset: { goto: String(w.line) } }, String(w.line)) : '—',
      ),
      pvCell,
      el('td', { class: 'value mono', dataset: { testid: 'write-value' } }, w.value ?? (w.resolved ? '(none)' : '?')),
      now,
    );
  });
  if (rows.length === 0) {
    rows.push(
      el('tr', {}, el('td', { colspan: '4', class: 'muted' }, 'The analysis found no EPICS writes in this code.')),
    );
  }
  $('writes').replaceChildren(...rows);
  const unresolved = d.writes.filter((w) => w.pvs.length === 0).length;
  $('writes-note').replaceChildren(
    unresolved ? `${unresolved} write(s) without a PV name the analysis could work out: read their lines. ` : '',
    d.writePvs.length ? 'Current values are read through the read-only path. ' : '',
    d.writePvs.length
      ? el('button', { type: 'button', class: 'link', id: 'reread', dataset: { testid: 'reread' } }, 'Read again')
      : '',
  );
}

function readingText(r) {
  if (!r) return 'reading…';
  if (!r.ok) return `unavailable: ${r.error}`;
  return `${r.text ?? JSON.stringify(r.value)} at ${time(r.at)}`;
}

async function readCurrentValues(d, again = false) {
  if (d.writePvs.length === 0) return;
  if (again) for (const pv of d.writePvs) delete state.readings[pv];
  for (const cell of document.querySelectorAll('#writes .reading')) {
    if (!state.readings[cell.dataset.pv]) cell.textContent = 'reading…';
  }
  try {
    const { available, readings } = await api('GET', `/api/held/${encodeURIComponent(d.holdJobId)}/pvs`);
    if (state.selectedId !== d.holdJobId) return;
    if (!available) {
      const at = Date.now();
      for (const pv of d.writePvs) state.readings[pv] = { ok: false, error: 'no read-only path configured', at };
    } else Object.assign(state.readings, readings);
  } catch (err) {
    const at = Date.now();
    for (const pv of d.writePvs) state.readings[pv] = { ok: false, error: err.message, at };
  }
  for (const cell of document.querySelectorAll('#writes .reading')) {
    cell.textContent = readingText(state.readings[cell.dataset.pv]);
  }
}

function renderCode(d) {
  const tokens = highlightPython(d.code);
  const findingsByIndex = new Map(d.findings.map((f) => [f.index, f]));
  $('line-count').textContent = `(${d.lines.length} lines)`;
  $('code').replaceChildren(
    ...d.lines.map((line, i) => {
      const marks = line.findings.map((k) => findingsByIndex.get(k)?.rule).filter(Boolean);
      const src = el('td', { class: 'src' });
      const parts = tokens[i] ?? [['', line.text]];
      for (const [cls, text] of parts) src.append(cls ? el('span', { class: `t-${cls}` }, text) : text);
      if (parts.length === 0) src.append('\u200b');
      return el(
        'tr',
        {
          id: `line-${line.number}`,
          class: line.severity ? `finding sev-${line.severity}` : '',
          dataset: { testid: line.severity ? 'finding-line' : 'line', line: String(line.number) },
        },
        el('td', { class: 'num' }, line.number),
        src,
        el('td', { class: 'marks' }, marks.length ? `⚠ ${[...new Set(marks)].join(', ')}` : ''),
      );
    }),
  );
}

function showBanner(text, kind = 'error') {
  const b = $('banner');
  b.textContent = text;
  b.className = `banner banner-${kind}`;
  b.hidden = false;
}
function hideBanner() {
  $('banner').hidden = true;
  $('banner').textContent = '';
}

// ---- decisions -------------------------------------------------------------------------------

function readPayload() {
  const raw = $('payload').value.trim();
  if (!raw) return { ok: true, payload: undefined };
  let payload;
  try {
    payload = JSON.parse(raw);
  } catch {
    return { ok: false, error: 'The payload is not valid JSON.' };
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    return { ok: false, error: 'The payload must be a JSON object.' };
  return { ok: true, payload };
}

function askApprove() {
  const d = state.detail;
  if (!d || state.view !== 'held' || $('approve').disabled) return;
  const p = readPayload();
  if (!p.ok) {
    $('outcome').textContent = p.error;
    return;
  }
  $('approve-title').textContent = d.writes.length
    ? `Approve ${d.writes.length} write(s) to ${d.writePvs.length || 'unresolved'} PV(s)?`
    : 'Approve this code (no EPICS writes found)?';
  $('approve-sha').textContent = `${d.codeSha256.slice(0, 12)}…`;
  $('approve-mode').textContent = d.mode;
  $('approve-writes').replaceChildren(
    ...d.writes.map((w) =>
      el(
        'li',
        { dataset: { testid: 'confirm-write' } },
        w.pvs.length
          ? w.pvs.map((pv) =>
              el(
                'div',
                {},
                el('b', { class: 'mono' }, pv),
                ' ← ',
                el('span', { class: 'mono' }, w.value ?? '?'),
                el(
                  'span',
                  { class: 'muted', dataset: { pvNow: pv, line: String(w.line) } },
                  ` (now ${readingText(state.readings[pv])} · line ${w.line})`,
                ),
              ),
            )
          : el('div', {}, `line ${w.line}: a write whose PV the analysis could not name — `, w.message ?? w.call),
      ),
    ),
  );
  $('approve-payload').textContent = p.payload ? `With payload ${JSON.stringify(p.payload)}` : '';
  $('approve-dialog').returnValue = '';
  $('approve-dialog').showModal();
  // Read the PVs again, so the confirmation shows what they are now, not when the job opened.
  readCurrentValues(d, true).then(() => {
    for (const span of $('approve-writes').querySelectorAll('[data-pv-now]')) {
      span.textContent = ` (now ${readingText(state.readings[span.dataset.pvNow])} · line ${span.dataset.line})`;
    }
  });
}

function askReject() {
  if (!state.detail || state.view !== 'held' || $('reject').disabled) return;
  $('reason').value = '';
  $('reject-dialog').returnValue = '';
  $('reject-dialog').showModal();
}

async function decide(kind) {
  const d = state.detail;
  if (!d) return;
  let body;
  if (kind === 'approve') {
    const p = readPayload();
    if (!p.ok) return;
    // Bind the approval to exactly what is on screen: the API refuses it if the job changed since.
    body = { codeSha256: d.codeSha256, analysisSha256: d.analysisSha256, ...(p.payload ? { payload: p.payload } : {}) };
  } else {
    body = { reason: $('reason').value.trim(), codeSha256: d.codeSha256, analysisSha256: d.analysisSha256 };
  }
  $('approve').disabled = true;
  $('reject').disabled = true;
  let decision;
  try {
    ({ decision } = await api('POST', `/api/held/${encodeURIComponent(d.holdJobId)}/${kind}`, body));
  } catch (err) {
    showBanner(`Not ${kind === 'approve' ? 'approved' : 'rejected'}: ${err.message}`);
    $('outcome').textContent = '';
    await refreshList().catch(() => {});
    const keep = $('banner').textContent;
    await reloadDetail();
    showBanner(keep);
    return;
  }
  $('outcome').textContent = `${decision.decision} by ${decision.approver} at ${time(decision.decidedAt)}`;
  $('payload').value = '';
  track(d, decision);
  await refreshList().catch(() => {});
  // Move on to the next waiting job; with none left, stay and watch how this one goes.
  const next = state.held.find((h) => h.holdJobId !== d.holdJobId);
  if (next) await go(`job=${encodeURIComponent(next.holdJobId)}`);
  else await reloadDetail();
}

// ---- following decided requests: queued -> executing -> succeeded ---------------------------

function track(d, decision) {
  state.following.set(d.requestId, {
    requestId: d.requestId,
    holdJobId: d.holdJobId,
    task: d.taskObjective,
    decision: decision.decision,
    approver: decision.approver,
    outcome: null,
  });
  saveFollowing();
  renderTray();
  follow(d.requestId);
}

function saveFollowing() {
  const recent = [...state.following.entries()].slice(-10);
  sessionStorage.setItem(FOLLOW_KEY, JSON.stringify(recent));
}

const polling = new Set();
async function follow(requestId) {
  if (polling.has(requestId)) return;
  polling.add(requestId);
  try {
    for (let i = 0; i < 1800 && state.token; i++) {
      const entry = state.following.get(requestId);
      if (!entry) return;
      try {
        entry.outcome = await api('GET', `/api/requests/${encodeURIComponent(requestId)}`);
      } catch (err) {
        if (err.status === 404) {
          state.following.delete(requestId);
          saveFollowing();
          renderTray();
          return;
        }
      }
      renderTray();
      if (state.detail?.requestId === requestId && entry.outcome) renderOutcome(entry.outcome);
      if (entry.outcome?.response) {
        saveFollowing();
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    polling.delete(requestId);
  }
}

/** The steps a decided request goes through, and where it is now. */
function progress(o, decision) {
  if (decision !== 'approved') return [[decision, `end-${decision}`]];
  const seen = (status) => o?.events.some((e) => e.status === status);
  const ended = o?.response?.status;
  const steps = [['approved', 'done']];
  steps.push(['queued', ended || seen('executing') ? 'done' : 'now']);
  steps.push(['executing', ended ? 'done' : seen('executing') ? 'now' : 'todo']);
  steps.push([ended ?? 'result', ended ? `end-${ended}` : 'todo']);
  return steps;
}

function stepsEl(o, decision) {
  return el(
    'ol',
    { class: 'steps' },
    ...progress(o, decision).map(([name, how]) =>
      el('li', { class: `step step-${how}`, dataset: { testid: 'step', step: name, how } }, name),
    ),
  );
}

function renderTray() {
  const entries = [...state.following.values()].reverse();
  $('tray').hidden = entries.length === 0;
  $('tray-list').replaceChildren(
    ...entries.map((e) =>
      el(
        'li',
        {
          dataset: {
            testid: 'tray-item',
            requestId: e.requestId,
            status: e.outcome?.response?.status ?? e.outcome?.status ?? '',
          },
        },
        el(
          'a',
          { href: `#job=${encodeURIComponent(e.holdJobId)}` },
          el('div', { class: 'item-task' }, e.task),
          stepsEl(e.outcome, e.decision),
          e.outcome?.response
            ? el(
                'div',
                { class: 'small mono tray-result', dataset: { testid: 'tray-result' } },
                e.outcome.response.status === 'succeeded'
                  ? `results ${JSON.stringify(e.outcome.response.results)}`
                  : (e.outcome.response.reason ?? ''),
              )
            : null,
        ),
      ),
    ),
  );
}

async function showOutcome(requestId) {
  $('outcome-panel').hidden = false;
  const followed = state.following.get(requestId);
  if (followed?.outcome) renderOutcome(followed.outcome);
  try {
    const o = await api('GET', `/api/requests/${encodeURIComponent(requestId)}`);
    if (state.detail?.requestId === requestId) renderOutcome(o);
  } catch (err) {
    $('timeline').replaceChildren(el('li', { class: 'muted' }, `No record of how it went: ${err.message}`));
  }
}

const EVENT_TEXT = {
  submitted: () => 'submitted',
  status: (e) => e.status?.replace('_', ' '),
  approved: (e) => `approved by ${e.data?.approver ?? '?'}`,
  cancel_requested: () => 'cancel requested by the producer',
  finished: (e) => `ended: ${e.status}`,
};

function renderOutcome(o) {
  if (state.detail?.requestId !== o.requestId) return;
  $('outcome-panel').hidden = false;
  const decision = state.detail.decision?.decision ?? state.detail.status;
  $('timeline').replaceChildren(
    el('li', { class: 'timeline-steps' }, stepsEl(o, decision)),
    ...o.events
      .filter((e, i, all) => !(e.type === 'status' && all[i - 1]?.status === e.status))
      .map((e) =>
        el(
          'li',
          { dataset: { testid: 'event', type: e.type, status: e.status ?? '' } },
          el('time', { class: 'mono' }, time(e.at)),
          ' ',
          (EVENT_TEXT[e.type] ?? (() => e.type))(e) ?? e.type,
          e.data?.stage && e.type === 'status'
            ? el('span', { class: 'muted' }, ` (attempt ${e.data.attempt ?? 1})`)
            : null,
        ),
      ),
  );
  const r = o.response;
  $('result').replaceChildren(
    ...(r
      ? [
          el(
            'p',
            {},
            pill(r.status, `end-${r.status}`),
            r.reason ? ` ${r.reason}` : '',
            r.executionSeconds !== null ? ` · ran ${r.executionSeconds.toFixed(2)} s` : '',
          ),
          r.status === 'succeeded' || r.results !== null
            ? el('pre', { class: 'results mono', dataset: { testid: 'results' } }, JSON.stringify(r.results, null, 2))
            : null,
          r.stdout ? el('details', {}, el('summary', {}, 'stdout'), el('pre', { class: 'mono' }, r.stdout)) : null,
          r.notebookPath ? el('p', { class: 'small muted' }, `notebook: ${r.notebookPath}`) : null,
        ].filter(Boolean)
      : [el('p', { class: 'muted' }, `still ${o.status.replace('_', ' ')}…`)]),
  );
  if (!r && !state.following.has(o.requestId) && state.detail?.decision) {
    // Decided elsewhere: follow it too while it is on screen.
    state.following.set(o.requestId, {
      requestId: o.requestId,
      holdJobId: state.detail.holdJobId,
      task: state.detail.taskObjective,
      decision,
      approver: state.detail.decision.approver,
      outcome: o,
    });
    follow(o.requestId);
  }
}

// ---- history (the audit trail) ---------------------------------------------------------------

function filtersFromForm() {
  const form = $('history-filters');
  const decisions = [...form.querySelectorAll('input[name=decision]:checked')].map((i) => i.value);
  const p = new URLSearchParams();
  if (decisions.length < 4) p.set('decision', decisions.join(','));
  if ($('f-approver').value.trim()) p.set('approver', $('f-approver').value.trim());
  if ($('f-q').value.trim()) p.set('q', $('f-q').value.trim());
  if ($('f-since').value) p.set('window', $('f-since').value);
  return p;
}

function applyFiltersFromHash(params) {
  const decisions = params.get('decision');
  for (const box of $('history-filters').querySelectorAll('input[name=decision]')) {
    box.checked = decisions === null || decisions.split(',').includes(box.value);
  }
  $('f-approver').value = params.get('approver') ?? '';
  $('f-q').value = params.get('q') ?? '';
  $('f-since').value = params.get('window') ?? '';
}

let historySeq = 0;
async function loadHistory() {
  const seq = ++historySeq;
  const f = filtersFromForm();
  const query = new URLSearchParams({ limit: '300' });
  for (const key of ['decision', 'approver', 'q']) if (f.has(key)) query.set(key, f.get(key));
  if (f.has('window')) query.set('since', String(Date.now() - Number(f.get('window'))));
  let entries = [];
  // With every outcome unticked nothing matches; there is nothing to ask.
  if (f.get('decision') !== '') {
    try {
      ({ entries } = await api('GET', `/api/audit?${query}`));
    } catch (err) {
      if (seq === historySeq)
        $('history-rows').replaceChildren(el('tr', {}, el('td', { colspan: '6', class: 'error' }, err.message)));
      return;
    }
  }
  if (seq !== historySeq) return;
  $('history-rows').replaceChildren(
    ...entries
      .reverse()
      .map((e) =>
        el(
          'tr',
          { dataset: { testid: 'history-row', holdJobId: e.holdJobId, decision: e.decision } },
          el('td', { class: 'nowrap' }, new Date(e.decidedAt).toLocaleString()),
          el('td', {}, pill(e.decision, `status-${e.decision}`)),
          el(
            'td',
            {},
            e.approver,
            e.source
              ? el('div', { class: 'small muted' }, `via ${e.source}${e.address ? ` from ${e.address}` : ''}`)
              : null,
          ),
          el('td', {}, el('a', { href: `#job=${encodeURIComponent(e.holdJobId)}` }, e.task ?? e.holdJobId)),
          el('td', { class: 'mono wrap small' }, e.threadId ? `${e.threadId} · ` : '', short(e.requestId)),
          el(
            'td',
            { class: 'wrap small' },
            e.reason ?? '',
            e.payload ? el('div', { class: 'mono' }, JSON.stringify(e.payload)) : null,
            el('div', { class: 'mono muted' }, `code ${e.codeSha256.slice(0, 12)}…`),
          ),
        ),
      ),
  );
  $('history-empty').hidden = entries.length > 0;
}

function filtersChanged() {
  const p = filtersFromForm().toString();
  history.replaceState(null, '', `#history${p ? `&${p}` : ''}`);
  loadHistory();
}

// ---- live updates (Server-Sent Events over fetch, so the token goes in a header) -----------

function setLive(on) {
  $('live').textContent = on ? 'live' : 'offline';
  $('live').classList.toggle('on', on);
  $('live').classList.toggle('off', !on);
}

// Events come in bursts (added, delayed; waiting, active, completed): refresh once per burst.
let refreshTimer = null;
let detailStale = false;
function scheduleRefresh(event) {
  const d = state.detail;
  detailStale ||= Boolean(d && (event.holdJobId === d.holdJobId || event.requestId === d.requestId));
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshList().catch(() => {});
    if (detailStale && state.view === 'held') reloadDetail();
    if (state.view === 'history') loadHistory();
    detailStale = false;
  }, 100);
}

async function connectEvents() {
  if (!state.token) return;
  const controller = new AbortController();
  state.stream = controller;
  try {
    const res = await fetch('/api/events', {
      headers: { authorization: `Bearer ${state.token}` },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        handleEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  } catch {
    // Dropped or refused: fall through to a reconnect.
  }
  setLive(false);
  if (state.stream === controller && state.token) {
    setTimeout(() => {
      if (state.stream === controller) connectEvents();
    }, 2000);
  }
}

function handleEvent(block) {
  let type = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) type = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (type === 'ready') {
    setLive(true);
    refreshList().catch(() => {});
  } else if (type === 'hold') {
    scheduleRefresh(JSON.parse(data));
  }
}

// ---- keyboard --------------------------------------------------------------------------------

function move(step) {
  if (state.view !== 'held' || state.held.length === 0) return;
  const i = state.held.findIndex((h) => h.holdJobId === state.selectedId);
  const next = state.held[Math.min(state.held.length - 1, Math.max(0, i + step))] ?? state.held[0];
  go(`job=${encodeURIComponent(next.holdJobId)}`);
}

document.addEventListener('keydown', (e) => {
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  const t = e.target;
  if (t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  const actions = {
    j: () => move(1),
    ArrowDown: () => move(1),
    k: () => move(-1),
    ArrowUp: () => move(-1),
    a: () => askApprove(),
    r: () => askReject(),
    h: () => go('history'),
    w: () => go(''),
    '/': () => {
      go('history');
      setTimeout(() => $('f-q').focus(), 0);
    },
    '?': () => $('help-dialog').showModal(),
  };
  const action = actions[e.key];
  if (action) {
    e.preventDefault();
    action();
  }
});

// ---- wiring ----------------------------------------------------------------------------------

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value.trim());
});
$('signout').addEventListener('click', () => signOut());
$('help-button').addEventListener('click', () => $('help-dialog').showModal());
$('approve').addEventListener('click', askApprove);
$('reject').addEventListener('click', askReject);
$('approve-dialog').addEventListener('close', () => {
  if ($('approve-dialog').returnValue === 'approve') decide('approve');
});
$('reject-dialog').addEventListener('close', () => {
  if ($('reject-dialog').returnValue === 'reject' && $('reason').value.trim()) decide('reject');
});
$('history-filters').addEventListener('input', filtersChanged);
$('history-filters').addEventListener('submit', (e) => e.preventDefault());
// Line links (in the writes table and the findings) scroll the code to that line.
document.addEventListener('click', (e) => {
  const a = e.target instanceof Element ? e.target.closest('a[data-goto]') : null;
  if (!a) return;
  e.preventDefault();
  const row = $(`line-${a.dataset.goto}`);
  row?.scrollIntoView({ block: 'center' });
  row?.classList.add('flash');
  setTimeout(() => row?.classList.remove('flash'), 1200);
});
window.addEventListener('hashchange', () => route());
document.addEventListener('click', (e) => {
  if (e.target instanceof Element && e.target.id === 'reread' && state.detail) readCurrentValues(state.detail, true);
});

let expiredSeen = false;
setInterval(() => {
  for (const span of document.querySelectorAll('[data-deadline]')) {
    const deadline = Number(span.dataset.deadline);
    span.textContent = until(deadline);
    span.classList.toggle('soon', deadline - Date.now() < 5 * 60_000);
  }
  // A job whose deadline passed leaves the list at once.
  const passed = state.held.some((h) => h.deadline <= Date.now());
  if (passed && !expiredSeen) {
    expiredSeen = true;
    refreshList()
      .then(() => {
        if (state.detail && state.detail.deadline <= Date.now()) reloadDetail();
      })
      .catch(() => {})
      .finally(() => {
        expiredSeen = false;
      });
  }
}, 1000);

renderTray();
if (state.token) signIn(state.token);
else signOut();
