// The web map: login, one MapLibre map over our own vector tiles, three views (网格规划 /
// 风险普查 / 指挥调度), layer tree, legend, popups, locate, search, drawing → area summary.
/* global maplibregl, pmtiles */

import {
  api, authHeaders, debounce, download, early, isAbort, latestOnly, onUnauthorized, session,
} from './api.js';
import { DRAW_SOURCE, DrawTool, drawLayers, overlayVisibility, showOverlay } from './draw.js';
import {
  AREA_TOTALS, LEVELS, ROLES, STAFF_ROLES, VALUES, escapeHtml, fmt, lang, setLang, startTranslation, t,
} from './i18n.js';
import { VIEW_TABS, renderTab } from './views.js';

const $ = (sel) => document.querySelector(sel);
const VIEWS = { planner: '网格规划', survey: '风险普查', commander: '指挥调度' };
const DEFAULT_VIEW = { planner: 'planner', surveyor: 'survey', commander: 'commander', grid_worker: 'planner' };
const THEMES = [
  ['行政区划', ['townships', 'township_labels', 'communities', 'community_labels']],
  ['网格', ['grids', 'grid_labels']],
  ['企业风险', ['enterprises']],
  ['隐患', ['safety_hazards']],
  ['地质灾害', ['geohazard_points', 'geohazard_zones']],
  ['森林防火', ['forest_patches', 'fire_points']],
  ['避难场所', ['shelters', 'evacuation_routes']],
  ['普查承灾体', ['buildings', 'survey_facilities']],
];
const TYPE_RANK = { background: 0, raster: 1, fill: 2, line: 3, circle: 4, symbol: 5 };
const OPACITY_PROPS = {
  fill: ['fill-opacity'], line: ['line-opacity'], circle: ['circle-opacity', 'circle-stroke-opacity'], raster: ['raster-opacity'],
};
const LABELS = {
  townships: { minzoom: 10, size: 14, color: '#303030' },
  communities: { minzoom: 12.5, size: 12, color: '#4b5563' },
  grids: { minzoom: 14, size: 11, color: '#3f3a80' },
  enterprises: { minzoom: 15, size: 11, color: '#7a1f1f', offset: true },
  shelters: { minzoom: 14, size: 11, color: '#14532d', offset: true },
  geohazard_points: { minzoom: 14, size: 11, color: '#7c2d12', offset: true },
  survey_facilities: { minzoom: 16, size: 10, color: '#4c1d95', offset: true },
};
const UNASSIGNED = 'grids-unassigned';
/** Label-point layer → the polygon layer it names (its label settings in LABELS). */
const LABEL_POINTS = { township_labels: 'townships', community_labels: 'communities', grid_labels: 'grids' };
const FONT_FAMILY = "'WenQuanYi Micro Hei', 'Noto Sans SC', 'Microsoft YaHei', sans-serif";

export const state = {
  config: {}, me: null, scope: null, catalogue: {}, schemes: {}, styles: {}, defs: {},
  view: 'planner', visible: {}, opacity: {}, tab: null, target: 400,
  overlays: { highlight: empty(), proposal: empty(), units: empty(), warnings: empty(), impact: empty() },
  // set by the partition editor: a click on a proposal's unit selects it instead of a popup
  pickUnit: null,
  gridMetrics: null, unassigned: new Set(), basemap: localStorage.getItem('gis-service.basemap') || 'none',
  hazardLayers: [], lastLocate: null, lastArea: null,
};
const hooks = { errors: [], state, idle: false };
window.__gis = hooks;
let map = null;
let draw = null;
let popup = null;
let locateMarker = null;

function empty() { return { type: 'FeatureCollection', features: [] }; }

// ---------------------------------------------------------------- status line
let statusTimer = null;
export function status(text, { error = false, sticky = false } = {}) {
  const el = $('#status-msg');
  el.textContent = text || '';
  el.classList.toggle('error', error);
  clearTimeout(statusTimer);
  if (text && !sticky) statusTimer = setTimeout(() => { el.textContent = ''; }, error ? 8000 : 4000);
}

/**
 * Shows the working area (sidebar, map, panel; index.html starts with it unpainted, see
 * app.css): at the first map frame drawn, at the login form, on a start-up error, or
 * START_DRAW_MS after the map is created, whichever comes first.
 */
function revealLayout() { document.body.classList.remove('starting'); }

// ---------------------------------------------------------------- login
function showLogin(message = '') {
  revealLayout();
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#login-password').hidden = !state.config.password_login;
}

async function tryLogin(form) {
  const data = new FormData(form);
  const token = String(data.get('token') || '').trim();
  const login = String(data.get('login') || '').trim();
  try {
    if (token) {
      session.set(token);
    } else if (login && state.config.password_login) {
      const answer = await api('/auth/login', { method: 'POST', body: { login, password: String(data.get('password') || '') } });
      session.set(answer.token);
    } else {
      $('#login-error').textContent = '请输入访问令牌或用户名和密码';
      return;
    }
    await start();
  } catch (err) {
    session.clear();
    $('#login-error').textContent = err.status === 401 ? '令牌或密码不正确' : err.message;
  }
}

// ---------------------------------------------------------------- start-up
/** A performance mark the benchmark reads (navigation start = 0). */
function mark(name) { try { performance.mark(`gis:${name}`); } catch { /* old browsers */ } }

/** Everything the first map needs, asked at once (one round trip instead of a chain). */
function startRequests() {
  return {
    me: early('/me'),
    rest: Promise.all([
      early('/layers'), early('/schemes'),
      early('/styles/planner.json'), early('/styles/survey.json'), early('/styles/commander.json'),
      early('/divisions'),
    ]),
  };
}

async function boot() {
  mark('boot');
  startTranslation();
  $('#lang').textContent = lang === 'en' ? '中文' : 'EN';
  $('#lang').addEventListener('click', () => setLang(lang === 'en' ? 'zh' : 'en'));
  if (window.pmtiles && window.maplibregl) {
    const protocol = new pmtiles.Protocol();
    maplibregl.addProtocol('pmtiles', protocol.tile);
  }
  // The tile worker boots (parses the library) while the API answers.
  if (window.maplibregl && maplibregl.prewarm) maplibregl.prewarm();
  $('#login-form').addEventListener('submit', (e) => { e.preventDefault(); tryLogin(e.target); });
  $('#logout').addEventListener('click', () => { session.clear(); location.reload(); });
  onUnauthorized(() => { if (state.me) { session.clear(); showLogin('登录已失效，请重新登录'); } });
  const config = early('/web/config.json').catch(() => ({}));
  if (!session.token) { state.config = await config; showLogin(); return; }
  const asked = startRequests();
  asked.rest.catch(() => {}); // a 401 is reported once, through /me
  state.config = await config;
  try {
    await start(asked);
  } catch (err) {
    if (err.status === 401) { session.clear(); showLogin('令牌无效或已停用'); } else { revealLayout(); status(err.message, { error: true, sticky: true }); }
  }
}

async function start(asked = startRequests()) {
  const me = await asked.me;
  state.me = me;
  $('#login').hidden = true;
  const [layers, schemes, planner, survey, commander, divisions] = await asked.rest;
  mark('api');
  layers.layers.forEach((l) => { state.catalogue[l.name] = l; });
  schemes.forEach((s) => { state.schemes[s.key] = s; });
  state.styles = { planner, survey, commander };
  for (const view of ['commander', 'survey', 'planner']) {
    state.styles[view].layers.forEach((l) => { if (l.id !== 'background') state.defs[l.id] = l; });
  }
  state.scope = divisions[0] || null;
  const scopeName = divisions.map((d) => d.name).join('、') || '全部';
  $('#user-name').textContent = me.login;
  $('#user-role').textContent = `${ROLES[me.role] || me.role} · ${scopeName}`;
  $('#area-title').textContent = `${scopeName} · 网格化管理 · 风险普查 · 指挥调度`;
  const wanted = new URLSearchParams(location.hash.slice(1)).get('view');
  const view = VIEWS[wanted] ? wanted : (DEFAULT_VIEW[me.role] || 'planner');
  loadHazardLayers();
  createMap(view);
  setupAdminPicker(divisions);
  setupSearch();
  setupToolbar();
  document.querySelectorAll('#views button').forEach((b) => b.addEventListener('click', () => switchView(b.dataset.view)));
}

