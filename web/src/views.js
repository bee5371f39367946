// The right-hand panels of the three views: 网格规划 (grid statistics, partition proposals),
// 风险普查 (data-quality flags, import history), 指挥调度 (readiness summary, warnings, impact).

import { isAbort } from './api.js';
import { STAFF_ROLES, VALUES, escapeHtml, fmt, t as translate } from './i18n.js';
import { renderImpact } from './impact.js';

export const VIEW_TABS = {
  planner: [['grids', '网格统计'], ['partition', '网格划分'], ['locate', '定位查询'], ['area', '区域统计']],
  survey: [['quality', '数据质量'], ['imports', '导入记录'], ['locate', '定位查询'], ['area', '区域统计']],
  commander: [['command', '指挥调度'], ['impact', '影响分析'], ['locate', '定位查询'], ['area', '区域统计']],
};

const RENDERERS = {
  grids: renderGrids, partition: renderPartition, quality: renderQuality, imports: renderImports,
  command: renderCommand, impact: renderImpact,
};

export function renderTab(tab, el, ctx) {
  const fn = RENDERERS[tab];
  el.innerHTML = '<div class="empty">加载中…</div>';
  if (fn) Promise.resolve(fn(el, ctx)).catch((err) => { if (!isAbort(err)) el.innerHTML = `<div class="empty error-text">${escapeHtml(err.message)}</div>`; });
}

function stat(value, key, cls = '') {
  return `<div class="stat ${cls}"><div class="v">${value}</div><div class="k">${escapeHtml(key)}</div></div>`;
}

function pct(x) { return `${(x * 100).toFixed(1)}%`; }

// ---------------------------------------------------------------- 网格规划: grid statistics
const gridUi = { sort: 'grid_code', desc: false, filter: 'all' };

function renderGrids(el, ctx) {
  const { state } = ctx;
  if (!state.gridMetrics) { ctx.loadGridMetrics(); el.innerHTML = '<div class="empty">正在读取网格统计…</div>'; return; }
  const rows = state.gridMetrics;
  const t = state.target;
  const dev = (r) => (r.households - t) / t;
  const within = rows.filter((r) => Math.abs(dev(r)) <= 0.1).length;
  const unassigned = rows.filter((r) => !r.workers);
  const total = (k) => rows.reduce((s, r) => s + (r[k] || 0), 0);
  let shown = rows;
  if (gridUi.filter === 'unassigned') shown = unassigned;
  if (gridUi.filter === 'deviation') shown = rows.filter((r) => Math.abs(dev(r)) > 0.1);
  const key = gridUi.sort;
  shown = [...shown].sort((a, b) => {
    const va = key === 'dev' ? dev(a) : a[key];
    const vb = key === 'dev' ? dev(b) : b[key];
    const c = va < vb ? -1 : va > vb ? 1 : 0;
    return gridUi.desc ? -c : c;
  });
  const head = [['grid_code', '网格'], ['households', '户数'], ['dev', '偏差'], ['population', '人口'], ['workers', '网格员'], ['red_orange', '红橙企业'], ['hazards', '隐患']];
  el.innerHTML = `
    <div class="cards" id="grid-cards">
      ${stat(fmt(rows.length), '现行网格')}${stat(fmt(total('households')), '户数合计')}${stat(pct(rows.length ? within / rows.length : 0), `户数在 ${t}±10% 内`)}
      ${stat(fmt(unassigned.length), '未配备网格员', unassigned.length ? 'red' : '')}${stat(fmt(total('red_orange')), '红橙企业', 'orange')}${stat(fmt(total('hazards')), '隐患')}
    </div>
    <div class="form-row"><label>目标户数</label><input type="number" id="grid-target" min="50" max="5000" step="10" value="${t}">
      <label>显示</label><select id="grid-filter">
        <option value="all">全部网格</option><option value="unassigned">未配备网格员</option><option value="deviation">偏差超过±10%</option></select></div>
    <div class="table-wrap" style="max-height:calc(100vh - 330px)"><table class="data" id="grid-table"><tr>${head.map(([k, label]) => `<th class="sortable ${k === 'grid_code' ? '' : 'num'}" data-sort="${k}">${label}${gridUi.sort === k ? (gridUi.desc ? ' ▼' : ' ▲') : ''}</th>`).join('')}</tr>
    ${shown.map((r) => `<tr class="clickable ${r.workers ? '' : 'flag'}" data-code="${r.grid_code}"><td title="${r.grid_code}">${escapeHtml(r.name)}</td><td class="num">${fmt(r.households)}</td>
      <td class="num" style="color:${Math.abs(dev(r)) > 0.1 ? '#c8161d' : '#1a7f37'}">${dev(r) >= 0 ? '+' : ''}${(dev(r) * 100).toFixed(0)}%</td><td class="num">${fmt(r.population)}</td>
      <td class="num">${r.workers ? fmt(r.workers) : '<span class="error-text">无</span>'}</td><td class="num">${fmt(r.red_orange)}</td><td class="num">${fmt(r.hazards)}</td></tr>`).join('')}</table></div>
    <div class="note">网格颜色表示户数与目标的差距；红色虚线边框为未配备网格员的网格。单击行定位网格。</div>`;
  el.querySelector('#grid-filter').value = gridUi.filter;
  el.querySelector('#grid-filter').addEventListener('change', (e) => { gridUi.filter = e.target.value; renderGrids(el, ctx); });
  el.querySelector('#grid-target').addEventListener('change', (e) => {
    const v = Number(e.target.value);
    if (v >= 50 && v <= 5000) { state.target = v; ctx.rebuildStyle(); ctx.renderLegend(); renderGrids(el, ctx); }
  });
  el.querySelectorAll('th[data-sort]').forEach((th) => th.addEventListener('click', () => {
    if (gridUi.sort === th.dataset.sort) gridUi.desc = !gridUi.desc; else { gridUi.sort = th.dataset.sort; gridUi.desc = th.dataset.sort !== 'grid_code'; }
    renderGrids(el, ctx);
  }));
  el.querySelectorAll('tr[data-code]').forEach((tr) => tr.addEventListener('click', () => ctx.zoomToGrid(tr.dataset.code)));
}

