// Chinese labels of the enumerations the API returns as keys. Scheme classes (四色, 险情等级 …)
// come from GET /schemes at start-up and override these where they overlap.
// The English toggle: the page is written in Chinese; with English chosen (kept in
// localStorage) every fixed text the page shows is swapped for its English in en.js as it
// enters the document (a MutationObserver), so no template needs a second version.

import { EN, PATTERNS } from './en.js';

const LANG_KEY = 'gis-service.lang';
export const lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh';

/** Keep the choice and show the page again in that language. */
export function setLang(value) {
  localStorage.setItem(LANG_KEY, value === 'en' ? 'en' : 'zh');
  location.reload();
}

const CJK = /[\u3400-\u9fff]/;

function english(key) {
  if (EN[key] !== undefined) return EN[key];
  for (const [re, en] of PATTERNS) {
    const m = re.exec(key);
    if (m) return en.replace(/\$(\d)/g, (_, i) => EN[m[Number(i)]] ?? m[Number(i)]);
  }
  // "图层标题：名称" (popup titles …): the label part in English, the data as recorded.
  const cut = key.indexOf('：');
  if (cut > 0 && EN[key.slice(0, cut)] !== undefined) return `${EN[key.slice(0, cut)]}: ${key.slice(cut + 1)}`;
  return undefined;
}

/** The text in the chosen language (unchanged in Chinese, and for data such as names). */
export function t(text) {
  if (lang !== 'en' || text === null || text === undefined) return text;
  const str = String(text);
  const key = str.trim();
  if (!CJK.test(key)) return str;
  const en = english(key);
  return en === undefined ? str : str.replace(key, en);
}

const ATTRS = ['placeholder', 'title', 'aria-label'];

function translateElement(el) {
  ATTRS.forEach((a) => {
    const v = el.getAttribute(a);
    if (v && CJK.test(v)) { const en = t(v); if (en !== v) el.setAttribute(a, en); }
  });
}

function translateTree(root) {
  if (root.nodeType === Node.TEXT_NODE) {
    if (CJK.test(root.data)) { const en = t(root.data); if (en !== root.data) root.data = en; }
    return;
  }
  if (root.nodeType !== Node.ELEMENT_NODE || root.closest('[translate="no"], script, style')) return;
  translateElement(root);
  root.querySelectorAll('*').forEach(translateElement);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (CJK.test(n.data) && !n.parentElement.closest('[translate="no"]')) {
      const en = t(n.data);
      if (en !== n.data) n.data = en;
    }
  }
}

/** With English chosen: translate the page now and whatever is rendered later. */
export function startTranslation() {
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  if (lang !== 'en') return;
  document.title = t(document.title);
  translateTree(document.body);
  new MutationObserver((records) => {
    records.forEach((r) => {
      if (r.type === 'characterData') translateTree(r.target);
      else if (r.type === 'attributes') translateElement(r.target);
      else r.addedNodes.forEach(translateTree);
    });
  }).observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ATTRS });
}

export const ROLES = {
  admin: '系统管理员', planner: '网格规划员', surveyor: '普查员', commander: '指挥长',
  grid_worker: '网格员', viewer: '查看者',
};

export const STAFF_ROLES = {
  grid_worker: '网格员', grid_leader: '网格长', grid_instructor: '网格指导员',
  grid_supervisor: '网格督导员', grid_admin: '网格管理员', responsible: '责任人',
};

export const LEVELS = {
  province: '省', prefecture: '市', county: '县（区）', township: '乡镇（街道）', village: '村（社区）',
  city: '市', group: '组',
};