// ---------------------------------------------------------------- style building
function sameOrigin(url) {
  try {
    const u = new URL(url, location.origin);
    return location.origin + decodeURI(u.pathname) + u.search;
  } catch { return url; }
}

function presetVisible(view) {
  const inView = new Set(state.styles[view].layers.map((l) => l.id));
  const out = {};
  Object.keys(state.catalogue).forEach((name) => { out[name] = inView.has(name); });
  return out;
}

/** Text layout and paint of a label (font from the system: no glyph server). */
function labelText(cfg, field) {
  return {
    layout: {
      'text-field': ['get', field], 'text-size': cfg.size, 'text-font': ['Noto Sans Regular'],
      'text-max-width': 8, 'symbol-placement': 'point',
      ...(cfg.offset ? { 'text-offset': [0, 1.1], 'text-anchor': 'top' } : {}),
      'text-optional': true,
    },
    paint: { 'text-color': cfg.color, 'text-halo-color': '#ffffff', 'text-halo-width': 1.5 },
  };
}

/** A label layer drawn from a point layer's own features (enterprises, shelters …). */
function labelLayer(def, cfg, field) {
  return {
    id: `${def.id}-label`, type: 'symbol', source: def.source, 'source-layer': def['source-layer'],
    minzoom: cfg.minzoom, ...(cfg.maxzoom ? { maxzoom: cfg.maxzoom } : {}),
    metadata: { parent: def.id },
    filter: ['!', ['has', 'count']],
    ...labelText(cfg, field),
  };
}

/**
 * The published label-point layers (one point per unit, ST_PointOnSurface): the server's
 * style leaves the text to the page. Polygons are labelled from these only, never per tile.
 */
function labelPointLayer(def) {
  const cfg = LABELS[LABEL_POINTS[def.id]];
  const text = labelText(cfg, (def.metadata && def.metadata.label) || 'name');
  return {
    ...def, minzoom: Math.max(def.minzoom ?? 0, cfg.minzoom), ...(cfg.maxzoom ? { maxzoom: cfg.maxzoom } : {}),
    layout: { ...(def.layout || {}), ...text.layout }, paint: { ...(def.paint || {}), ...text.paint },
  };
}

function householdsRamp() {
  const t = state.target;
  return ['interpolate', ['linear'], ['coalesce', ['get', 'households'], 0],
    0, '#deebf7', t * 0.75, '#6baed6', t * 0.9, '#a1d99b', t, '#41ab5d', t * 1.1, '#a1d99b', t * 1.25, '#fd8d3c', t * 1.5, '#d94801'];
}

function viewTweaks(view, def) {
  const d = def;
  if (d.id === 'grids' && view === 'planner') {
    d.paint['fill-color'] = householdsRamp();
    d.paint['fill-opacity'] = 0.55;
  }
  if (d.id === 'enterprises' && view === 'commander') {
    d.filter = ['in', ['to-string', ['get', 'risk_level']], ['literal', ['red', 'orange']]];
  }
  if (d.id === 'geohazard_points' && view === 'commander') {
    d.paint['circle-radius'] = ['match', ['get', 'danger_grade'], 'I', 9, 'II', 7.5, 'III', 6, 5];
  }
  if (d.id === 'shelters' && view === 'commander') {
    d.paint['circle-radius'] = ['interpolate', ['linear'], ['coalesce', ['get', 'capacity'], 0], 0, 4, 500, 7, 5000, 12];
  }
  return d;
}

function basemapLayers(style) {
  const key = state.config.tianditu_key;
  if (!key || state.basemap === 'none') return [];
  const [base, note] = state.basemap === 'img' ? ['img', 'cia'] : ['vec', 'cva'];
  const tiles = (layer) => [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `https://t${i}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${encodeURIComponent(key)}`);
  style.sources['tdt-base'] = { type: 'raster', tiles: tiles(base), tileSize: 256, maxzoom: 18, attribution: '天地图' };
  style.sources['tdt-note'] = { type: 'raster', tiles: tiles(note), tileSize: 256, maxzoom: 18 };
  return [
    { id: 'tdt-base', type: 'raster', source: 'tdt-base' },
    { id: 'tdt-note', type: 'raster', source: 'tdt-note' },
  ];
}