// ---------------------------------------------------------------- 网格规划: partition proposals
const partitionUi = {
  township: '', community: '', target: 400, proposal: null, busy: false, message: '',
  unit: null, edit: null, // the unit picked on the map; the last edit's outcome {ok, text}
};

function deviationColor(d) {
  const a = Math.abs(d);
  if (a <= 0.05) return '#41ab5d';
  if (a <= 0.1) return '#a1d99b';
  return d < 0 ? '#6baed6' : '#fd8d3c';
}

async function renderPartition(el, ctx) {
  const { state, api } = ctx;
  const may = ['admin', 'planner'].includes(state.me.role);
  const unit = state.scope ? await api(`/divisions/${state.scope.code}`) : null;
  const townships = unit ? unit.children.filter((c) => c.level === 'township') : [];
  let communities = [];
  if (partitionUi.township) communities = (await api(`/divisions/${partitionUi.township}`)).children;
  const p = partitionUi.proposal;
  const q = p && p.quality ? p.quality : null;
  el.innerHTML = `
    <div class="note">为一个村（社区）自动生成网格划分方案：按楼栋户数均衡、沿街道河流切分、保持连片紧凑。方案可先预览，确认后提交生效（旧网格归档，数据重新归属）。</div>
    ${may ? '' : '<div class="note error-text">当前角色只能查看；生成和提交方案需要网格规划员或管理员。</div>'}
    <div class="form-row"><label>街道</label><select id="pt-township"><option value="">— 选择乡镇（街道） —</option>${townships.map((t) => `<option value="${t.code}" ${t.code === partitionUi.township ? 'selected' : ''}>${escapeHtml(t.name)}</option>`).join('')}</select></div>
    <div class="form-row"><label>社区</label><select id="pt-community"><option value="">— 选择村（社区） —</option>${communities.map((c) => `<option value="${c.code}" ${c.code === partitionUi.community ? 'selected' : ''}>${escapeHtml(c.name)}</option>`).join('')}</select></div>
    <div class="form-row"><label>目标户数</label><input type="number" id="pt-target" min="50" max="5000" step="10" value="${partitionUi.target}"></div>
    <div class="actions">
      <button type="button" class="primary" id="pt-propose" ${may && partitionUi.community && !partitionUi.busy ? '' : 'disabled'}>生成方案</button>
      <button type="button" class="danger" id="pt-commit" ${may && p && p.status === 'ready' && !partitionUi.busy ? '' : 'disabled'}>提交生效</button>
      <button type="button" class="secondary" id="pt-clear" ${p ? '' : 'disabled'}>清除预览</button>
    </div>
    <div class="form-row"><label>方案编号</label><input type="number" id="pt-open-id" min="1" step="1" value="${p ? p.id : ''}"><button type="button" class="secondary" id="pt-open">打开方案</button></div>
    <div id="pt-message" class="note">${escapeHtml(partitionUi.message)}</div>
    ${p ? `<h3>方案 #${p.id}（${escapeHtml(statusZh(p.status))}）</h3>
      ${p.status === 'ready' ? editHtml(p, may) : ''}${proposalTable(p)}${q ? `<h3>自动生成时的质量报告</h3>${qualityHtml(q)}` : ''}` : ''}`;
  el.querySelector('#pt-township').addEventListener('change', (e) => { partitionUi.township = e.target.value; partitionUi.community = ''; renderPartition(el, ctx); });
  el.querySelector('#pt-community').addEventListener('change', (e) => {
    partitionUi.community = e.target.value;
    if (partitionUi.community) api(`/divisions/${partitionUi.community}`).then((d) => d.bbox && ctx.fitBbox(d.bbox)).catch(() => {});
    renderPartition(el, ctx);
  });
  el.querySelector('#pt-target').addEventListener('input', (e) => { partitionUi.target = Number(e.target.value) || 400; });
  el.querySelector('#pt-clear').addEventListener('click', () => {
    Object.assign(partitionUi, { proposal: null, unit: null, edit: null, message: '' });
    ctx.setOverlay('proposal', null);
    ctx.setOverlay('units', null);
    renderPartition(el, ctx);
  });
  el.querySelector('#pt-propose').addEventListener('click', () => propose(el, ctx));
  el.querySelector('#pt-commit').addEventListener('click', () => commit(el, ctx));
  el.querySelector('#pt-open').addEventListener('click', () => {
    const id = Number(el.querySelector('#pt-open-id').value);
    if (id >= 1) openProposal(el, ctx, id);
  });
  bindEdits(el, ctx, may);
  const said = el.querySelector('#pt-edit-message');
  if (partitionUi.edit && said) said.scrollIntoView({ block: 'nearest' });
}

