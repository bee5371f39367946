// 影响分析 (issue 9's API, /work/helpers/IMPACT_API.md): a footprint — drawn area, warning,
// geohazard risk zone or raster threshold — → per-village / per-grid table, people to call,
// shelters with remaining capacity, 转移清单 (CSV/XLSX).

import { isAbort, latestOnly } from './api.js';
import { STAFF_ROLES, VALUES, escapeHtml, fmt } from './i18n.js';

const ui = {
  mode: 'draw', geometry: null, warning: '', zone: '', raster: '', rasterMin: '', result: null,
  body: null, busy: false, error: '',
};
const impactSignal = latestOnly();

const DUTIES = {
  baobao: '包保责任人', prevention_lead: '防灾责任人', monitor: '监测员', patroller: '巡查员', warner: '预警员',
  evacuation_lead: '撤离负责人', ranger: '护林员', disaster_info_officer: '灾害信息员', regulator: '监管责任人',
  enterprise_principal: '企业主要负责人',
};
const WARNING_LEVELS = { blue: '蓝色', yellow: '黄色', orange: '橙色', red: '红色' };
const LEVEL_ZH = { city: '市级', county: '县级', township: '乡级', village: '村级', group: '组级' };

function footprintBody(ctx) {
  if (ui.mode === 'draw') return ui.geometry ? { geometry: ui.geometry, crs: 'wgs84' } : null;
  if (ui.mode === 'warning') return ui.warning ? { warning_id: Number(ui.warning) } : null;
  if (ui.mode === 'zone') return ui.zone ? { zone_id: Number(ui.zone) } : null;
  if (ui.mode === 'raster' && ui.raster) {
    const layer = ctx.state.hazardLayers.find((h) => h.key === ui.raster);
    if (ui.rasterMin !== '' && !Number.isNaN(Number(ui.rasterMin))) return { raster: { layer: ui.raster, min: Number(ui.rasterMin) } };
    if (layer && layer.scheme && layer.scheme.classes.length) return { raster: { layer: ui.raster, class: layer.scheme.classes[0].key } };
  }
  return null;
}