function overlayLayers() {
  return [
    { id: 'proposal-fill', type: 'fill', source: 'proposal', paint: { 'fill-color': ['coalesce', ['get', 'color'], '#8e44ad'], 'fill-opacity': 0.45 } },
    { id: 'proposal-line', type: 'line', source: 'proposal', paint: { 'line-color': '#4a235a', 'line-width': 1.5 } },
    { id: 'units-fill', type: 'fill', source: 'units', paint: { 'fill-color': '#ffd400', 'fill-opacity': ['case', ['boolean', ['get', 'selected'], false], 0.75, 0] } },
    { id: 'units-line', type: 'line', source: 'units', minzoom: 14, paint: { 'line-color': '#6c5b7b', 'line-width': 0.4, 'line-opacity': 0.6 } },
    { id: 'proposal-label', type: 'symbol', source: 'proposal', layout: { 'text-field': ['coalesce', ['get', 'label_text'], ''], 'text-size': 11, 'text-font': ['Noto Sans Regular'] }, paint: { 'text-color': '#2d0b3a', 'text-halo-color': '#fff', 'text-halo-width': 1.5 } },
    { id: 'warnings-fill', type: 'fill', source: 'warnings', paint: { 'fill-color': ['coalesce', ['get', 'color'], '#e60000'], 'fill-opacity': 0.18 } },
    { id: 'warnings-line', type: 'line', source: 'warnings', paint: { 'line-color': ['coalesce', ['get', 'color'], '#e60000'], 'line-width': 2.5, 'line-dasharray': [4, 2] } },
    { id: 'impact-fill', type: 'fill', source: 'impact', paint: { 'fill-color': '#e60000', 'fill-opacity': 0.15 } },
    { id: 'impact-line', type: 'line', source: 'impact', paint: { 'line-color': '#b30000', 'line-width': 2 } },
    { id: 'impact-points', type: 'circle', source: 'impact', filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 7, 'circle-color': ['coalesce', ['get', 'color'], '#1a7f37'], 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
    { id: 'highlight-fill', type: 'fill', source: 'highlight', filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#ffd400', 'fill-opacity': 0.2 } },
    { id: 'highlight-line', type: 'line', source: 'highlight', paint: { 'line-color': '#ff8c00', 'line-width': 3 } },
    { id: 'highlight-point', type: 'circle', source: 'highlight', filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 11, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#ff8c00', 'circle-stroke-width': 3 } },
  ];
}

function hazardRasterLayers(style) {
  const out = [];
  state.hazardLayers.filter((h) => h.data_type === 'raster' && state.visible[`hz:${h.key}`]).forEach((h) => {
    const id = `hz:${h.key}`;
    style.sources[id] = { type: 'raster', tiles: [sameOrigin(h.tiles)], tileSize: 256, minzoom: h.minzoom ?? 0, maxzoom: h.maxzoom ?? 18, ...(h.bounds ? { bounds: h.bounds } : {}) };
    out.push({ id, type: 'raster', source: id, paint: { 'raster-opacity': state.opacity[id] ?? 0.7 } });
  });
  return out;
}

/** The MapLibre style of a view: the API's style plus every other published layer (hidden). */
export function buildStyle(view) {
  const style = structuredClone(state.styles[view]);
  delete style.glyphs;
  const gis = style.sources.gis;
  gis.tiles = gis.tiles.map(sameOrigin);
  gis.promoteId = { grids: 'grid_code' };
  const bounds = gis.bounds;
  const own = style.layers.filter((l) => l.id !== 'background');
  const inView = new Set(own.map((l) => l.id));
  const layers = own.map((l) => viewTweaks(view, l));
  Object.values(state.catalogue).forEach((cat) => {
    if (inView.has(cat.name) || !state.defs[cat.name]) return;
    const source = `x_${cat.name}`;
    style.sources[source] = {
      type: 'vector', tiles: [sameOrigin(cat.tiles)], minzoom: cat.minzoom, maxzoom: cat.maxzoom, ...(bounds ? { bounds } : {}),
    };
    layers.push(viewTweaks(view, { ...structuredClone(state.defs[cat.name]), source }));
  });
  layers.sort((a, b) => (TYPE_RANK[a.type] ?? 9) - (TYPE_RANK[b.type] ?? 9));
  const gridsDef = layers.find((l) => l.id === 'grids');
  const extra = [];
  if (gridsDef) {
    extra.push({
      id: 'grids-outline', type: 'line', source: gridsDef.source, 'source-layer': 'grids', minzoom: gridsDef.minzoom,
      metadata: { parent: 'grids' }, paint: { 'line-color': '#483d8b', 'line-width': 0.8, 'line-opacity': 0.7 },
    });
    extra.push({
      id: UNASSIGNED, type: 'line', source: gridsDef.source, 'source-layer': 'grids', minzoom: gridsDef.minzoom,
      metadata: { parent: 'grids' },
      paint: { 'line-color': '#e60000', 'line-width': 3, 'line-dasharray': [2, 1], 'line-opacity': ['case', ['boolean', ['feature-state', 'unassigned'], false], 1, 0] },
    });
  }
  const pointLabelled = new Set(Object.values(LABEL_POINTS).filter((n) => layers.some((l) => LABEL_POINTS[l.id] === n)));
  layers.forEach((l, i) => { if (LABEL_POINTS[l.id]) layers[i] = labelPointLayer(l); });
  const labels = layers.filter((l) => LABELS[l.id] && l.metadata && l.metadata.label && !pointLabelled.has(l.id))
    .map((l) => labelLayer(l, LABELS[l.id], l.metadata.label));
  ['proposal', 'units', 'warnings', 'impact', 'highlight'].forEach((k) => { style.sources[k] = { type: 'geojson', data: state.overlays[k] }; });
  style.sources[DRAW_SOURCE] = { type: 'geojson', data: draw ? draw.data() : empty() };
  const fills = layers.filter((l) => l.type === 'fill');
  const rest = layers.filter((l) => l.type !== 'fill');
  // No background layer: the map's container has that colour (CSS, --map-bg) and the canvas
  // stays transparent where nothing is drawn. A background layer is a full-screen pass per
  // frame and a shader program of its own, which counts with software GL.
  style.layers = [
    ...basemapLayers(style),
    ...hazardRasterLayers(style),
    ...fills, ...extra, ...rest, ...labels,
    ...overlayLayers(), ...drawLayers(),
  ];
  // No antialiasing outline pass under fills (grids draw their own outline layer): one
  // shader program and one draw call less per fill layer, which counts with software GL.
  style.layers.forEach((l) => {
    if (l.type === 'fill') {
      l.paint = { ...l.paint, 'fill-antialias': false };
      delete l.paint['fill-outline-color'];
    }
    oneProgram(l);
  });
  style.layers.forEach((l) => applyLayerState(l));
  style.layers.forEach((l) => {
    const src = style.sources[l.source];
    if (src && src.type === 'geojson') l.layout = { ...l.layout, visibility: overlayVisibility(src.data) };
  });
  return style;
}

// MapLibre compiles one shader program per layer type *and* per set of data-driven paint
// properties: a fill with a constant colour and a fill coloured by a property are two
// programs, as are circles of constant and of data-driven radius. Compiling is most of the
// first map's CPU with software GL, so constant colours and radii of fills and circles are
// written as (trivially) data-driven ones: every fill, every circle, shares one program.
const SHARED_PROGRAM = { fill: ['fill-color'], circle: ['circle-color', 'circle-radius'] };
const CONSTANT = ['has', '__constant'];
function oneProgram(l) {
  (SHARED_PROGRAM[l.type] || []).forEach((p) => {
    const v = l.paint && l.paint[p];
    if (v !== undefined && !Array.isArray(v)) l.paint[p] = ['case', CONSTANT, v, v];
  });
}
/** The constant behind oneProgram's wrapping (the legend shows it). */
function constantOf(v) { return Array.isArray(v) && v[0] === 'case' && Array.isArray(v[1]) && v[1][1] === CONSTANT[1] ? v[2] : v; }

function layerName(l) { return (l.metadata && l.metadata.parent) || l.id; }

function applyLayerState(l) {
  const name = layerName(l);
  if (!(name in state.catalogue)) return;
  l.layout = l.layout || {};
  l.layout.visibility = state.visible[name] && (l.id !== UNASSIGNED || state.unassigned.size) ? 'visible' : 'none';
  const factor = state.opacity[name] ?? 1;
  if (factor !== 1 && l.id === name) {
    (OPACITY_PROPS[l.type] || []).forEach((p) => {
      const base = l.paint[p] ?? 1;
      if (typeof base === 'number') l.paint[p] = base * factor;
    });
  }
}

// ---------------------------------------------------------------- map
const MAP_BG = '#eef0ec'; // = .map's background in app.css

/**
 * MapLibre 5 draws its sky (a full-screen pass with a shader program of its own) before every
 * frame, even when no sky can be seen; this map never pitches (maxPitch 0: no horizon in
 * view), so its draw is skipped: one compile and one full-screen pass per frame less with
 * software GL. The painter's draw table is MapLibre's internal: left alone if absent.
 */
function skipSky(m) {
  const fns = m.painter && m.painter.drawFunctions;
  if (fns && typeof fns.sky === 'function') fns.sky = () => {};
}

/**
 * Until the first map is on screen, MapLibre's frames that would show it half done (style or
 * tiles still loading, labels still being placed) are not drawn: with software GL each drawn
 * frame is a full redraw and, headless, a window frame read back from SwiftShader, and the
 * start view took 7–9 of them. The frame that completes the start view is drawn as before, and
 * so is every frame after the first idle (or after START_DRAW_MS, should the start view take
 * that long: then the map shows as it loads). Nothing else changes: the same style updates,
 * tile requests and placement run every frame. The painter is MapLibre's internal (5.x):
 * left alone if absent. Returns whether it is in place.
 */
const START_DRAW_MS = 5000;
function drawOnlyWhole(m, onFirstDraw) {
  const painter = m.painter;
  if (!painter || typeof painter.render !== 'function') return false;
  const render = painter.render.bind(painter);
  const t0 = performance.now();
  let drawn = false;
  painter.render = (style, options) => {
    if (drawn || (style.loaded() && !m._placementDirty) || performance.now() - t0 > START_DRAW_MS) {
      render(style, options);
      if (!drawn) { drawn = true; onFirstDraw(); }
      return;
    }
    // What the painter's render records first: tiles arriving meanwhile build their buckets
    // against painter.style (they would be empty without it).
    painter.style = style;
    hooks.framesSkipped += 1;
  };
  return true;
}

function createMap(view) {
  state.view = view;
  state.visible = presetVisible(view);
  const style = buildStyle(view);
  const b = style.sources.gis.bounds;
  map = new maplibregl.Map({
    container: 'map',
    style,
    bounds: b ? [[b[0], b[1]], [b[2], b[3]]] : undefined,
    fitBoundsOptions: { padding: 24 },
    transformRequest: (url) => (url.startsWith(location.origin) ? { url, headers: authHeaders() } : { url }),
    // No preserveDrawingBuffer (costly with software GL): the PNG export reads the canvas
    // inside a render event instead.
    localIdeographFontFamily: FONT_FAMILY,
    dragRotate: false,
    pitchWithRotate: false,
    // Labels appear at once: a fade is a series of full redraws, costly with software GL.
    fadeDuration: 0,
    attributionControl: { compact: true, customAttribution: '应急管理局' },
    // A flat map: no pitch, so the sky is never in view.
    maxPitch: 0,
    touchPitch: false,
  });
  skipSky(map);
  hooks.map = map;
  window.map = map;
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric', maxWidth: 120 }), 'bottom-right');
  map.on('error', (e) => {
    const msg = (e.error && e.error.message) || String(e.error || e);
    if (/aborted|AbortError/i.test(msg)) return;
    hooks.errors.push(msg);
    status(`地图：${msg}`, { error: true });
  });
  mark('map');
  // The first frame actually drawn (see drawOnlyWhole).
  const firstDraw = () => { revealLayout(); mark('render'); hooks.firstRenderMs = Math.round(performance.now()); };
  setTimeout(revealLayout, START_DRAW_MS);
  hooks.framesSkipped = 0;
  if (!drawOnlyWhole(map, firstDraw)) map.once('render', firstDraw);
  // MapLibre's frames up to the first map; less framesSkipped, the frames drawn (the benchmark
  // reports them: each is a full redraw and a composited frame, which counts with software GL).
  hooks.framesToIdle = 0;
  map.on('render', () => { if (!hooks.firstIdleMs) hooks.framesToIdle += 1; });
  map.once('load', () => { mark('load'); hooks.loadMs = Math.round(performance.now()); });
  map.once('sourcedata', () => mark('style'));
  // "First map": the view's own layers over the base drawn for the start view (MapLibre's
  // first idle: every requested tile loaded and rendered, no transition running).
  map.on('idle', () => {
    hooks.idle = true;
    if (!hooks.firstIdleMs) { mark('idle'); hooks.firstIdleMs = Math.round(performance.now()); }
  });
  map.on('movestart', () => { hooks.idle = false; });
  map.on('style.load', () => { hooks.idle = false; applyFeatureStates(); });
  map.on('mousemove', throttleFrame((e) => {
    $('#coords').textContent = `经度 ${e.lngLat.lng.toFixed(6)}°  纬度 ${e.lngLat.lat.toFixed(6)}°`;
  }));
  map.on('zoomend', () => { $('#zoom').textContent = `缩放 ${map.getZoom().toFixed(1)} 级`; renderLayerTree(); });
  map.on('load', () => { $('#zoom').textContent = `缩放 ${map.getZoom().toFixed(1)} 级`; });
  map.on('click', onMapClick);
  draw = new DrawTool(map, {
    onFinish: (geometry, meta) => {
      setTool(null);
      const purpose = state.drawPurpose;
      state.drawPurpose = null;
      if (purpose) { state.tab = 'impact'; renderTabs(); purpose(geometry, meta); } else areaQuery(geometry, meta);
    },
    onHint: (text) => { const h = $('#draw-hint'); h.hidden = !text; h.textContent = text || ''; },
  });
  hooks.draw = draw;
  afterViewChange();
}

function throttleFrame(fn) {
  let pending = null;
  return (e) => {
    if (pending) { pending = e; return; }
    pending = e;
    requestAnimationFrame(() => { const last = pending; pending = null; fn(last); });
  };
}

export function switchView(view) {
  // Choosing the current view again restores its preset (layers, opacity, first panel).
  if (!VIEWS[view]) return;
  state.view = view;
  state.visible = { ...presetVisible(view), ...hazardVisibility() };
  state.opacity = Object.fromEntries(Object.entries(state.opacity).filter(([k]) => k.startsWith('hz:')));
  history.replaceState(null, '', `#view=${view}`);
  hooks.idle = false;
  map.setStyle(buildStyle(view), { diff: false });
  afterViewChange();
}

function hazardVisibility() {
  return Object.fromEntries(Object.entries(state.visible).filter(([k]) => k.startsWith('hz:')));
}

function afterViewChange() {
  document.querySelectorAll('#views button').forEach((b) => b.classList.toggle('active', b.dataset.view === state.view));
  hooks.view = state.view;
  document.body.dataset.view = state.view;
  renderLayerTree();
  renderLegend();
  state.tab = VIEW_TABS[state.view][0][0];
  if (hooks.firstIdleMs) renderTabs();
  else {
    // At start-up the map is drawn first: the panel (the planner's 232-row grid table …)
    // is built once the first map is on screen instead of competing with it for the CPU.
    renderTabs({ loading: '加载中…' });
    map.once('idle', () => renderTabs());
  }
  if (state.view === 'planner' && !state.gridMetrics) loadGridMetrics();
}

/** Rebuild the style in place (layer toggles that need a source, base map, hazard rasters). */
export function rebuildStyle() {
  map.setStyle(buildStyle(state.view), { diff: true });
}

/** Fetch every vector tile again (after a commit changed the grids); no-cache + ETag tiles. */
export function reloadTiles() {
  Object.entries(map.getStyle().sources).forEach(([id, src]) => {
    if (src.type === 'vector' && map.getSource(id)) map.getSource(id).setTiles(src.tiles);
  });
}

export function setOverlay(name, data) {
  state.overlays[name] = data || empty();
  const src = map && map.getSource(name);
  if (!src) return;
  src.setData(state.overlays[name]);
  showOverlay(map, name, state.overlays[name]);
}

// The planner view and its statistics tab both ask at start-up: one request serves both.
let gridMetricsLoading = null;
function loadGridMetrics() {
  if (!gridMetricsLoading) gridMetricsLoading = fetchGridMetrics().finally(() => { gridMetricsLoading = null; });
  return gridMetricsLoading;
}

async function fetchGridMetrics() {
  if (!state.scope) return;
  try {
    const rows = await api(`/grids?admin=${state.scope.code}&metrics=households,population,workers,red_orange,hazards`);
    state.gridMetrics = rows;
    state.unassigned = new Set(rows.filter((r) => !r.workers).map((r) => r.grid_code));
    applyFeatureStates();
    if (state.tab === 'grids' && hooks.firstIdleMs) renderTabs();
  } catch (err) { status(`网格统计：${err.message}`, { error: true }); }
}

// The grids flagged `unassigned` (feature state) per grid source, with the source object they
// were set on (a source the style replaced has lost its states). Only changes are sent: every
// feature-state or layout change redraws the map, and at start-up, with no grid lacking a
// worker, there is none (it was a frame of its own before the first map, with software GL).
const flagged = new Map();

function applyFeatureStates() {
  if (!map || !state.gridMetrics) return;
  const source = state.visible.grids && state.styles[state.view].layers.some((l) => l.id === 'grids') ? 'gis' : 'x_grids';
  const src = map.getSource(source);
  if (!src) return;
  let f = flagged.get(source);
  if (!f || f.src !== src) { f = { src, codes: new Set() }; flagged.set(source, f); }
  const flag = (id, on) => map.setFeatureState({ source, sourceLayer: 'grids', id }, { unassigned: on });
  [...f.codes].filter((code) => !state.unassigned.has(code)).forEach((code) => { flag(code, false); f.codes.delete(code); });
  state.unassigned.forEach((code) => { if (!f.codes.has(code)) { flag(code, true); f.codes.add(code); } });
  // shown only while some grid has no worker: a dashed line is a shader program of its own
  const shown = state.visible.grids && state.unassigned.size ? 'visible' : 'none';
  if (map.getLayer(UNASSIGNED) && (map.getLayoutProperty(UNASSIGNED, 'visibility') || 'visible') !== shown) {
    map.setLayoutProperty(UNASSIGNED, 'visibility', shown);
  }
}

/** Resolves when the map has finished loading and rendering (tests and PNG export). */
hooks.waitIdle = () => new Promise((resolve) => {
  if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) { resolve(true); return; }
  map.once('idle', () => resolve(true));
});

// ---------------------------------------------------------------- layer tree + legend
function groupsForTree() {
  const known = new Set(THEMES.flatMap(([, names]) => names));
  const groups = THEMES.map(([title, names]) => [title, names.filter((n) => state.catalogue[n])]);
  const other = Object.keys(state.catalogue).filter((n) => !known.has(n));
  if (other.length) groups.push(['其他', other]);
  return groups.filter(([, names]) => names.length);
}

function renderLayerTree() {
  const el = $('#layer-tree');
  if (!el || !map) return;
  const zoom = map.getZoom();
  const rows = groupsForTree().map(([title, names]) => `
    <div class="layer-group"><div class="group-title">${escapeHtml(title)}</div>
    ${names.map((n) => layerRow(n, state.catalogue[n].title, state.catalogue[n].minzoom, zoom)).join('')}</div>`);
  const hz = state.hazardLayers.filter((h) => h.data_type === 'raster');
  if (hz.length) {
    rows.push(`<div class="layer-group"><div class="group-title">致灾因子 / 风险区划</div>
      ${hz.map((h) => layerRow(`hz:${h.key}`, h.title, h.minzoom ?? 0, zoom)).join('')}</div>`);
  }
  if (state.config.tianditu_key) {
    rows.unshift(`<div class="layer-group"><div class="group-title">底图</div>
      ${[['none', '无底图（离线）'], ['vec', '天地图 矢量'], ['img', '天地图 影像']].map(([k, t]) => `
        <div class="layer-row"><label><input type="radio" name="basemap" value="${k}" ${state.basemap === k ? 'checked' : ''}><span class="name">${t}</span></label><span></span></div>`).join('')}</div>`);
  }
  el.innerHTML = rows.join('');
  el.querySelectorAll('input[type=checkbox]').forEach((cb) => cb.addEventListener('change', () => setVisible(cb.dataset.layer, cb.checked)));
  el.querySelectorAll('input[type=range]').forEach((r) => r.addEventListener('input', () => setOpacity(r.dataset.layer, Number(r.value) / 100)));
  el.querySelectorAll('input[name=basemap]').forEach((r) => r.addEventListener('change', () => {
    state.basemap = r.value;
    localStorage.setItem('gis-service.basemap', r.value);
    rebuildStyle();
  }));
}

function layerRow(name, title, minzoom, zoom) {
  const on = !!state.visible[name];
  const op = Math.round((state.opacity[name] ?? (name.startsWith('hz:') ? 0.7 : 1)) * 100);
  const dim = zoom < minzoom;
  return `<div class="layer-row ${dim ? 'dim' : ''}" data-layer-row="${escapeHtml(name)}">
    <label><input type="checkbox" data-layer="${escapeHtml(name)}" ${on ? 'checked' : ''}>
    <span class="name" title="${escapeHtml(title)}">${escapeHtml(title)}${dim ? `<span class="zoomhint">≥${minzoom}级</span>` : ''}</span></label>
    <input type="range" min="0" max="100" value="${op}" data-layer="${escapeHtml(name)}" title="透明度 ${op}%"></div>`;
}

export function setVisible(name, on) {
  state.visible[name] = on;
  if (name.startsWith('hz:')) { rebuildStyle(); renderLegend(); return; }
  map.getStyle().layers.forEach((l) => {
    if (layerName(l) === name) map.setLayoutProperty(l.id, 'visibility', on ? 'visible' : 'none');
  });
  if (name === 'grids') applyFeatureStates();
  renderLegend();
}

function setOpacity(name, value) {
  state.opacity[name] = value;
  if (name.startsWith('hz:')) { if (map.getLayer(name)) map.setPaintProperty(name, 'raster-opacity', value); return; }
  const def = buildStyle(state.view).layers.find((l) => l.id === name);
  if (!def) return;
  (OPACITY_PROPS[def.type] || []).forEach((p) => map.setPaintProperty(name, p, def.paint[p] ?? value));
}

function colorOf(layer) {
  const p = layer.paint || {};
  return constantOf(p['fill-color'] ?? p['line-color'] ?? p['circle-color']);
}

function legendBlock(name, built) {
  const def = built.find((l) => l.id === name);
  if (!def || def.type === 'symbol') return '';
  const shape = def.type === 'circle' ? 'circle' : def.type === 'line' ? 'line' : '';
  const title = state.catalogue[name].title;
  const color = colorOf(def);
  let items = [];
  if (name === 'grids' && state.view === 'planner') {
    const t = state.target;
    items = [['#6baed6', `户数偏少（< ${Math.round(t * 0.9)}）`], ['#41ab5d', `接近目标（${t} 户 ±10%）`], ['#fd8d3c', `户数偏多（> ${Math.round(t * 1.1)}）`]];
    items.push(['#e60000', '未配备网格员（红色虚线）', 'line']);
  } else if (Array.isArray(color) && color[0] === 'match') {
    const scheme = state.schemes[def.metadata && def.metadata.scheme];
    const names = scheme ? Object.fromEntries(scheme.classes.map((c) => [c.key, c.zh_name])) : {};
    const allowed = def.filter && def.filter[0] === 'in' ? def.filter[2][1] : null;
    for (let i = 2; i < color.length - 1; i += 2) {
      if (allowed && !allowed.includes(color[i])) continue;
      items.push([color[i + 1], names[color[i]] || color[i]]);
    }
  } else if (typeof color === 'string') {
    items = [[color, title]];
  }
  return `<div class="block"><div class="block-title">${escapeHtml(title)}</div>${items.map(([c, t, s]) => `
    <div class="item"><span class="sw ${s || shape}" style="background:${escapeHtml(c)}"></span>${escapeHtml(t)}</div>`).join('')}</div>`;
}

export function renderLegend() {
  const names = groupsForTree().flatMap(([, n]) => n).filter((n) => state.visible[n]);
  const built = buildStyle(state.view).layers;
  const blocks = names.map((n) => legendBlock(n, built));
  state.hazardLayers.filter((h) => state.visible[`hz:${h.key}`] && h.scheme).forEach((h) => {
    blocks.push(`<div class="block"><div class="block-title">${escapeHtml(h.title)}</div>${h.scheme.classes.map((c) => `
      <div class="item"><span class="sw" style="background:${escapeHtml(c.color)}"></span>${escapeHtml(c.zh_name)}</div>`).join('')}</div>`);
  });
  $('#legend').innerHTML = blocks.join('') || '<div class="note">无可见图层</div>';
}

// ---------------------------------------------------------------- popups
function valueLabel(layerNameValue, prop, value) {
  const cat = state.catalogue[layerNameValue];
  if (cat && cat.style.color_by === prop && cat.style.scheme && state.schemes[cat.style.scheme]) {
    const cls = state.schemes[cat.style.scheme].classes.find((c) => c.key === String(value));
    if (cls) return `<span class="pill" style="background:${escapeHtml(cls.color)};color:${cls.key === 'yellow' || cls.key === 'III' || cls.key === 'medium' ? '#333' : '#fff'}">${escapeHtml(cls.zh_name)}</span>`;
  }
  const dict = VALUES[prop];
  if (dict && value !== null && value !== undefined && dict[value] !== undefined) return escapeHtml(dict[value]);
  return escapeHtml(fmt(value));
}

function popupHtml(feature) {
  const name = layerName(feature.layer);
  const cat = state.catalogue[name];
  const props = feature.properties || {};
  const rows = [];
  if (props.count !== undefined && props.count !== null) {
    rows.push(['数量', `${fmt(props.count)}（聚合，放大后查看单个）`]);
  }
  (cat ? cat.properties : []).forEach((p) => {
    if (p.name in props) rows.push([p.label, valueLabel(name, p.name, props[p.name])]);
  });
  if (name === 'grids' && state.gridMetrics) {
    const m = state.gridMetrics.find((r) => r.grid_code === props.grid_code);
    if (m) {
      rows.push(['网格员人数', m.workers ? fmt(m.workers) : '<span class="error-text">未配备</span>']);
      rows.push(['红橙企业', fmt(m.red_orange)]);
      rows.push(['隐患', fmt(m.hazards)]);
    }
  }
  const title = props.name || (cat ? cat.title : name);
  return `<div class="popup-title">${escapeHtml(cat ? `${cat.title}：` : '')}${escapeHtml(title)}</div>
    <div class="popup-body" data-layer="${escapeHtml(name)}"><table class="kv">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('')}</table></div>`;
}

function interactiveLayers() {
  return map.getStyle().layers
    .filter((l) => state.catalogue[l.id] && state.visible[l.id] && l.type !== 'symbol')
    .map((l) => l.id);
}

const POINT_PRIORITY = ['enterprises', 'geohazard_points', 'shelters', 'fire_points', 'safety_hazards', 'survey_facilities'];

function hitRank(f) {
  const type = TYPE_RANK[f.layer.type] ?? 0;
  const i = POINT_PRIORITY.indexOf(f.layer.id);
  return type * 100 - (i < 0 ? 50 : i);
}

function showPopup(lngLat, hits, index) {
  if (popup) popup.remove();
  const f = hits[index];
  const nav = hits.length > 1 ? `<div class="popup-nav"><button type="button" data-step="-1" ${index ? '' : 'disabled'}>‹</button>
    <span>${index + 1} / ${hits.length}</span><button type="button" data-step="1" ${index < hits.length - 1 ? '' : 'disabled'}>›</button></div>` : '';
  const at = f.geometry.type === 'Point' ? f.geometry.coordinates : lngLat;
  popup = new maplibregl.Popup({ maxWidth: '320px' }).setLngLat(at).setHTML(popupHtml(f) + nav).addTo(map);
  popup.getElement().querySelectorAll('[data-step]').forEach((b) => b.addEventListener('click', () => showPopup(lngLat, hits, index + Number(b.dataset.step))));
  hooks.popup = { layer: layerName(f.layer), properties: f.properties, count: hits.length };
}

function onMapClick(e) {
  if (draw && draw.active) return;
  if (state.pickUnit && state.tab === 'partition') {
    const unit = map.queryRenderedFeatures(e.point, { layers: ['units-fill'] })[0];
    if (unit) { state.pickUnit(unit.properties); return; }
  }
  const seen = new Set();
  const hits = map.queryRenderedFeatures(e.point, { layers: interactiveLayers() })
    .filter((f) => { const k = `${f.layer.id}:${f.id ?? JSON.stringify(f.properties)}`; if (seen.has(k)) return false; seen.add(k); return true; })
    .sort((a, b) => hitRank(b) - hitRank(a));
  if (popup) popup.remove();
  if (hits.length) showPopup(e.lngLat, hits, 0);
  locate(e.lngLat.lng, e.lngLat.lat, 'cgcs2000');
}

// ---------------------------------------------------------------- locate
const locateSignal = latestOnly();

export async function locate(lon, lat, crs = 'cgcs2000', { fly = false } = {}) {
  const signal = locateSignal();
  state.tab = 'locate';
  renderTabs({ loading: '正在查询该点所属区划、网格与责任人…' });
  try {
    const q = new URLSearchParams({ lon: String(lon), lat: String(lat) });
    if (crs && crs !== 'cgcs2000') q.set('crs', crs);
    const answer = await api(`/query/locate?${q}`, { signal });
    const rasters = state.hazardLayers.filter((h) => h.data_type === 'raster' && state.visible[`hz:${h.key}`]);
    answer.rasters = await Promise.all(rasters.map((h) => api(`/rasters/${encodeURIComponent(h.key)}/point?${q}`, { signal })
      .then((v) => ({ ...v, title: h.title })).catch((err) => { if (isAbort(err)) throw err; return { title: h.title, value: null }; })));
    state.lastLocate = answer;
    hooks.lastLocate = answer;
    const [plon, plat] = answer.point;
    if (!locateMarker) locateMarker = new maplibregl.Marker({ color: '#c8161d' });
    locateMarker.setLngLat([plon, plat]).addTo(map);
    if (fly) map.flyTo({ center: [plon, plat], zoom: Math.max(map.getZoom(), 15) });
  } catch (err) {
    if (isAbort(err)) return;
    state.lastLocate = { error: err.status === 404 ? '该点不在您的管辖范围内（或不在任何村/社区内）' : err.message };
    hooks.lastLocate = state.lastLocate;
  }
  if (state.tab === 'locate') renderTabs();
}

export function locateHtml(a) {
  if (!a) return '<div class="empty">在地图上单击任意位置，<br>查看所属区划、网格、网格员和最近的避难场所。</div>';
  if (a.error) return `<div class="empty error-text">${escapeHtml(a.error)}</div>`;
  const g = a.grid;
  const staff = (g && g.staff) || [];
  const shelter = (s, label) => (s ? `<tr><th>${label}</th><td>${escapeHtml(s.name)}<br><span class="note">${fmt(Math.round(s.distance_m))} 米 · 容纳 ${fmt(s.capacity)} 人 · ${escapeHtml(VALUES.status[s.status] || s.status || '')}</span></td></tr>` : `<tr><th>${label}</th><td>—</td></tr>`);
  return `
    <h3>所属区划</h3>
    <div class="chain" id="locate-chain">${a.admin.map((d) => `<span title="${escapeHtml(LEVELS[d.level] || d.level)} ${escapeHtml(d.code)}">${escapeHtml(d.name)}</span>`).join('')}</div>
    <h3>所属网格</h3>
    ${g ? `<table class="kv" id="locate-grid" data-grid-code="${escapeHtml(g.grid_code)}">
      <tr><th>网格名称</th><td>${escapeHtml(g.name)}</td></tr>
      <tr><th>网格编码</th><td>${escapeHtml(g.grid_code)}</td></tr>
      <tr><th>类型</th><td>${escapeHtml(VALUES.kind[g.kind] || g.kind)}</td></tr>
      <tr><th>户数 / 人口</th><td>${fmt(g.households)} 户 / ${fmt(g.population)} 人</td></tr></table>` : '<div class="note">该点不在任何现行网格内</div>'}
    <h3>网格责任人</h3>
    <div id="locate-staff">${staff.length ? staff.map((s) => `<div class="person" data-role="${escapeHtml(s.role)}">
      <span><span class="role ${s.role === 'grid_leader' ? 'leader' : ''}">${escapeHtml(STAFF_ROLES[s.role] || s.role)}</span><span class="staff-name">${escapeHtml(s.name)}</span></span>
      <span>${s.phone ? `<a href="tel:${escapeHtml(s.phone)}">${escapeHtml(s.phone)}</a>` : '—'}</span></div>`).join('') : '<div class="note error-text">未配备网格员</div>'}</div>
    ${(a.geohazards || []).length ? `<h3>附近地质灾害隐患点</h3>${a.geohazards.map((h) => `<div class="person"><span>${escapeHtml(h.name || h.code || '')}</span><span class="note">${escapeHtml(h.danger_grade || '')}级 ${h.distance_m !== undefined ? `${fmt(Math.round(h.distance_m))} 米` : ''}</span></div>`).join('')}` : ''}
    ${(a.rasters || []).length ? `<h3>致灾因子取值</h3><table class="kv" id="locate-rasters">${a.rasters.map((v) => `<tr><th>${escapeHtml(v.title)}</th><td>${v.value === null || v.value === undefined ? '无数据' : `${fmt(v.value)} ${escapeHtml(v.unit || '')}`}${v.class ? ` <span class="pill" style="background:${escapeHtml(v.class.color)}">${escapeHtml(v.class.zh_name)}</span>` : ''}</td></tr>`).join('')}</table>` : ''}
    <h3>避难场所</h3>
    <table class="kv">${shelter(a.nearest_shelter, '最近')}${shelter(a.nearest_open_shelter, '最近开放')}</table>
    <div class="note">坐标 ${a.point[0].toFixed(6)}, ${a.point[1].toFixed(6)}（CGCS2000）</div>`;
}

// ---------------------------------------------------------------- area summary
export async function areaQuery(geometry, meta = {}) {
  state.tab = 'area';
  state.lastArea = { geometry, meta, loading: true };
  renderTabs();
  try {
    const result = await api('/query/area', { method: 'POST', body: { geometry } });
    state.lastArea = { geometry, meta, result };
  } catch (err) {
    state.lastArea = { geometry, meta, error: err.message };
  }
  hooks.lastArea = state.lastArea;
  if (state.tab === 'area') renderTabs();
}

export function areaHtml(area) {
  if (!area) return '<div class="empty">用工具栏的“多边形”或“圆形”在地图上圈定范围，<br>统计范围内的房屋、人口、企业、隐患、地灾点、避难场所和需要联系的网格员。</div>';
  if (area.loading) return '<div class="empty">正在统计…</div>';
  if (area.error) return `<div class="empty error-text">${escapeHtml(area.error)}</div>`;
  const r = area.result;
  const t = r.totals;
  const sizeNote = area.meta && area.meta.kind === 'circle' ? `圆形，半径 ${fmt(area.meta.radius_m)} 米，` : '';
  const staff = r.grids.flatMap((g) => (g.staff || []).map((s) => ({ ...s, grid: g.name })));
  return `
    <div class="note">${sizeNote}面积 ${fmt(r.area.area_km2)} 平方公里，涉及 ${fmt(r.by_village.length)} 个村（社区）、${fmt(r.grids.length)} 个网格</div>
    <div class="actions"><button type="button" class="secondary" data-dl="csv">下载 CSV</button><button type="button" class="secondary" data-dl="xlsx">下载 Excel</button></div>
    <h3>汇总</h3>
    <table class="data" id="area-totals">${AREA_TOTALS.map(([k, label]) => `<tr data-key="${k}"><td>${escapeHtml(label)}</td><td class="num">${fmt(t[k])}</td></tr>`).join('')}</table>
    <h3>按村（社区）</h3>
    <div class="table-wrap"><table class="data" id="area-villages"><tr><th>村（社区）</th><th class="num">户数</th><th class="num">人口</th><th class="num">企业</th><th class="num">地灾点</th></tr>
    ${r.by_village.map((v) => `<tr data-code="${escapeHtml(v.village_code)}"><td>${escapeHtml(v.village)}</td><td class="num">${fmt(v.buildings_households)}</td><td class="num">${fmt(v.buildings_population)}</td><td class="num">${fmt(v.enterprises)}</td><td class="num">${fmt(v.geohazard_points)}</td></tr>`).join('')}</table></div>
    <h3>按网格</h3>
    <div class="table-wrap"><table class="data" id="area-grids"><tr><th>网格</th><th class="num">户数</th><th class="num">人口</th><th class="num">红/橙企业</th><th class="num">未销号隐患</th></tr>
    ${r.by_grid.map((g) => `<tr data-code="${escapeHtml(g.grid_code)}"><td>${escapeHtml(g.grid_name || g.grid_code || '（网格外）')}</td><td class="num">${fmt(g.buildings_households)}</td><td class="num">${fmt(g.buildings_population)}</td><td class="num">${fmt(g.enterprises_red)}/${fmt(g.enterprises_orange)}</td><td class="num">${fmt(g.safety_hazards_open)}</td></tr>`).join('')}</table></div>
    <h3>需联系的网格责任人（${fmt(staff.length)}）</h3>
    <div id="area-staff">${staff.map((s) => `<div class="person"><span><span class="role ${s.role === 'grid_leader' ? 'leader' : ''}">${escapeHtml(STAFF_ROLES[s.role] || s.role)}</span>${escapeHtml(s.name)} <span class="note">${escapeHtml(s.grid)}</span></span><span>${s.phone ? `<a href="tel:${escapeHtml(s.phone)}">${escapeHtml(s.phone)}</a>` : '—'}</span></div>`).join('') || '<div class="note">无</div>'}</div>`;
}

export function bindAreaActions(el) {
  el.querySelectorAll('[data-dl]').forEach((b) => b.addEventListener('click', async () => {
    const fmtKey = b.dataset.dl;
    try {
      await download(`/query/area?format=${fmtKey}`, { method: 'POST', body: { geometry: state.lastArea.geometry } });
    } catch (err) { status(err.message, { error: true }); }
  }));
  el.querySelectorAll('#area-grids tr[data-code]').forEach((tr) => tr.addEventListener('click', () => zoomToGrid(tr.dataset.code)));
}

// ---------------------------------------------------------------- tabs (right panel)
export function renderTabs(opts = {}) {
  const tabs = VIEW_TABS[state.view];
  if (!tabs.some(([k]) => k === state.tab)) state.tab = tabs[0][0];
  $('#tabs').innerHTML = tabs.map(([k, t]) => `<button type="button" data-tab="${k}" class="${k === state.tab ? 'active' : ''}">${t}</button>`).join('');
  $('#tabs').querySelectorAll('button').forEach((b) => b.addEventListener('click', () => { state.tab = b.dataset.tab; renderTabs(); }));
  const body = $('#tab-body');
  if (opts.loading) { body.innerHTML = `<div class="empty">${escapeHtml(opts.loading)}</div>`; return; }
  if (state.tab === 'locate') { body.innerHTML = locateHtml(state.lastLocate); return; }
  if (state.tab === 'area') { body.innerHTML = areaHtml(state.lastArea); bindAreaActions(body); return; }
  renderTab(state.tab, body, ctx);
}

// ---------------------------------------------------------------- navigation helpers
function bboxOf(geometry) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return b;
}

export function showFeature(geometry, { zoom = 16 } = {}) {
  setOverlay('highlight', { type: 'FeatureCollection', features: [{ type: 'Feature', properties: {}, geometry }] });
  if (geometry.type === 'Point') map.flyTo({ center: geometry.coordinates, zoom: Math.max(map.getZoom(), zoom) });
  else { const b = bboxOf(geometry); map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 17 }); }
}