function statusZh(s) {
  return { running: '计算中', ready: '待确认', failed: '失败', committed: '已生效', superseded: '已作废' }[s] || s;
}

const QUALITY_LABELS = [
  ['grids', '网格数', 'n'], ['target', '目标户数', 'n'], ['tolerance', '允许偏差', 'p'],
  ['within_tolerance_share', '偏差在允许范围内', 'p'], ['beyond_20pct', '偏差超过 ±20% 的网格', 'n'],
  ['one_piece_share', '连片（一整块）占比', 'p'], ['boundary_on_barriers_share', '边界沿街道/河流占比', 'p'],
  ['special_grids', '专属网格', 'n'], ['communities', '社区数', 'n'],
];

function qualityHtml(q) {
  const rows = QUALITY_LABELS.filter(([k]) => typeof q[k] === 'number');
  return `<table class="kv" id="pt-quality">${rows.map(([k, label, kind]) => `<tr data-key="${k}"><th>${escapeHtml(label)}</th><td>${kind === 'p' ? pct(q[k]) : escapeHtml(fmt(q[k]))}</td></tr>`).join('')}</table>`;
}

function proposalFeatures(p) {
  const fc = p.grids || p.geojson || p.features;
  if (!fc) return [];
  return Array.isArray(fc) ? fc : fc.features || [];
}

function proposalTable(p) {
  const fs = proposalFeatures(p);
  if (!fs.length) return '';
  const tol = (p.params && p.params.tolerance) || 0.1;
  const balanced = fs.filter((f) => f.properties.deviation === null || Math.abs(f.properties.deviation) <= tol + 1e-9).length;
  const whole = fs.filter((f) => (f.properties.pieces ?? 1) === 1).length;
  return `<div class="note" id="pt-balance">${fmt(fs.length)} 个网格：${fmt(balanced)} 个户数在允许偏差内，${fmt(whole)} 个连片</div>
    <div class="table-wrap"><table class="data" id="pt-table"><tr><th>网格编码</th><th class="num">户数</th><th class="num">偏差</th><th class="num">紧凑度</th><th class="num">连片</th></tr>
    ${fs.map((f) => { const r = f.properties || {}; const off = r.deviation !== null && r.deviation !== undefined && Math.abs(r.deviation) > tol + 1e-9; return `<tr data-code="${escapeHtml(r.grid_code || '')}" data-label="${r.label}" class="${off || (r.pieces ?? 1) !== 1 ? 'flag' : ''}"><td>${escapeHtml(r.grid_code || r.label || '')}</td><td class="num">${fmt(r.households)}</td><td class="num">${r.deviation !== undefined && r.deviation !== null ? pct(r.deviation) : '—'}</td><td class="num">${r.polsby_popper !== undefined ? Number(r.polsby_popper).toFixed(2) : '—'}</td><td class="num">${(r.pieces ?? 1) === 1 ? '是' : `<span class="error-text">${fmt(r.pieces)} 块</span>`}</td></tr>`; }).join('')}</table></div>`;
}

