// The approver page: plain DOM, no build step. Everything the API returns is rendered with
// textContent (never innerHTML), because job data comes from an LLM and a producer.
const TOKEN_KEY = 'pyexec-approver-token';
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  held: [],
  selectedId: null,
  detail: null,
  stream: null,
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
    signOut('The token was refused.');
    throw new ApiError(401, 'unauthorized', 'The token was refused.');
  }
  if (!res.ok) throw new ApiError(res.status, json.error?.code ?? 'error', json.error?.message ?? res.statusText);
  return json;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function until(deadline) {
  const s = Math.round((deadline - Date.now()) / 1000);
  if (s <= 0) return 'passed';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h ` : ''}${m}m ${s % 60}s left`;
}

// ---- sign-in -------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api('GET', '/api/whoami');
  } catch (err) {
    $('signin-error').textContent = err.message;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `${state.me.name} (${state.me.role})`;
  await refreshList();
  connectEvents();
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.stream?.abort();
  state.stream = null;
  $('desk').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('who').textContent = '';
  $('signin-error').textContent = message;
  setLive(false);
}

// ---- list and detail -----------------------------------------------------------------------

// Responses can arrive out of order (a live refresh and a decision's refresh): render only the newest.
let listSeq = 0;
let detailSeq = 0;

async function refreshList() {
  const seq = ++listSeq;
  const { held } = await api('GET', '/api/held');
  if (seq !== listSeq) return;
  state.held = held;
  const list = $('held');
  list.replaceChildren(
    ...state.held.map((h) =>
      el(
        'li',
        {
          class: h.holdJobId === state.selectedId ? 'selected' : '',
          dataset: { testid: 'held-item', holdJobId: h.holdJobId },
        },
        el('div', {}, h.taskObjective),
        el(
          'div',
          { class: 'meta' },
          el('span', { class: `badge mode-${h.mode}` }, h.mode),
          ' ',
          el('span', { class: `badge risk-${h.risk}` }, `risk ${h.risk}`),
          ` ${h.findingCount} finding(s) · `,
          el('span', { class: 'countdown', dataset: { deadline: String(h.deadline) } }, until(h.deadline)),
        ),
      ),
    ),
  );
  $('count').textContent = `(${state.held.length})`;
  $('empty').hidden = state.held.length > 0;
}

async function select(holdJobId) {
  state.selectedId = holdJobId;
  for (const li of $('held').children) li.classList.toggle('selected', li.dataset.holdJobId === holdJobId);
  $('outcome').textContent = '';
  await loadDetail();
}

async function loadDetail() {
  if (!state.selectedId) return;
  const seq = ++detailSeq;
  let detail;
  try {
    detail = await api('GET', `/api/held/${encodeURIComponent(state.selectedId)}`);
  } catch (err) {
    if (seq === detailSeq) $('outcome').textContent = err.message;
    return;
  }
  if (seq !== detailSeq) return;
  state.detail = detail;
  renderDetail(detail);
}