export async function renderImpact(el, ctx) {
  const { state, api } = ctx;
  if (!state.config.impact) { el.innerHTML = '<div class="empty">影响分析接口尚未启用。</div>'; return; }
  const [zones, warnings] = await Promise.all([
    api(`/ogc/collections/geohazard_zones/items?${new URLSearchParams({ limit: '200', sortby: 'risk_level' })}`).catch(() => ({ features: [] })),
    state.config.warnings ? api('/warnings').catch(() => ({ features: [] })) : Promise.resolve({ features: [] }),
  ]);
  state.warnings = warnings.features;
  const rasters = state.hazardLayers.filter((h) => h.data_type === 'raster');
  const zoneRisk = ctx.state.schemes.geohazard_risk_zone;
  const riskZh = zoneRisk ? Object.fromEntries(zoneRisk.classes.map((c) => [c.key, c.zh_name])) : {};
  const layer = rasters.find((h) => h.key === ui.raster);
  const mayWarn = state.config.warnings && ['admin', 'commander'].includes(state.me.role);
  el.innerHTML = `
    <div class="note">选择受灾范围，统计范围内各村（社区）、网格的房屋、人口、弱势人员、学校医院、红橙企业和地灾点，列出需叫应的责任人，并按容量分配就近避难场所。</div>
    <div class="form-row"><label>范围</label><select id="im-mode">
      <option value="draw">在地图上绘制</option><option value="warning">预警区域（${fmt(warnings.features.length)}）</option>
      <option value="zone">地质灾害风险区</option><option value="raster" ${rasters.length ? '' : 'disabled'}>致灾栅格阈值</option></select></div>
    <div id="im-source">
      ${ui.mode === 'draw' ? `<div class="actions"><button type="button" class="secondary" id="im-draw">▱ 绘制多边形</button><button type="button" class="secondary" id="im-circle">◯ 绘制圆</button>
        <span class="note">${ui.geometry ? '已绘制范围' : '尚未绘制'}</span></div>
        ${ui.geometry && mayWarn ? `<div class="form-row"><label>发布预警</label><input id="im-wkind" value="暴雨预警" maxlength="40">
          <select id="im-wlevel">${Object.entries(WARNING_LEVELS).map(([k, t]) => `<option value="${k}">${t}</option>`).join('')}</select>
          <button type="button" class="danger" id="im-warn">发布</button></div>` : ''}` : ''}
      ${ui.mode === 'warning' ? `<div class="form-row"><label>预警</label><select id="im-warning"><option value="">— 选择生效预警 —</option>
        ${warnings.features.map((w) => `<option value="${w.id}" ${String(w.id) === ui.warning ? 'selected' : ''}>${escapeHtml(w.properties.level_zh || w.properties.level)} · ${escapeHtml(w.properties.kind)}</option>`).join('')}</select></div>` : ''}
      ${ui.mode === 'zone' ? `<div class="form-row"><label>风险区</label><select id="im-zone"><option value="">— 选择风险区 —</option>
        ${zones.features.map((z) => `<option value="${z.id}" ${String(z.id) === ui.zone ? 'selected' : ''}>${escapeHtml(z.properties.name || z.properties.code)}（${escapeHtml(riskZh[z.properties.risk_level] || z.properties.risk_level)}）</option>`).join('')}</select></div>` : ''}
      ${ui.mode === 'raster' ? `<div class="form-row"><label>图层</label><select id="im-raster"><option value="">— 选择致灾图层 —</option>
        ${rasters.map((h) => `<option value="${escapeHtml(h.key)}" ${h.key === ui.raster ? 'selected' : ''}>${escapeHtml(h.title)}</option>`).join('')}</select></div>
        <div class="form-row"><label>阈值 ≥</label><input id="im-min" type="number" step="any" value="${escapeHtml(ui.rasterMin)}" placeholder="${layer && layer.scheme ? escapeHtml(`${layer.scheme.classes[0].min}`) : ''}"><span class="note">${escapeHtml(layer && layer.unit ? layer.unit : '')}</span></div>` : ''}
    </div>
    <div class="actions"><button type="button" class="primary" id="im-run" ${ui.busy ? 'disabled' : ''}>开始分析</button>
      <button type="button" class="secondary" data-im-dl="xlsx" ${ui.result ? '' : 'disabled'}>转移清单 Excel</button>
      <button type="button" class="secondary" data-im-dl="csv" ${ui.result ? '' : 'disabled'}>CSV</button></div>
    ${ui.error ? `<div class="note error-text">${escapeHtml(ui.error)}</div>` : ''}
    <div id="impact-result">${ui.busy ? '<div class="empty">正在分析…</div>' : resultHtml(ui.result)}</div>`;
  el.querySelector('#im-mode').value = ui.mode;
  el.querySelector('#im-mode').addEventListener('change', (e) => { ui.mode = e.target.value; renderImpact(el, ctx); });
  const on = (sel, ev, fn) => { const n = el.querySelector(sel); if (n) n.addEventListener(ev, fn); };
  on('#im-warning', 'change', (e) => {
    ui.warning = e.target.value;
    const w = state.warnings.find((x) => String(x.id) === ui.warning);
    if (w) ctx.showFeature(w.geometry);
  });
  on('#im-zone', 'change', (e) => {
    ui.zone = e.target.value;
    const z = zones.features.find((x) => String(x.id) === ui.zone);
    if (z) ctx.showFeature(z.geometry);
  });
  on('#im-raster', 'change', (e) => {
    ui.raster = e.target.value;
    if (ui.raster) ctx.setVisible(`hz:${ui.raster}`, true);
    renderImpact(el, ctx);
  });
  on('#im-min', 'change', (e) => { ui.rasterMin = e.target.value; });
  const startDraw = (kind) => {
    ctx.state.drawPurpose = (geometry) => { ui.geometry = geometry; ui.mode = 'draw'; run(el, ctx); };
    ctx.draw.start(kind);
  };
  on('#im-draw', 'click', () => startDraw('polygon'));
  on('#im-circle', 'click', () => startDraw('circle'));
  on('#im-run', 'click', () => run(el, ctx));
  on('#im-warn', 'click', async () => {
    try {
      const w = await api('/warnings', {
        method: 'POST',
        body: { kind: el.querySelector('#im-wkind').value || '预警', source_kind: 'other', level: el.querySelector('#im-wlevel').value, geometry: ui.geometry, crs: 'wgs84' },
      });
      ctx.hooks.lastWarning = w;
      const all = await api('/warnings');
      ctx.setOverlay('warnings', all);
      ui.mode = 'warning';
      ui.warning = String(w.id);
      ctx.status(`已发布预警：${w.properties.kind}`);
      renderImpact(el, ctx);
    } catch (err) { ctx.status(err.message, { error: true }); }
  });
  el.querySelectorAll('[data-im-dl]').forEach((b) => b.addEventListener('click', async () => {
    try {
      await ctx.download(`/analysis/impact?format=${b.dataset.imDl}`, { method: 'POST', body: ui.body });
    } catch (err) { ctx.status(err.message, { error: true }); }
  }));
  bindResult(el, ctx);
}