// ---------------------------------------------------------------- 网格规划: editing a proposal
// Each edit goes to POST /grids/proposals/{id}/edits, which validates it (contiguity: a refused
// edit changes nothing, 422) and re-dissolves the grids; the page then re-reads the proposal,
// so the table, the map and the checks always show the database's figures.

function communityGrids(p) {
  return proposalFeatures(p).filter((f) => f.properties.community_code === partitionUi.community)
    .sort((a, b) => a.properties.label - b.properties.label);
}

function gridOption(f, selected) {
  const r = f.properties;
  return `<option value="${r.label}" ${selected === r.label ? 'selected' : ''}>${escapeHtml((r.grid_code || '').slice(-3))}（${fmt(r.households)}户）</option>`;
}

function editHtml(p, may) {
  const grids = communityGrids(p);
  const u = partitionUi.unit;
  const home = u ? grids.find((f) => f.properties.label === u.label) : null;
  const dis = may && !partitionUi.busy ? '' : 'disabled';
  const e = partitionUi.edit;
  return `<h3>调整方案</h3>
    <div class="note">在地图上单击一个单元（街区或楼栋单元）将其选中，再选择相邻网格移入；也可合并两个相邻网格或拆分一个网格。每次调整都重新校验连片和户数均衡，不连片的调整会被拒绝。</div>
    <div class="form-row"><label>选中单元</label><span id="pt-unit">${u ? `单元 ${u.idx}（${fmt(u.households)}户，现属 ${escapeHtml(home ? home.properties.grid_code.slice(-3) : String(u.label))}）` : '未选择'}</span></div>
    <div class="form-row"><label>移入网格</label><select id="pt-move-to" ${dis}>${grids.filter((f) => u && u.borders.includes(f.properties.label)).map((f) => gridOption(f)).join('')}</select>
      <button type="button" class="primary" id="pt-move" ${may && u && u.borders.length && !partitionUi.busy ? '' : 'disabled'}>移动</button></div>
    <div class="form-row"><label>合并</label><select id="pt-merge-a" ${dis}>${grids.map((f, i) => gridOption(f, i === 0 ? f.properties.label : null)).join('')}</select>
      <label>并入</label><select id="pt-merge-b" ${dis}>${grids.map((f, i) => gridOption(f, i === 1 ? f.properties.label : null)).join('')}</select>
      <button type="button" class="secondary" id="pt-merge" ${dis}>合并</button></div>
    <div class="form-row"><label>拆分</label><select id="pt-split-grid" ${dis}>${grids.map((f) => gridOption(f)).join('')}</select>
      <button type="button" class="secondary" id="pt-split" ${dis}>拆分为两个</button></div>
    <div id="pt-edit-message" class="note ${e && !e.ok ? 'error-text' : ''}">${e ? escapeHtml(e.text) : ''}</div>`;
}

function bindEdits(el, ctx, may) {
  const p = partitionUi.proposal;
  const editing = Boolean(p && p.status === 'ready' && p.units);
  ctx.state.pickUnit = editing ? (props) => {
    // the grids this unit borders come from the API's unit graph (the one a move is checked on)
    const idx = Number(props.idx);
    const unit = partitionUi.proposal.units.features.find((f) => f.properties.idx === idx);
    const borders = unit && Array.isArray(unit.properties.borders) ? unit.properties.borders : [];
    partitionUi.unit = { idx, label: Number(props.label), households: Number(props.households), borders };
    ctx.hooks.pickedUnit = partitionUi.unit;
    showUnits(ctx);
    renderPartition(el, ctx);
  } : null;
  if (!editing || !may) return;
  const code = partitionUi.community;
  const value = (sel) => Number(el.querySelector(sel).value);
  el.querySelector('#pt-move').addEventListener('click', () => edit(el, ctx, { op: 'move', community_code: code, unit: partitionUi.unit.idx, to_label: value('#pt-move-to') }));
  el.querySelector('#pt-merge').addEventListener('click', () => edit(el, ctx, { op: 'merge', community_code: code, labels: [value('#pt-merge-a'), value('#pt-merge-b')] }));
  el.querySelector('#pt-split').addEventListener('click', () => edit(el, ctx, { op: 'split', community_code: code, labels: [value('#pt-split-grid')] }));
}

const OPS_ZH = { move: '移动单元', merge: '合并网格', split: '拆分网格' };