export async function zoomToGrid(code) {
  try {
    const items = await api(`/ogc/collections/grids/items?filter=${encodeURIComponent(`grid_code='${code}'`)}&limit=1`);
    if (items.features.length) showFeature(items.features[0].geometry);
  } catch (err) { status(err.message, { error: true }); }
}

export function fitBbox(b) {
  map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40 });
}

// ---------------------------------------------------------------- admin picker
function setupAdminPicker(divisions) {
  const el = $('#admin-picker');
  const levels = [];
  const render = () => {
    el.innerHTML = levels.map((lv, i) => `<select data-i="${i}"><option value="">${i === 0 ? '— 选择区县 —' : `— ${escapeHtml(LEVELS[lv.children[0] && lv.children[0].level] || '下级')} —`}</option>
      ${lv.children.map((c) => `<option value="${escapeHtml(c.code)}" ${lv.selected === c.code ? 'selected' : ''}>${escapeHtml(c.name)}</option>`).join('')}</select>`).join('');
    el.querySelectorAll('select').forEach((s) => s.addEventListener('change', () => pick(Number(s.dataset.i), s.value)));
  };
  const pick = async (i, code, move = true) => {
    levels.length = i + 1;
    levels[i].selected = code;
    if (!code) { render(); return; }
    try {
      const unit = await api(`/divisions/${code}`);
      if (unit.bbox && move) fitBbox(unit.bbox);
      if (unit.children && unit.children.length) levels.push({ children: unit.children, selected: '' });
      const layer = unit.level === 'township' ? 'townships' : unit.level === 'village' ? 'communities' : null;
      if (layer) {
        const items = await api(`/ogc/collections/${layer}/items?filter=${encodeURIComponent(`code='${code}'`)}&limit=1`).catch(() => null);
        if (items && items.features.length) setOverlay('highlight', { type: 'FeatureCollection', features: items.features.map((f) => ({ ...f, properties: {} })) });
      }
    } catch (err) { status(err.message, { error: true }); }
    render();
  };
  levels.push({ children: divisions, selected: '' });
  render();
  // One area: pre-select it without moving the map (the start view already shows it; a
  // camera animation there would redraw and re-request the first tiles).
  if (divisions.length === 1) pick(0, divisions[0].code, false);
}