export async function run(el, ctx) {
  const body = footprintBody(ctx);
  if (!body) { ui.error = '请先选择或绘制受灾范围'; renderImpact(el, ctx); return; }
  ui.busy = true;
  ui.error = '';
  ui.body = body;
  if (ctx.state.tab === 'impact') renderImpact(el, ctx);
  const signal = impactSignal();
  try {
    ui.result = await ctx.api('/analysis/impact', { method: 'POST', body: { ...body, shelters: 10 }, signal });
    ctx.hooks.lastImpact = { body, result: ui.result };
    showOnMap(ctx, ui.result);
  } catch (err) {
    if (isAbort(err)) return;
    ui.result = null;
    ui.error = err.message;
  }
  ui.busy = false;
  if (ctx.state.tab === 'impact') renderImpact(el, ctx);
}

function shelterColor(s) {
  if (!s.capacity) return '#9ca3af';
  const left = s.remaining / s.capacity;
  return left > 0.5 ? '#1a7f37' : left > 0.1 ? '#d97706' : '#c8161d';
}

function showOnMap(ctx, r) {
  const features = [];
  if (r.footprint && r.footprint.geometry) features.push({ type: 'Feature', properties: {}, geometry: r.footprint.geometry });
  (r.shelters || []).forEach((s) => features.push({
    type: 'Feature', properties: { name: s.name, color: shelterColor(s) }, geometry: { type: 'Point', coordinates: [s.lon, s.lat] },
  }));
  ctx.setOverlay('impact', { type: 'FeatureCollection', features });
  if (r.footprint && r.footprint.geometry) ctx.showFeature(r.footprint.geometry);
}

function label(r, key) { return (r.labels_zh && r.labels_zh[key]) || key; }