async function edit(el, ctx, body) {
  const p = partitionUi.proposal;
  partitionUi.busy = true;
  renderPartition(el, ctx);
  try {
    const report = await ctx.api(`/grids/proposals/${p.id}/edits`, { method: 'POST', body });
    const warn = (report.warnings || []).map((w) => `${fmt(w.households)}户超出 ${p.params.target}±${Math.round((p.params.tolerance || 0.1) * 100)}%`);
    partitionUi.edit = { ok: true, text: `已${OPS_ZH[body.op]}，校验通过：各网格连片${warn.length ? `；提示：${warn.join('，')}` : '，户数均在允许偏差内'}。` };
    ctx.hooks.lastEdit = { ok: true, body, report };
    partitionUi.unit = null;
    await loadProposal(ctx, p.id);
  } catch (err) {
    if (isAbort(err)) throw err;
    partitionUi.edit = { ok: false, text: `调整被拒绝：${err.message}` };
    ctx.hooks.lastEdit = { ok: false, body, status: err.status, message: err.message };
  }
  partitionUi.busy = false;
  renderPartition(el, ctx);
}

function showUnits(ctx) {
  const p = partitionUi.proposal;
  const sel = partitionUi.unit ? partitionUi.unit.idx : -1;
  const fs = p && p.units ? p.units.features.map((f) => ({ ...f, properties: { ...f.properties, selected: f.properties.idx === sel } })) : [];
  ctx.setOverlay('units', { type: 'FeatureCollection', features: fs });
}

/** Read a proposal (with the chosen community's units once it is ready) and draw it. */
async function loadProposal(ctx, id) {
  let p = await ctx.api(`/grids/proposals/${id}`);
  if (p.status === 'ready' || p.status === 'committed') {
    if (!p.community_codes.includes(partitionUi.community)) partitionUi.community = p.community_codes[0];
    partitionUi.township = partitionUi.community.slice(0, 9);
    if (p.status === 'ready') p = await ctx.api(`/grids/proposals/${id}?units=${partitionUi.community}`);
  }
  partitionUi.proposal = p;
  const fs = proposalFeatures(p).map((f) => ({
    ...f,
    properties: { ...f.properties, color: deviationColor(f.properties.deviation || 0), label_text: `${(f.properties.grid_code || '').slice(-3)}\n${fmt(f.properties.households)}户` },
  }));
  ctx.setOverlay('proposal', { type: 'FeatureCollection', features: fs });
  showUnits(ctx);
  ctx.hooks.lastProposal = p;
  return p;
}

async function openProposal(el, ctx, id) {
  partitionUi.busy = true;
  partitionUi.unit = null;
  partitionUi.edit = null;
  renderPartition(el, ctx);
  try {
    const p = await loadProposal(ctx, id);
    partitionUi.message = `已打开方案 #${p.id}。`;
    if (p.bbox) ctx.fitBbox(p.bbox);
  } catch (err) {
    if (isAbort(err)) throw err;
    partitionUi.message = err.message;
  }
  partitionUi.busy = false;
  renderPartition(el, ctx);
}

async function propose(el, ctx) {
  const { api } = ctx;
  partitionUi.busy = true;
  partitionUi.message = '正在计算划分方案…';
  renderPartition(el, ctx);
  try {
    const job = await api('/grids/proposals', { method: 'POST', body: { communities: [partitionUi.community], target: partitionUi.target } });
    let p = null;
    for (let i = 0; i < 240; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      p = await api(`/grids/proposals/${job.id}?geometry=false`);
      if (p.status !== 'running' && p.status !== 'pending') break;
      // eslint-disable-next-line no-await-in-loop
      await new Promise((r) => { setTimeout(r, 1000); });
    }
    partitionUi.unit = null;
    partitionUi.edit = null;
    p = await loadProposal(ctx, job.id);
    partitionUi.message = p.status === 'ready' ? '方案已生成，地图上为预览（颜色：户数偏差）。可在地图上调整，确认无误后提交生效。' : (p.error || `方案状态：${statusZh(p.status)}`);
  } catch (err) {
    partitionUi.message = err.message;
  }
  partitionUi.busy = false;
  renderPartition(el, ctx);
}

async function commit(el, ctx) {
  const p = partitionUi.proposal;
  // eslint-disable-next-line no-alert
  if (!p || !window.confirm(translate(`提交方案 #${p.id}？现行网格将归档，新网格生效并重新归属数据。`))) return;
  partitionUi.busy = true;
  renderPartition(el, ctx);
  try {
    await ctx.api(`/grids/proposals/${p.id}/commit`, { method: 'POST' });
    partitionUi.message = '方案已提交生效。';
    partitionUi.proposal = null;
    partitionUi.unit = null;
    partitionUi.edit = null;
    ctx.setOverlay('proposal', null);
    ctx.setOverlay('units', null);
    ctx.hooks.lastCommit = p.id;
    ctx.state.gridMetrics = null;
    ctx.loadGridMetrics();
    ctx.reloadTiles();
  } catch (err) { partitionUi.message = err.message; }
  partitionUi.busy = false;
  renderPartition(el, ctx);
}