// ---------------------------------------------------------------- search
const SEARCH_LAYERS = [
  ['enterprises', '企业', 'name'], ['shelters', '避难场所', 'name'], ['geohazard_points', '地灾点', 'name'],
  ['grids', '网格', 'name'], ['survey_facilities', '设施', 'name'], ['communities', '村社区', 'name'],
];
const searchSignal = latestOnly();

function parseCoords(text) {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*[,，\s]\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!m) return null;
  let lon = Number(m[1]);
  let lat = Number(m[2]);
  let swapped = false;
  if (lon < 60 && lat > 70) { [lon, lat] = [lat, lon]; swapped = true; }
  return { lon, lat, swapped };
}

function cqlString(text) { return `'${text.replace(/'/g, "''")}'`; }

async function searchItems(layer, filter, limit, signal) {
  const q = new URLSearchParams({ filter, limit: String(limit) });
  const answer = await api(`/ogc/collections/${layer}/items?${q}`, { signal });
  return answer.features;
}

async function runSearch(text) {
  const box = $('#search-results');
  const query = text.trim();
  if (!query) { box.hidden = true; return []; }
  const signal = searchSignal();
  const results = [];
  const coords = parseCoords(query);
  box.hidden = false;
  box.innerHTML = '<div class="msg">正在搜索…</div>';
  try {
    if (coords) {
      results.push({ tag: '坐标', title: `${coords.lon}, ${coords.lat}`, sub: `${$('#search-crs').selectedOptions[0].text}${coords.swapped ? '（已按 纬度,经度 识别）' : ''}`, go: () => locate(coords.lon, coords.lat, $('#search-crs').value, { fly: true }) });
    } else if (/^\d{15}$/.test(query)) {
      const g = await api(`/grids/${query}`, { signal }).catch(() => null);
      if (g) results.push({ tag: '网格', title: g.name, sub: g.grid_code, go: () => zoomToGrid(g.grid_code) });
    } else if (/^(\d{6}|\d{9}|\d{12})$/.test(query)) {
      const d = await api(`/divisions/${query}`, { signal }).catch(() => null);
      if (d) results.push({ tag: LEVELS[d.level] || '区划', title: d.name, sub: d.code, go: () => d.bbox && fitBbox(d.bbox) });
      const pts = await searchItems('geohazard_points', `code=${cqlString(query)}`, 3, signal).catch(() => []);
      pts.forEach((f) => results.push({ tag: '地灾点', title: f.properties.name, sub: f.properties.code, go: () => showFeature(f.geometry) }));
    } else if (/^\d{6}-\d{6}-\d+$/.test(query)) {
      const hz = await searchItems('safety_hazards', `hazard_no=${cqlString(query)}`, 3, signal).catch(() => []);
      hz.forEach((f) => results.push({ tag: '隐患', title: f.properties.title, sub: f.properties.hazard_no, go: () => showFeature(f.geometry) }));
    } else if (/^[0-9A-Z]{18}$/i.test(query)) {
      // 统一社会信用代码 (18 characters; no grid, admin or hazard code has that form).
      const found = await api(`/enterprises?uscc=${encodeURIComponent(query.toUpperCase())}`, { signal });
      found.items.forEach((e) => results.push({
        tag: '企业', title: e.name, sub: e.uscc,
        go: () => showFeature({ type: 'Point', coordinates: [e.lon, e.lat] }),
      }));
    } else {
      const safe = query.replace(/[%_\\]/g, '');
      const lists = await Promise.all(SEARCH_LAYERS.filter(([l]) => state.catalogue[l]).map(([layer, tag, field]) => searchItems(layer, `${field} LIKE ${cqlString(`%${safe}%`)}`, 5, signal)
        .then((fs) => fs.map((f) => ({ tag, title: f.properties[field], sub: f.properties.grid_code || f.properties.code || '', go: () => showFeature(f.geometry) })))
        .catch((err) => { if (isAbort(err)) throw err; return []; })));
      lists.flat().forEach((r) => results.push(r));
      if (/^[\d-]+$/.test(query)) {
        const hz = await searchItems('safety_hazards', `hazard_no LIKE ${cqlString(`${safe}%`)}`, 5, signal).catch(() => []);
        hz.forEach((f) => results.push({ tag: '隐患', title: f.properties.title, sub: f.properties.hazard_no, go: () => showFeature(f.geometry) }));
      }
    }
  } catch (err) {
    if (isAbort(err)) return [];
    box.innerHTML = `<div class="msg error-text">${escapeHtml(err.message)}</div>`;
    return [];
  }
  hooks.lastSearch = results;
  box.innerHTML = results.length
    ? results.map((r, i) => `<div class="item" data-i="${i}"><span class="tag">${escapeHtml(r.tag)}</span><span>${escapeHtml(r.title)}</span><span class="sub">${escapeHtml(r.sub)}</span></div>`).join('')
    : '<div class="msg">未找到匹配的结果</div>';
  box.querySelectorAll('.item').forEach((item) => item.addEventListener('click', () => {
    const r = results[Number(item.dataset.i)];
    if (r.go) { r.go(); box.hidden = true; }
  }));
  return results;
}