function resultHtml(r) {
  if (!r) return '';
  const cols = (r.columns || []).filter((c) => ['households', 'population', 'vulnerable', 'buildings', 'facilities_school', 'facilities_hospital', 'facilities_welfare_home', 'enterprises_red', 'enterprises_orange', 'geohazard_points'].includes(c));
  const t = r.totals || {};
  const main = ['households', 'population', 'vulnerable'].filter((c) => c in t);
  const tableCols = ['households', 'population', 'vulnerable'].filter((c) => (r.columns || []).includes(c));
  const contacts = r.contacts || [];
  return `
    <div class="note">范围面积 ${fmt(r.footprint && r.footprint.area_km2)} 平方公里 · 用时 ${fmt(r.timing_ms)} 毫秒</div>
    <div class="cards" id="impact-cards">${main.map((c) => `<div class="stat ${c === 'vulnerable' ? 'orange' : ''}"><div class="v">${fmt(t[c])}</div><div class="k">${escapeHtml(label(r, c))}</div></div>`).join('')}</div>
    <table class="data" id="impact-totals">${cols.filter((c) => !main.includes(c)).map((c) => `<tr data-key="${c}"><td>${escapeHtml(label(r, c))}</td><td class="num">${fmt(t[c])}</td></tr>`).join('')}</table>
    <h3>按村（社区）（${fmt((r.by_village || []).length)}）</h3>
    <div class="table-wrap"><table class="data" id="impact-villages"><tr><th>村（社区）</th>${tableCols.map((c) => `<th class="num">${escapeHtml(label(r, c))}</th>`).join('')}</tr>
      ${(r.by_village || []).map((v) => `<tr data-code="${escapeHtml(v.village_code)}"><td>${escapeHtml(v.village)}</td>${tableCols.map((c) => `<td class="num">${fmt(v[c])}</td>`).join('')}</tr>`).join('')}</table></div>
    <h3>按网格（${fmt((r.by_grid || []).length)}）</h3>
    <div class="table-wrap"><table class="data" id="impact-grids"><tr><th>网格</th>${tableCols.map((c) => `<th class="num">${escapeHtml(label(r, c))}</th>`).join('')}</tr>
      ${(r.by_grid || []).map((g) => `<tr class="clickable" data-code="${escapeHtml(g.grid_code || '')}"><td>${escapeHtml(g.grid_name || g.grid_code || '（网格外）')}</td>${tableCols.map((c) => `<td class="num">${fmt(g[c])}</td>`).join('')}</tr>`).join('')}</table></div>
    <h3>需叫应人员（${fmt(contacts.length)}）</h3>
    <div class="table-wrap" id="impact-contacts">${contacts.map((p) => `<div class="person"><span><span class="role ${p.role === 'grid_leader' ? 'leader' : ''}">${escapeHtml(p.role === 'responsible' ? (DUTIES[p.duty] || '责任人') : (STAFF_ROLES[p.role] || p.role))}</span>${escapeHtml(p.name)}
      <span class="note">${escapeHtml(LEVEL_ZH[p.level] || '')} ${escapeHtml(p.target_name || '')}</span></span><span>${p.phone ? `<a href="tel:${escapeHtml(p.phone)}">${escapeHtml(p.phone)}</a>` : '—'}</span></div>`).join('') || '<div class="note">无</div>'}</div>
    <h3>就近避难场所</h3>
    <div class="table-wrap"><table class="data" id="impact-shelters"><tr><th>场所</th><th class="num">距离</th><th class="num">剩余容量</th><th class="num">分配</th></tr>
      ${(r.shelters || []).map((s) => `<tr class="clickable" data-lon="${s.lon}" data-lat="${s.lat}"><td><span class="sw circle" style="background:${shelterColor(s)}"></span> ${escapeHtml(s.name)}</td><td class="num">${fmt(Math.round(s.distance_m || 0))} 米</td><td class="num">${fmt(s.remaining)} / ${fmt(s.capacity)}</td><td class="num">${fmt(s.assigned)}</td></tr>`).join('')}</table></div>
    ${(r.unassigned || []).length ? `<div class="note error-text">尚有 ${fmt(r.unassigned.reduce((a, u) => a + (u.people || 0), 0))} 人未能分配到避难场所（容量不足）。</div>` : ''}
    ${(r.enterprises || []).length ? `<h3>范围内红橙企业（${fmt(r.enterprises.length)}）</h3>${r.enterprises.map((e) => `<div class="person"><span>${escapeHtml(e.name)}</span><span class="note">${escapeHtml(VALUES.sector[e.sector] || e.sector || '')}</span></div>`).join('')}` : ''}`;
}

function bindResult(el, ctx) {
  el.querySelectorAll('#impact-grids tr[data-code]').forEach((tr) => tr.addEventListener('click', () => tr.dataset.code && ctx.zoomToGrid(tr.dataset.code)));
  el.querySelectorAll('#impact-shelters tr[data-lon]').forEach((tr) => tr.addEventListener('click', () => ctx.showFeature({ type: 'Point', coordinates: [Number(tr.dataset.lon), Number(tr.dataset.lat)] })));
}