// ---------------------------------------------------------------- 风险普查: data quality
const QUALITY_CHECKS = [
  ['geohazard_points', 'two_cards_issued=false', '地灾隐患点未发放“两卡”'],
  ['geohazard_points', 'closed=false AND threatened_people>=100', '威胁百人以上的在册地灾点'],
  ['enterprises', 'assessed_at IS NULL', '企业未做风险评估'],
  ['shelters', "status='closed'", '避难场所未开放'],
  ['safety_hazards', "status<>'closed'", '未销号隐患'],
];

async function count(api, layer, filter) {
  const q = new URLSearchParams({ filter, limit: '1' });
  const a = await api(`/ogc/collections/${layer}/items?${q}`);
  return a.numberMatched ?? a.features.length;
}

async function renderQuality(el, ctx) {
  const { state, api } = ctx;
  if (!state.gridMetrics) await ctx.loadGridMetrics();
  const rows = state.gridMetrics || [];
  const t = state.target;
  const checks = QUALITY_CHECKS.filter(([l]) => state.catalogue[l]);
  const counts = await Promise.all(checks.map(([l, f]) => count(api, l, f).catch(() => null)));
  const gridFlags = [
    ['zero', '网格内无户数（楼栋未入库或网格错位）', rows.filter((r) => !r.households)],
    ['over', `户数偏离目标 ${t} 超过 ±20% 的网格`, rows.filter((r) => Math.abs(r.households - t) / t > 0.2)],
    ['nostaff', '未配备网格员的网格', rows.filter((r) => !r.workers)],
  ];
  el.innerHTML = `
    <div class="note">普查与台账数据的质量提示：单击一项在地图上标出相关要素。</div>
    <table class="data" id="quality-table"><tr><th>检查项</th><th class="num">数量</th></tr>
      ${checks.map(([l, f, label], i) => `<tr class="clickable ${counts[i] ? 'flag' : ''}" data-layer="${l}" data-filter="${escapeHtml(f)}"><td>${escapeHtml(label)}</td><td class="num">${counts[i] === null ? '—' : fmt(counts[i])}</td></tr>`).join('')}
      ${gridFlags.map(([k, label, list]) => `<tr class="clickable ${list.length ? 'flag' : ''}" data-grids="${k}"><td>${escapeHtml(label)}</td><td class="num">${fmt(list.length)}</td></tr>`).join('')}
    </table>
    <h3>各街道普查汇总</h3><div id="quality-stats" class="table-wrap"><div class="empty">加载中…</div></div>`;
  el.querySelectorAll('tr[data-layer]').forEach((tr) => tr.addEventListener('click', async () => {
    const q = new URLSearchParams({ filter: tr.dataset.filter, limit: '500' });
    const a = await api(`/ogc/collections/${tr.dataset.layer}/items?${q}`);
    ctx.setOverlay('highlight', { type: 'FeatureCollection', features: a.features.map((f) => ({ ...f, properties: {} })) });
    ctx.setVisible(tr.dataset.layer, true);
    if (a.features.length) ctx.status(`已在地图上标出 ${a.features.length} 个要素`);
  }));
  el.querySelectorAll('tr[data-grids]').forEach((tr) => tr.addEventListener('click', async () => {
    const list = gridFlags.find(([k]) => k === tr.dataset.grids)[2].slice(0, 200);
    if (!list.length) return;
    const filter = list.length === 1 ? `grid_code='${list[0].grid_code}'` : `grid_code IN (${list.map((r) => `'${r.grid_code}'`).join(',')})`;
    const a = await api(`/ogc/collections/grids/items?${new URLSearchParams({ filter, limit: '500' })}`);
    ctx.setOverlay('highlight', { type: 'FeatureCollection', features: a.features.map((f) => ({ ...f, properties: {} })) });
    ctx.status(`已在地图上标出 ${a.features.length} 个网格`);
  }));
  const stats = await api(`/stats/divisions${state.scope ? `?parent=${state.scope.code}` : ''}`);
  const cols = [['buildings', '房屋'], ['households', '户数'], ['population', '人口'], ['enterprises', '企业'], ['geohazard_points', '地灾点'], ['shelters', '避难场所']];
  el.querySelector('#quality-stats').innerHTML = `<table class="data"><tr><th>单位</th>${cols.map(([, l]) => `<th class="num">${l}</th>`).join('')}</tr>
    ${[...stats.rows, { ...stats.total, name: '合计' }].map((r) => `<tr><td>${escapeHtml(r.name)}</td>${cols.map(([k]) => `<td class="num">${fmt(r[k])}</td>`).join('')}</tr>`).join('')}</table>`;
}