/** property name → value → Chinese. */
export const VALUES = {
  sector: {
    hazchem: '危险化学品', fireworks: '烟花爆竹', non_coal_mine: '非煤矿山', coal_mine: '煤矿',
    industry_trade: '工贸', other: '其他',
  },
  kind: {
    basic: '基础网格', dedicated: '专属网格', micro: '微网格',
    landslide: '滑坡', collapse: '崩塌', debris_flow: '泥石流', ground_collapse: '地面塌陷',
    ground_fissure: '地裂缝', subsidence: '地面沉降',
    school: '学校', hospital: '医院', welfare_home: '福利院', culture_venue: '文化场馆',
    scenic_site: '景区', hotel: '宾馆酒店', stadium: '体育场馆', religious_site: '宗教场所',
    market: '商场市场', gas_station: '加油站', depot: '仓储', other: '其他',
  },
  scale: { giant: '特大型', large: '大型', medium: '中型', small: '小型' },
  stability: { stable: '稳定', basically_stable: '基本稳定', unstable: '不稳定' },
  space_type: { indoor: '室内', outdoor: '室外' },
  status: {
    closed: '已关闭', opening: '开放中', open: '已开放', full: '已满员',
    found: '已发现', assigned: '已交办', rectifying: '整改中', closeout_requested: '申请销号',
  },
  verification_status: { pending: '待核查', dispatched: '已派核', feedback: '已反馈', closed: '已办结' },
  verdict: {
    forest_fire: '森林火情', agri_burning: '农事用火', industrial_heat: '工业热源',
    false_alarm: '误报', other: '其他',
  },
  source_kind: {
    satellite: '卫星监测', tower: '瞭望塔', video_ai: '视频识别', uav: '无人机', patrol: '巡护',
    public: '群众报告', checkpoint: '检查站',
  },
  structure: {
    masonry: '砌体', reinforced_concrete: '钢筋混凝土', steel: '钢结构', wood: '木结构', other: '其他',
  },
  use: {
    residential: '住宅', commercial: '商业', industrial: '工业', public: '公共服务', mixed: '混合',
    other: '其他',
  },
  year_band: {
    pre1980: '1980年以前', '1980s': '1980年代', '1990s': '1990年代', '2000s': '2000年代',
    '2010s': '2010年代', '2020s': '2020年以后',
  },
  urban_rural_code: {
    111: '主城区', 112: '城乡结合区', 121: '镇中心区', 122: '镇乡结合区', 123: '特殊区域',
    210: '乡中心区', 220: '村庄',
  },
};

/** Area-summary keys (POST /query/area totals) shown in the summary table, in order. */
export const AREA_TOTALS = [
  ['buildings', '房屋（栋）'], ['buildings_households', '户数'], ['buildings_population', '人口'],
  ['enterprises', '企业'], ['enterprises_red', '　红色（重大风险）'], ['enterprises_orange', '　橙色（较大风险）'],
  ['enterprises_yellow', '　黄色（一般风险）'], ['enterprises_blue', '　蓝色（低风险）'],
  ['safety_hazards', '隐患'], ['safety_hazards_open', '　未销号'], ['safety_hazards_overdue', '　逾期'],
  ['safety_hazards_major', '　重大隐患'],
  ['geohazard_points', '地灾隐患点'], ['geohazard_points_threatened_people', '　受威胁人数'],
  ['geohazard_zones', '地灾风险区'], ['shelters', '避难场所'], ['shelters_capacity', '　容纳人数'],
  ['facilities', '公共服务设施'], ['facilities_school', '　学校'], ['facilities_hospital', '　医院'],
  ['facilities_welfare_home', '　福利院'],
];

// One formatter each: value.toLocaleString() builds a new Intl.NumberFormat per call, which
// cost ~0.4 s of main thread for the grid table at start-up.
const INTEGER = new Intl.NumberFormat('zh-CN');
const DECIMAL = new Intl.NumberFormat('zh-CN', { maximumFractionDigits: 2 });

export function fmt(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (value === true) return '是';
  if (value === false) return '否';
  if (typeof value === 'number') {
    return (Number.isInteger(value) ? INTEGER : DECIMAL).format(value);
  }
  return String(value);
}

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}