function setupSearch() {
  const input = $('#search-input');
  const later = debounce(() => runSearch(input.value), 350);
  input.addEventListener('input', later);
  input.addEventListener('keydown', async (e) => {
    if (e.key === 'Enter') {
      const results = await runSearch(input.value);
      if (results.length && results[0].go) { results[0].go(); $('#search-results').hidden = true; }
    } else if (e.key === 'Escape') { $('#search-results').hidden = true; }
  });
  document.addEventListener('click', (e) => { if (!$('#search').contains(e.target)) $('#search-results').hidden = true; });
}

// ---------------------------------------------------------------- toolbar
function setTool(tool) {
  document.querySelectorAll('#toolbar button').forEach((b) => b.classList.toggle('active', b.dataset.tool === tool));
}

function setupToolbar() {
  document.querySelectorAll('#toolbar button').forEach((b) => b.addEventListener('click', () => {
    const tool = b.dataset.tool;
    if (tool === 'polygon' || tool === 'circle') {
      if (popup) popup.remove();
      state.drawPurpose = null;
      draw.start(tool);
      setTool(tool);
    } else if (tool === 'clear') {
      draw.clear();
      setTool(null);
      setOverlay('highlight', null);
      setOverlay('impact', null);
      if (locateMarker) locateMarker.remove();
      if (popup) popup.remove();
    } else if (tool === 'png') {
      exportPng();
    }
  }));
}