// ---------------------------------------------------------------- 风险普查: import history
const IMPORT_STATUS = { pending: '排队中', running: '导入中', done: '已完成', succeeded: '已完成', failed: '失败', rejected: '已拒绝', dry_run: '试导入' };
const TARGET_ZH = {
  enterprise: '企业', building: '房屋', facility: '公共服务设施', geohazard_point: '地灾隐患点', geohazard_zone: '地灾风险区',
  shelter: '避难场所', safety_hazard: '隐患', forest_patch: '林班', fire_point: '火点', barrier_line: '分隔线', grid: '网格',
};

async function renderImports(el, ctx) {
  const { api } = ctx;
  const items = await api('/imports');
  el.innerHTML = `
    <div class="note">本辖区最近 50 次数据导入（命令行 <code>gis-service import</code> 或接口 <code>POST /imports</code>）。单击查看逐行问题。</div>
    ${items.length ? `<div class="table-wrap"><table class="data" id="imports-table"><tr><th>时间</th><th>数据</th><th>文件</th><th>状态</th><th class="num">读入</th><th class="num">新增/更新</th><th class="num">拒绝</th></tr>
      ${items.map((b) => `<tr class="clickable ${b.rows_rejected || b.error_code ? 'flag' : ''}" data-id="${b.id}"><td>${escapeHtml(String(b.created_at || '').slice(5, 16).replace('T', ' '))}</td>
      <td>${escapeHtml(TARGET_ZH[b.target] || b.target || '')}</td><td title="${escapeHtml(b.file_name || '')}">${escapeHtml(String(b.file_name || '').slice(0, 16))}</td>
      <td>${escapeHtml(IMPORT_STATUS[b.status] || b.status || '')}</td><td class="num">${fmt(b.rows_read)}</td>
      <td class="num">${fmt(b.rows_inserted)}/${fmt(b.rows_updated)}</td><td class="num">${fmt(b.rows_rejected)}</td></tr>`).join('')}</table></div>` : '<div class="empty">暂无导入记录</div>'}
    <div id="import-detail"></div>`;
  el.querySelectorAll('tr[data-id]').forEach((tr) => tr.addEventListener('click', async () => {
    const d = await api(`/imports/${tr.dataset.id}`);
    const problems = d.problems || [];
    const facts = [['文件', d.file_name], ['格式', d.fmt], ['编码', d.encoding], ['坐标系', d.crs_label || d.source_crs],
      ['读入行数', d.rows_read], ['新增', d.rows_inserted], ['更新', d.rows_updated], ['修复', d.rows_repaired], ['拒绝', d.rows_rejected],
      ['导入人', d.actor], ['错误', d.error_detail]].filter(([, v]) => v !== null && v !== undefined && v !== '');
    el.querySelector('#import-detail').innerHTML = `<h3>导入 #${escapeHtml(String(d.id))}（${escapeHtml(IMPORT_STATUS[d.status] || d.status || '')}）</h3>
      <table class="kv">${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(fmt(v))}</td></tr>`).join('')}</table>
      ${problems.length ? `<h3>逐行问题（前 ${fmt(problems.length)} 条）</h3><div class="table-wrap"><table class="data" id="import-problems"><tr><th class="num">行号</th><th>字段</th><th>问题</th></tr>
      ${problems.slice(0, 500).map((e) => `<tr class="${e.repaired ? '' : 'flag'}"><td class="num">${escapeHtml(fmt(e.row))}</td><td>${escapeHtml(e.column || '')}</td><td>${escapeHtml(e.reason_zh || e.reason || '')}${e.repaired ? '（已修复）' : ''}</td></tr>`).join('')}</table></div>` : '<div class="note ok-text">没有问题行</div>'}`;
  }));
}

// ---------------------------------------------------------------- 指挥调度: readiness summary
async function renderCommand(el, ctx) {
  const { api, state } = ctx;
  const [stats, warnings, enterprises, points, shelters] = await Promise.all([
    api(`/stats/divisions${state.scope ? `?parent=${state.scope.code}` : ''}`),
    state.config.warnings ? api('/warnings').catch(() => null) : Promise.resolve(null),
    api(`/ogc/collections/enterprises/items?${new URLSearchParams({ filter: "risk_level IN ('red','orange')", sortby: 'risk_level', limit: '100' })}`),
    api(`/ogc/collections/geohazard_points/items?${new URLSearchParams({ filter: 'closed=false', sortby: 'danger_grade', limit: '100' })}`).catch(() => ({ features: [] })),
    api(`/ogc/collections/shelters/items?${new URLSearchParams({ sortby: '-capacity', limit: '100' })}`),
  ]);
  const t = stats.total;
  const ws = warnings ? warnings.features : [];
  ctx.setOverlay('warnings', warnings);
  state.warnings = ws;
  const gradeZh = (g) => ({ I: 'Ⅰ级（特大型）', II: 'Ⅱ级（大型）', III: 'Ⅲ级（中型）', IV: 'Ⅳ级（小型）' }[g] || g);
  el.innerHTML = `
    <div class="cards" id="command-cards">
      ${stat(fmt(t.enterprises_red), '重大风险企业（红）', 'red')}${stat(fmt(t.enterprises_orange), '较大风险企业（橙）', 'orange')}${stat(fmt(t.hazards_overdue), '逾期未销号隐患', t.hazards_overdue ? 'red' : '')}
      ${stat(fmt(t.geohazard_points), '地灾隐患点')}${stat(fmt(t.threatened_people), '受威胁人数')}${stat(`${fmt(t.shelters)} / ${fmt(t.shelter_capacity)}`, '避难场所 / 容量（人）')}
    </div>
    <h3>生效预警（${fmt(ws.length)}）</h3>
    ${warnings === null ? '<div class="note">预警接口尚未启用。</div>' : ws.length ? ws.map((w) => `<div class="person clickable" data-warning="${w.id}"><span><span class="pill" style="background:${escapeHtml(w.properties.color || '#e60000')}">${escapeHtml(w.properties.level_zh || w.properties.level)}</span> ${escapeHtml(w.properties.kind)}</span><span class="note">${fmt(w.properties.area_km2)} km²</span></div>`).join('') : '<div class="note">当前无生效预警。</div>'}
    <h3>红橙企业（${fmt(enterprises.features.length)}）</h3>
    <div class="table-wrap"><table class="data" id="command-enterprises"><tr><th>企业</th><th>行业</th><th>等级</th></tr>
      ${enterprises.features.map((f, i) => `<tr class="clickable" data-i="${i}"><td>${escapeHtml(f.properties.name)}</td><td>${escapeHtml(VALUES.sector[f.properties.sector] || f.properties.sector)}</td><td><span class="pill" style="background:${f.properties.risk_level === 'red' ? '#e60000' : '#ff8c00'}">${f.properties.risk_level === 'red' ? '重大' : '较大'}</span></td></tr>`).join('')}</table></div>
    <h3>在册地质灾害隐患点</h3>
    <div class="table-wrap"><table class="data" id="command-geohazards"><tr><th>名称</th><th>灾种</th><th>险情等级</th><th class="num">威胁人数</th></tr>
      ${points.features.map((f, i) => `<tr class="clickable" data-i="${i}"><td>${escapeHtml(f.properties.name)}</td><td>${escapeHtml(VALUES.kind[f.properties.kind] || f.properties.kind)}</td><td>${escapeHtml(gradeZh(f.properties.danger_grade))}</td><td class="num">${fmt(f.properties.threatened_people)}</td></tr>`).join('')}</table></div>
    <h3>避难场所</h3>
    <div class="table-wrap"><table class="data" id="command-shelters"><tr><th>名称</th><th>状态</th><th class="num">容量</th><th class="num">在场</th></tr>
      ${shelters.features.map((f, i) => `<tr class="clickable" data-i="${i}"><td>${escapeHtml(f.properties.name)}</td><td>${escapeHtml(VALUES.status[f.properties.status] || f.properties.status || '')}</td><td class="num">${fmt(f.properties.capacity)}</td><td class="num">${fmt(f.properties.current_occupancy)}</td></tr>`).join('')}</table></div>`;
  const bind = (sel, list) => el.querySelectorAll(`${sel} tr[data-i]`).forEach((tr) => tr.addEventListener('click', () => ctx.showFeature(list[Number(tr.dataset.i)].geometry)));
  bind('#command-enterprises', enterprises.features);
  bind('#command-geohazards', points.features);
  bind('#command-shelters', shelters.features);
  el.querySelectorAll('[data-warning]').forEach((d) => d.addEventListener('click', () => {
    const w = ws.find((x) => String(x.id) === d.dataset.warning);
    if (w) { ctx.showFeature(w.geometry); ctx.state.impactWarning = w.id; }
  }));
}

export { STAFF_ROLES };