function renderDetail(d) {
  $('detail').hidden = false;
  $('d-task').textContent = d.taskObjective;
  $('d-query').textContent = d.userQuery;
  $('d-reason').textContent = d.approvalReason;
  $('d-mode').replaceChildren(el('span', { class: `badge mode-${d.mode}` }, d.mode));
  $('d-risk').replaceChildren(el('span', { class: `badge risk-${d.risk}` }, d.risk));
  $('d-deadline').replaceChildren(
    `${new Date(d.deadline).toLocaleString()} (`,
    el('span', { class: 'countdown', dataset: { deadline: String(d.deadline) } }, until(d.deadline)),
    ')',
  );
  const decided = d.decision ? ` by ${d.decision.approver}${d.decision.reason ? `: ${d.decision.reason}` : ''}` : '';
  $('d-status').textContent = `${d.status}${decided}`;
  $('d-id').textContent = d.holdJobId;
  $('d-sha').textContent = d.codeSha256;

  const findingsByIndex = new Map(d.findings.map((f) => [f.index, f]));
  $('code').replaceChildren(
    ...d.lines.map((line) => {
      const marks = line.findings.map((i) => findingsByIndex.get(i)?.rule).join(', ');
      return el(
        'tr',
        {
          id: `line-${line.number}`,
          class: line.severity ? `finding sev-${line.severity}` : '',
          dataset: { testid: line.severity ? 'finding-line' : 'line', line: String(line.number) },
        },
        el('td', { class: 'num' }, line.number),
        el('td', { class: 'src' }, line.text),
        el('td', { class: 'marks' }, marks ? `⚠ ${marks}` : ''),
      );
    }),
  );
  $('finding-count').textContent = `(${d.findings.length})`;
  $('findings').replaceChildren(
    ...(d.findings.length === 0
      ? [el('li', { class: 'muted' }, 'No findings.')]
      : d.findings.map((f) =>
          el(
            'li',
            { dataset: { testid: 'finding', line: String(f.line) } },
            el('span', { class: `badge risk-${f.severity}` }, f.severity),
            ` ${f.rule} — line ${f.line || 'all'}: ${f.message}`,
          ),
        )),
  );
  const canDecide = state.me?.role === 'approver' && d.status === 'held';
  $('approve').disabled = !canDecide;
  $('reject').disabled = !canDecide;
  $('viewer-note').hidden = state.me?.role === 'approver';
}

// ---- decisions -----------------------------------------------------------------------------

async function decide(kind) {
  const d = state.detail;
  if (!d) return;
  const out = $('outcome');
  let body;
  if (kind === 'approve') {
    const raw = $('payload').value.trim();
    let payload;
    try {
      payload = raw ? JSON.parse(raw) : undefined;
    } catch {
      out.textContent = 'The payload is not valid JSON.';
      return;
    }
    if (payload !== undefined && (payload === null || typeof payload !== 'object' || Array.isArray(payload))) {
      out.textContent = 'The payload must be a JSON object.';
      return;
    }
    // Bind the approval to exactly what is on screen: the API refuses it if the job changed since.
    body = { codeSha256: d.codeSha256, analysisSha256: d.analysisSha256, ...(payload ? { payload } : {}) };
  } else {
    const reason = $('reason').value.trim();
    if (!reason) {
      out.textContent = 'A rejection needs a reason.';
      return;
    }
    body = { reason, codeSha256: d.codeSha256, analysisSha256: d.analysisSha256 };
  }
  $('approve').disabled = true;
  $('reject').disabled = true;
  try {
    const { decision } = await api('POST', `/api/held/${encodeURIComponent(d.holdJobId)}/${kind}`, body);
    out.textContent = `${decision.decision} by ${decision.approver}`;
    $('payload').value = '';
    $('reason').value = '';
  } catch (err) {
    out.textContent = `Not decided: ${err.message}`;
  }
  await Promise.all([refreshList(), loadDetail()]);
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
function scheduleRefresh(holdJobId) {
  detailStale ||= holdJobId === state.selectedId;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshList().catch(() => {});
    if (detailStale) loadDetail();
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
    scheduleRefresh(JSON.parse(data).holdJobId);
  }
}

// ---- wiring --------------------------------------------------------------------------------

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value.trim());
});
$('signout').addEventListener('click', () => signOut());
$('held').addEventListener('click', (e) => {
  const li = e.target.closest('li[data-hold-job-id]');
  if (li) select(li.dataset.holdJobId);
});
$('approve').addEventListener('click', () => decide('approve'));
$('reject').addEventListener('click', () => decide('reject'));
setInterval(() => {
  for (const span of document.querySelectorAll('.countdown')) span.textContent = until(Number(span.dataset.deadline));
}, 1000);

if (state.token) signIn(state.token);
else signOut();
