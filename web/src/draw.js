// Drawing a polygon or a circle on the map (no plugin): the result is a GeoJSON Polygon in
// lon/lat that the page sends to POST /query/area or the impact analysis.

const EMPTY = { type: 'FeatureCollection', features: [] };
export const DRAW_SOURCE = 'draw';

/** A geodesic-enough circle (64 vertices) of radius metres around [lon, lat]. */
export function circlePolygon(center, radius, steps = 64) {
  const [lon, lat] = center;
  const dLat = radius / 110574;
  const dLon = radius / (111320 * Math.cos((lat * Math.PI) / 180));
  const ring = [];
  for (let i = 0; i < steps; i += 1) {
    const a = (i / steps) * 2 * Math.PI;
    ring.push([round(lon + dLon * Math.cos(a)), round(lat + dLat * Math.sin(a))]);
  }
  ring.push(ring[0]);
  return { type: 'Polygon', coordinates: [ring] };
}

function round(v) { return Math.round(v * 1e7) / 1e7; }

/** Metres between two lon/lat points (haversine, good enough for a drawing radius). */
export function distance(a, b) {
  const R = 6371008.8;
  const toRad = (d) => (d * Math.PI) / 180;
  const dLat = toRad(b[1] - a[1]);
  const dLon = toRad(b[0] - a[0]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(a[1])) * Math.cos(toRad(b[1])) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

/** Whether a GeoJSON source's data holds any feature. */
function hasFeatures(data) { return Boolean(data && data.features && data.features.length); }

/**
 * A layer of an empty GeoJSON overlay (drawing, highlight, proposal …) is hidden: MapLibre
 * loads no tiles for a source none of whose layers is visible. Otherwise each empty overlay
 * cuts its own tiles of the view in the worker at start-up (six overlays, four tiles each on
 * the district view), each answer another message and redraw before the first map is idle.
 */
export function overlayVisibility(data) { return hasFeatures(data) ? 'visible' : 'none'; }

/** Show or hide the layers of one GeoJSON overlay after its data changed. */
export function showOverlay(map, source, data) {
  const v = overlayVisibility(data);
  map.getLayersOrder().forEach((id) => {
    const layer = map.getLayer(id);
    if (layer && layer.source === source && layer.visibility !== v) map.setLayoutProperty(id, 'visibility', v);
  });
}

export function drawLayers() {
  return [
    { id: 'draw-fill', type: 'fill', source: DRAW_SOURCE, filter: ['==', ['geometry-type'], 'Polygon'],
      paint: { 'fill-color': '#1e6fff', 'fill-opacity': 0.12 } },
    { id: 'draw-line', type: 'line', source: DRAW_SOURCE,
      paint: { 'line-color': '#0d3b78', 'line-width': 2, 'line-dasharray': [3, 2] } },
    { id: 'draw-vertex', type: 'circle', source: DRAW_SOURCE, filter: ['==', ['geometry-type'], 'Point'],
      paint: { 'circle-radius': 4, 'circle-color': '#fff', 'circle-stroke-color': '#0d3b78', 'circle-stroke-width': 2 } },
  ];
}

export class DrawTool {
  constructor(map, { onFinish, onHint }) {
    this.map = map;
    this.onFinish = onFinish;
    this.onHint = onHint || (() => {});
    this.mode = null;
    this.points = [];
    this.cursor = null;
    this.result = null;
    this.handlers = {
      click: (e) => this.click(e),
      dblclick: (e) => this.dblclick(e),
      mousemove: (e) => this.move(e),
      key: (e) => this.key(e),
    };
  }

  get active() { return this.mode !== null; }

  start(mode) {
    this.cancel();
    this.mode = mode;
    this.points = [];
    this.result = null;
    this.map.doubleClickZoom.disable();
    this.map.getCanvas().style.cursor = 'crosshair';
    this.map.on('click', this.handlers.click);
    this.map.on('dblclick', this.handlers.dblclick);
    this.map.on('mousemove', this.handlers.mousemove);
    document.addEventListener('keydown', this.handlers.key);
    this.onHint(mode === 'polygon' ? '单击添加顶点，双击或按回车结束，Esc 取消' : '单击确定圆心，再单击确定半径，Esc 取消');
    this.render();
  }

  stop() {
    this.map.off('click', this.handlers.click);
    this.map.off('dblclick', this.handlers.dblclick);
    this.map.off('mousemove', this.handlers.mousemove);
    document.removeEventListener('keydown', this.handlers.key);
    this.map.getCanvas().style.cursor = '';
    // Re-enabled after this event loop turn so the finishing double click does not zoom.
    setTimeout(() => this.map.doubleClickZoom.enable(), 0);
    this.mode = null;
    this.onHint(null);
  }

  cancel() {
    if (this.mode) this.stop();
    this.points = [];
    this.cursor = null;
    this.render();
  }

  clear() {
    this.cancel();
    this.result = null;
    this.render();
  }

  click(e) {
    const p = [round(e.lngLat.lng), round(e.lngLat.lat)];
    if (this.mode === 'circle') {
      if (this.points.length === 0) { this.points = [p]; this.render(); return; }
      const radius = distance(this.points[0], p);
      if (radius < 1) return;
      this.finish(circlePolygon(this.points[0], radius), { kind: 'circle', center: this.points[0], radius_m: Math.round(radius) });
      return;
    }
    if (this.points.length >= 3) {
      const first = this.map.project(this.points[0]);
      if (Math.hypot(first.x - e.point.x, first.y - e.point.y) < 8) { this.finishPolygon(); return; }
    }
    const last = this.points[this.points.length - 1];
    if (last) {
      const lp = this.map.project(last);
      if (Math.hypot(lp.x - e.point.x, lp.y - e.point.y) < 3) return; // the clicks of a double click
    }
    this.points.push(p);
    this.render();
  }

  dblclick(e) {
    e.preventDefault();
    if (this.mode === 'polygon') this.finishPolygon();
  }

  move(e) {
    this.cursor = [e.lngLat.lng, e.lngLat.lat];
    if (this.points.length) this.render();
  }

  key(e) {
    if (e.key === 'Escape') this.cancel();
    else if (e.key === 'Enter' && this.mode === 'polygon') this.finishPolygon();
  }

  finishPolygon() {
    if (this.points.length < 3) { this.onHint('至少需要 3 个顶点'); return; }
    const ring = [...this.points, this.points[0]];
    this.finish({ type: 'Polygon', coordinates: [ring] }, { kind: 'polygon' });
  }

  finish(geometry, meta) {
    this.stop();
    this.points = [];
    this.cursor = null;
    this.result = geometry;
    this.render();
    this.onFinish(geometry, meta);
  }

  /** Show a geometry that did not come from drawing (a warning, a search result …). */
  show(geometry) {
    this.cancel();
    this.result = geometry;
    this.render();
  }

  data() {
    const features = [];
    if (this.result) features.push({ type: 'Feature', properties: {}, geometry: this.result });
    if (this.mode === 'polygon' && this.points.length) {
      const line = this.cursor ? [...this.points, this.cursor] : this.points;
      if (line.length >= 3) features.push({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...line, line[0]]] } });
      else if (line.length === 2) features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: line } });
      this.points.forEach((p) => features.push({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: p } }));
    }
    if (this.mode === 'circle' && this.points.length) {
      features.push({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: this.points[0] } });
      if (this.cursor) features.push({ type: 'Feature', properties: {}, geometry: circlePolygon(this.points[0], distance(this.points[0], this.cursor)) });
    }
    return features.length ? { type: 'FeatureCollection', features } : EMPTY;
  }

  render() {
    const source = this.map.getSource(DRAW_SOURCE);
    if (!source) return;
    const data = this.data();
    source.setData(data);
    showOverlay(this.map, DRAW_SOURCE, data);
  }
}