export async function exportPng() {
  await hooks.waitIdle();
  const src = map.getCanvas();
  const frame = document.createElement('canvas');
  frame.width = src.width;
  frame.height = src.height;
  await new Promise((resolve) => {
    map.once('render', () => { frame.getContext('2d').drawImage(src, 0, 0); resolve(); });
    map.triggerRepaint();
  });
  const ratio = src.width / src.clientWidth;
  const head = Math.round(40 * ratio);
  const canvas = document.createElement('canvas');
  canvas.width = src.width;
  canvas.height = src.height + head;
  const g = canvas.getContext('2d');
  g.fillStyle = '#0d3b78';
  g.fillRect(0, 0, canvas.width, head);
  g.fillStyle = '#fff';
  g.font = `${Math.round(18 * ratio)}px ${FONT_FAMILY}`;
  g.textBaseline = 'middle';
  const when = new Date().toLocaleString('zh-CN', { hour12: false });
  g.fillText(`${state.scope ? state.scope.name : ''} · ${t(VIEWS[state.view])} · ${when}`, 12 * ratio, head / 2);
  g.fillStyle = MAP_BG; // (the map canvas is transparent where nothing is drawn)
  g.fillRect(0, head, canvas.width, src.height);
  g.drawImage(frame, 0, head);
  const url = canvas.toDataURL('image/png');
  hooks.lastPng = url.length;
  const a = document.createElement('a');
  a.href = url;
  a.download = `一张图_${VIEWS[state.view]}_${when.replace(/[^\d]/g, '').slice(0, 12)}.png`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  return url;
}

// ---------------------------------------------------------------- hazard overlays (issue 9)
async function loadHazardLayers() {
  if (!state.config.hazard_layers) return;
  try {
    const answer = await api('/hazard-layers');
    state.hazardLayers = answer.layers || [];
    if (map) { renderLayerTree(); }
  } catch { state.hazardLayers = []; }
}

// What views.js may use.
const ctx = {
  state, api, download, status, showFeature, zoomToGrid, fitBbox, setOverlay, setVisible, renderTabs,
  renderLegend, rebuildStyle, reloadTiles, locate, areaQuery, get map() { return map; }, get draw() { return draw; },
  hooks, loadGridMetrics, applyFeatureStates,
};

boot();
