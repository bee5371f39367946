"""What each importable table accepts: header names, value spellings, keys. Data only.

The spellings come from the ledgers and survey tables bureaus keep (DOMAIN B1, C1, D1, D2,
E2, F, H): the 四色 enterprise list, the 隐患 台账, the 地质灾害隐患点 register, the
避难场所 and 普查 tables. Enumeration keys are the database's own tuples from
:mod:`gis_service.db.models`, so a key the database would refuse cannot be declared here
(:class:`~etl.mapping.spec.FieldSpec` checks it when this module loads).

Aliases are listed most specific first: when a file has both ``企业名称`` and ``名称``,
``企业名称`` fills ``name`` and ``名称`` is kept in ``attributes``.
"""

from __future__ import annotations

from typing import Any

from etl.mapping.spec import (
    LAT_ALIASES,
    LON_ALIASES,
    FieldSpec,
    TargetSpec,
    TextPattern,
    synonyms,
)
from gis_service.db.models import (
    BARRIER_KINDS,
    BUILDING_USES,
    DANGER_GRADES,
    DURATION_CLASSES,
    FACILITY_KINDS,
    FIRE_SOURCES,
    FIRE_VERDICTS,
    FIRE_VERIFICATION,
    GEOHAZARD_KINDS,
    GEOHAZARD_SCALES,
    GRID_KINDS,
    HAZARD_CATEGORIES,
    HAZARD_FOUND_VIA,
    HAZARD_LEVELS,
    HAZARD_STATUSES,
    RISK_COLORS,
    SECTORS,
    SHELTER_GRADES,
    SHELTER_HAZARDS,
    SHELTER_STATUSES,
    SPACE_TYPES,
    SPECIAL_FLAGS,
    STABILITY,
    STRUCTURES,
    SUPERVISION_LEVELS,
    URBAN_RURAL,
    YEAR_BANDS,
    ZONE_RISK_LEVELS,
)

# ---------------------------------------------------------------------------
# Formats of identifiers
# ---------------------------------------------------------------------------
USCC_FORMAT = TextPattern(
    r"[0-9A-Z]{18}", "18 characters, digits and capital letters", "18 位数字或大写字母"
)
GRID_CODE_FORMAT = TextPattern(r"\d{15}", "15 digits", "15 位数字")
VILLAGE_CODE_FORMAT = TextPattern(r"\d{12}", "12 digits", "12 位数字")
CODE_FORMAT = TextPattern(
    r"[0-9A-Z][0-9A-Z_.\-]{0,31}",
    "up to 32 letters, digits, '-', '_' or '.'",
    "不超过 32 位的字母、数字、-、_ 或 .",
)

COUNT_MAX = 10_000_000

# ---------------------------------------------------------------------------
# Value spellings (key → spellings; the first spelling is the one messages show)
# ---------------------------------------------------------------------------
OTHER = ("其他", "其它")

RISK_COLOR_VALUES = synonyms(
    {
        "red": ("红", "红色", "重大", "重大风险", "红色风险", "一级", "red", "R"),
        "orange": ("橙", "橙色", "较大", "较大风险", "橙色风险", "二级", "orange", "O"),
        "yellow": ("黄", "黄色", "一般", "一般风险", "黄色风险", "三级", "yellow", "Y"),
        "blue": ("蓝", "蓝色", "低", "低风险", "蓝色风险", "四级", "blue", "B"),
    }
)
SECTOR_VALUES = synonyms(
    {
        "hazchem": (
            "危化品",
            "危化",
            "危险化学品",
            "危险化学品企业",
            "危化企业",
            "化工和危险化学品",
            "化工",
            "危险化学品生产",
            "危险化学品储存",
            "危险化学品使用",
            "危险化学品经营",
            "危化品生产",
            "危化品储存",
            "危化品使用",
            "危化品经营",
            "加油站",
            "加油加气站",
        ),
        "fireworks": ("烟花爆竹", "烟花爆竹生产", "烟花爆竹批发", "烟花爆竹零售", "烟花爆竹经营"),
        "non_coal_mine": (
            "非煤矿山",
            "金属非金属矿山",
            "非煤矿",
            "尾矿库",
            "露天矿山",
            "地下矿山",
            "采石场",
            "小型露天采石场",
        ),
        "coal_mine": ("煤矿", "煤炭", "煤矿企业"),
        "industry_trade": (
            "工贸",
            "工贸企业",
            "工贸行业",
            "冶金",
            "有色",
            "有色金属",
            "建材",
            "机械",
            "轻工",
            "纺织",
            "烟草",
            "商贸",
        ),
        "other": OTHER,
    }
)
SPECIAL_FLAG_VALUES = synonyms(
    {
        "dust_explosion": ("粉尘涉爆", "涉爆粉尘", "粉尘爆炸"),
        "ammonia_refrigeration": ("涉氨制冷", "液氨制冷", "氨制冷"),
        "confined_space": ("有限空间", "有限空间作业"),
        "hazardous_process": ("危险化工工艺", "危险工艺", "重点监管危险化工工艺"),
        "major_hazard_source": ("重大危险源", "构成重大危险源"),
        "in_chemical_park": ("化工园区", "位于化工园区", "园区内"),
    }
)
STRUCTURE_VALUES = synonyms(
    {
        "masonry": ("砌体", "砌体结构", "砖混", "砖混结构", "砖木", "砖木结构", "砖石"),
        "reinforced_concrete": (
            "钢混",
            "钢筋混凝土",
            "钢筋混凝土结构",
            "钢混结构",
            "框架",
            "框架结构",
            "框剪",
            "框架剪力墙",
            "剪力墙",
            "RC",
        ),
        "steel": ("钢", "钢结构"),
        "wood": ("木", "木结构", "timber"),
        "other": (*OTHER, "其他结构"),
    }
)
BUILDING_USE_VALUES = synonyms(
    {
        "residential": ("住宅", "居住", "住房", "民居", "居民住宅"),
        "commercial": ("商业", "商服", "商业服务", "办公", "商业办公"),
        "industrial": ("工业", "厂房", "仓储", "工业仓储"),
        "public": ("公共", "公共服务", "公共建筑", "教育", "医疗", "文化"),
        "mixed": ("混合", "商住", "商住混合", "综合"),
        "other": OTHER,
    }
)


def _year_band(year: int) -> str:
    """The band of a construction year, so ``1995`` in a 建造年代 column is accepted."""
    return "pre1980" if year < 1980 else "2020s" if year >= 2020 else f"{year // 10 * 10}s"


_YEARS = range(1800, 2100)
YEAR_BAND_VALUES = synonyms(
    {
        band: (
            *named,
            *(f"{y}{suffix}" for y in _YEARS if _year_band(y) == band for suffix in ("", "年")),
        )
        for band, named in {
            "pre1980": ("1980年以前", "1980年前", "1980以前", "1979年及以前", "80年代以前"),
            "1980s": ("1980-1989", "1980-1989年", "1980~1989", "1980年代", "80年代"),
            "1990s": ("1990-1999", "1990-1999年", "1990~1999", "1990年代", "90年代"),
            "2000s": ("2000-2009", "2000-2009年", "2000~2009", "2000年代"),
            "2010s": ("2010-2019", "2010-2019年", "2010~2019", "2010年代"),
            "2020s": ("2020年以后", "2020年及以后", "2020年至今", "2020-2029", "2020年代"),
        }.items()
    }
)
URBAN_RURAL_VALUES = synonyms({"urban": ("城镇", "城市", "城区"), "rural": ("农村", "乡村")})
FACILITY_KIND_VALUES = synonyms(
    {
        "school": (
            "学校",
            "中小学",
            "小学",
            "中学",
            "幼儿园",
            "高校",
            "大学",
            "职业学校",
            "czt_xx",
        ),
        "hospital": (
            "医院",
            "卫生院",
            "医疗卫生机构",
            "医疗机构",
            "社区卫生服务中心",
            "诊所",
            "卫生室",
            "czt_ylwsjg",
        ),
        "welfare_home": (
            "福利院",
            "养老院",
            "敬老院",
            "养老机构",
            "社会福利机构",
            "儿童福利院",
            "提供住宿的社会服务机构",
            "czt_shfljg",
        ),
        "culture_venue": (
            "公共文化场所",
            "文化场所",
            "图书馆",
            "博物馆",
            "文化馆",
            "美术馆",
            "影剧院",
            "czt_ggwhcs",
        ),
        "scenic_site": ("旅游景区", "景区", "景点", "czt_lyjq"),
        "hotel": ("星级饭店", "酒店", "宾馆", "饭店", "czt_xjjd"),
        "stadium": ("体育场馆", "体育馆", "体育场", "czt_tycg"),
        "religious_site": ("宗教活动场所", "宗教场所", "寺庙", "教堂", "清真寺", "czt_zjhdcs"),
        "market": ("市场", "商场", "超市", "大型商超", "集贸市场", "农贸市场", "czt_jysc"),
        "gas_station": ("加油加气站", "加油站", "加气站", "zdyh_jyjqz"),
        "depot": ("救灾物资储备库", "物资储备库", "储备库", "物资库", "仓库", "zhjzzy_zf_jzwz"),
        "other": OTHER,
    }
)
GEOHAZARD_KIND_VALUES = synonyms(
    {
        "landslide": ("滑坡",),
        "collapse": ("崩塌", "危岩", "危岩体", "rockfall"),
        "debris_flow": ("泥石流", "debris flow"),
        "ground_collapse": ("地面塌陷", "岩溶塌陷", "采空塌陷", "塌陷"),
        "ground_fissure": ("地裂缝",),
        "subsidence": ("地面沉降", "沉降"),
    }
)
GEOHAZARD_SCALE_VALUES = synonyms(
    {
        "giant": ("巨型", "特大型", "特大"),
        "large": ("大型",),
        "medium": ("中型",),
        "small": ("小型",),
    }
)
DANGER_GRADE_VALUES = synonyms(
    {
        "I": ("特大型", "特大", "Ⅰ", "Ⅰ级", "一级", "1"),
        "II": ("大型", "Ⅱ", "Ⅱ级", "二级", "2"),
        "III": ("中型", "Ⅲ", "Ⅲ级", "三级", "3"),
        "IV": ("小型", "Ⅳ", "Ⅳ级", "四级", "4"),
    }
)
STABILITY_VALUES = synonyms(
    {
        "stable": ("稳定",),
        "basically_stable": ("基本稳定", "较稳定"),
        "unstable": ("不稳定", "欠稳定"),
    }
)
ZONE_RISK_VALUES = synonyms(
    {
        "very_high": ("极高", "极高风险", "极高风险区"),
        "high": ("高", "高风险", "高风险区"),
        "medium": ("中", "中等", "中风险", "中风险区"),
        "low": ("低", "低风险", "低风险区"),
    }
)
SHELTER_GRADE_VALUES = synonyms(
    {
        "province": ("省级", "省"),
        "city": ("市级", "地市级", "市"),
        "county": ("县级", "县(区)级", "区级", "县区级", "县"),
        "township": ("乡镇级", "乡镇(街道)级", "街道级", "乡级", "镇级", "乡镇"),
        "village": ("村级", "村(社区)级", "社区级", "村", "社区"),
    }
)
SPACE_TYPE_VALUES = synonyms(
    {
        "indoor": ("室内", "室内型", "室内场所"),
        "outdoor": ("室外", "室外型", "室外场所", "露天"),
    }
)
DURATION_VALUES = synonyms(
    {
        "emergency": ("紧急", "紧急避难", "紧急避难场所"),
        "short": ("短期", "短期避难", "短期避难场所"),
        "medium": ("中期", "中期避难", "中期避难场所"),
        "long": ("长期", "长期避难", "长期避难场所"),
    }
)
SHELTER_HAZARD_VALUES = synonyms(
    {
        "earthquake": ("地震",),
        "flood": ("洪涝", "洪水", "防汛", "水灾", "内涝"),
        "typhoon": ("台风",),
        "geohazard": ("地质灾害", "地灾"),
        "fire": ("火灾", "消防"),
        "hazchem": ("危化品", "危险化学品", "危化", "化学事故"),
        "public_health": ("公共卫生", "公共卫生事件", "疫情", "传染病"),
    }
)
SHELTER_STATUS_VALUES = synonyms(
    {
        "closed": ("关闭", "已关闭", "未开放", "未启用"),
        "opening": ("准备开放", "正在开放", "筹备开放"),
        "open": ("开放", "已开放", "开放中", "启用", "已启用"),
        "full": ("已满", "满员", "满"),
    }
)
HAZARD_LEVEL_VALUES = synonyms(
    {
        "general": ("一般", "一般隐患", "一般事故隐患"),
        "major": ("重大", "重大隐患", "重大事故隐患"),
    }
)
SUPERVISION_LEVEL_VALUES = synonyms(
    {
        "province": ("省级", "省级挂牌督办", "省挂牌督办", "省"),
        "city": ("市级", "市级挂牌督办", "市挂牌督办", "市"),
        "county": ("县级", "区级", "县级挂牌督办", "县(区)级", "县（区）级", "县", "区"),
    }
)
HAZARD_CATEGORY_VALUES = synonyms(
    {
        "basic_management": ("基础管理类", "基础管理", "管理类"),
        "site": ("现场类", "现场", "现场管理类"),
    }
)
HAZARD_FOUND_VIA_VALUES = synonyms(
    {
        "self_check": ("企业自查", "自查", "自查自报"),
        "inspection": ("部门检查", "执法检查", "监督检查", "检查", "执法"),
        "grid_patrol": ("网格员巡查", "网格巡查", "网格员上报"),
        "public_report": ("群众举报", "举报", "12350", "投诉举报"),
        "expert": ("专家指导服务", "专家", "专家指导", "专家检查"),
        "covert": ("暗查暗访", "暗访", "暗查"),
        "assigned_from_above": ("上级交办", "交办", "上级督办"),
        "survey": ("普查",),
    }
)
HAZARD_STATUS_VALUES = synonyms(
    {
        "found": ("未整改", "已发现", "新发现", "待交办"),
        "assigned": ("待整改", "已交办", "已下达"),
        "rectifying": ("整改中", "正在整改", "治理中"),
        "closeout_requested": ("申请销号", "待销号", "待验收", "待复核"),
        "closed": ("已整改", "已销号", "整改完成", "已完成", "已闭环", "已治理"),
    }
)
FIRE_SOURCE_VALUES = synonyms(
    {
        "satellite": (
            "卫星",
            "卫星监测",
            "卫星遥感",
            "卫星热点",
            "热点",
            "MODIS",
            "VIIRS",
            "FIRMS",
            "葵花",
            "Himawari",
            "风云",
            "FY",
        ),
        "tower": ("瞭望塔", "瞭望", "瞭望台"),
        "video_ai": ("视频", "视频监控", "智能视频", "视频AI", "视频识别"),
        "uav": ("无人机", "UAV", "drone"),
        "patrol": ("巡护", "巡查", "护林员", "地面巡护"),
        "public": ("群众报告", "群众", "群众举报", "电话报警", "12119"),
        "checkpoint": ("检查站", "卡口", "防火检查站"),
    }
)
FIRE_VERIFICATION_VALUES = synonyms(
    {
        "pending": ("待核查", "未核查", "待处理"),
        "dispatched": ("已派发", "已下发", "核查中", "处置中"),
        "feedback": ("已反馈", "已回复"),
        "closed": ("已办结", "办结", "已关闭", "已核查", "已完成"),
    }
)
FIRE_VERDICT_VALUES = synonyms(
    {
        "forest_fire": ("林火", "森林火灾", "森林火情", "山火"),
        "agri_burning": ("农事用火", "烧荒", "秸秆焚烧", "烧秸秆", "计划烧除"),
        "industrial_heat": ("工业热源", "工厂热源", "工业热点"),
        "false_alarm": ("误报", "虚警", "非火点", "无火情"),
        "other": OTHER,
    }
)
BARRIER_KIND_VALUES = synonyms(
    {
        "road_major": (
            "主干道",
            "主干路",
            "快速路",
            "干道",
            "高速公路",
            "高速",
            "国道",
            "省道",
        ),
        "road_minor": ("次干道", "次干路", "支路", "道路", "县道", "乡道", "村道", "街巷"),
        "river": ("河流", "河道", "水系", "河", "沟渠", "水渠"),
        "rail": ("铁路", "铁道", "railway"),
        "wall": ("围墙", "墙"),
    }
)
GRID_KIND_VALUES = synonyms(
    {
        "basic": ("基础网格", "基础", "一般网格"),
        "dedicated": ("专属网格", "专属", "专业网格"),
        "micro": ("微网格", "微"),
    }
)
CLOSED_VALUES = synonyms({"true": ("已销号",), "false": ("未销号",)})
TWO_CARDS_VALUES = synonyms({"true": ("已发放",), "false": ("未发放",)})
ESCALATED_VALUES = synonyms({"true": ("挂牌督办", "已挂牌"), "false": ("未挂牌",)})

# ---------------------------------------------------------------------------
# Aliases shared by several tables
# ---------------------------------------------------------------------------
ADDRESS = ("详细地址", "地址", "地点", "位置", "address", "addr")
PEOPLE_UNITS = ("人",)
HOUSEHOLD_UNITS = ("户",)


def _name(*specific: str, max_len: int = 200) -> FieldSpec:
    """The required ``name`` column: the specific spellings, then ``名称``."""
    return FieldSpec(
        "name",
        "text",
        "名称",
        "name",
        (*specific, "名称", "name"),
        required=True,
        max_len=max_len,
    )


def _code(*aliases: str) -> FieldSpec:
    """The required ``code`` of registers (隐患点统一编号, 风险区编号, 林班号)."""
    return FieldSpec(
        "code",
        "text",
        "编号",
        "code",
        (*aliases, "编号", "code"),
        required=True,
        max_len=32,
        identifier=True,
        pattern=CODE_FORMAT,
    )


def _count(
    name: str, title_zh: str, title: str, aliases: tuple[str, ...], units: tuple[str, ...]
) -> FieldSpec:
    """A non-negative count stored as 0 when blank (the columns are NOT NULL DEFAULT 0)."""
    return FieldSpec(
        name,
        "int",
        title_zh,
        title,
        aliases,
        min_value=0,
        max_value=COUNT_MAX,
        default=0,
        units=units,
    )


# ---------------------------------------------------------------------------
# The targets
# ---------------------------------------------------------------------------
ENTERPRISE = TargetSpec(
    table="enterprise",
    title_zh="生产经营单位",
    title="enterprise",
    geometry="point",
    natural_key=("uscc",),
    fields=(
        FieldSpec(
            "uscc",
            "text",
            "统一社会信用代码",
            "unified social credit code",
            (
                "统一社会信用代码",
                "社会信用代码",
                "社会统一信用代码",
                "信用代码",
                "统一代码",
                "USCC",
                "credit_code",
            ),
            required=True,
            max_len=18,
            identifier=True,
            pattern=USCC_FORMAT,
        ),
        FieldSpec(
            "name",
            "text",
            "企业名称",
            "enterprise name",
            (
                "企业名称",
                "企业(单位)名称",
                "生产经营单位名称",
                "单位名称",
                "企业全称",
                "名称",
                "enterprise_name",
                "company_name",
                "company",
                "name",
            ),
            required=True,
            max_len=200,
        ),
        FieldSpec(
            "address",
            "text",
            "地址",
            "address",
            ("生产经营地址", "经营地址", "企业地址", "单位地址", "注册地址", *ADDRESS),
            max_len=300,
        ),
        FieldSpec(
            "sector",
            "enum",
            "行业类别",
            "sector",
            (
                "行业类别",
                "行业领域",
                "监管行业",
                "行业分类",
                "所属行业",
                "行业",
                "sector",
                "industry",
            ),
            required=True,
            choices=SECTORS,
            values=SECTOR_VALUES,
            fallback="other",
        ),
        FieldSpec(
            "sub_sector",
            "text",
            "行业细类",
            "sub-sector",
            ("行业细类", "细分行业", "行业小类", "子行业", "经营类型", "企业类型", "sub_sector"),
            max_len=100,
        ),
        FieldSpec(
            "special_flags",
            "enum_list",
            "专项类别",
            "special category",
            ("专项类别", "专项类型", "涉及专项", "重点领域", "特殊类别", "special_flags"),
            choices=SPECIAL_FLAGS,
            values=SPECIAL_FLAG_VALUES,
        ),
        FieldSpec(
            "risk_level",
            "enum",
            "风险等级",
            "risk level",
            (
                "风险等级",
                "风险等级(四色)",
                "四色等级",
                "安全风险等级",
                "风险分级",
                "风险级别",
                "风险颜色",
                "risk_level",
                "risk",
            ),
            required=True,
            choices=RISK_COLORS,
            values=RISK_COLOR_VALUES,
        ),
        FieldSpec(
            "assessed_at",
            "date",
            "评估日期",
            "assessment date",
            ("评估日期", "评估时间", "定级日期", "定级时间", "评定日期", "assessed_at"),
        ),
        FieldSpec(
            "employees",
            "int",
            "从业人数",
            "employees",
            ("从业人数", "从业人员数", "员工人数", "职工人数", "员工数", "employees"),
            min_value=0,
            max_value=COUNT_MAX,
            units=PEOPLE_UNITS,
        ),
    ),
)

BUILDING = TargetSpec(
    table="building",
    title_zh="房屋建筑",
    title="building",
    geometry="polygon",
    natural_key=(),
    fields=(
        FieldSpec(
            "name",
            "text",
            "建筑名称",
            "building name",
            ("建筑名称", "房屋名称", "楼栋名称", "楼栋", "名称", "name"),
            max_len=200,
        ),
        _count(
            "households",
            "户数",
            "households",
            ("户数", "住户数", "居住户数", "总户数", "households"),
            HOUSEHOLD_UNITS,
        ),
        _count(
            "population",
            "人口",
            "population",
            ("人口", "人数", "居住人数", "居住人口", "常住人口", "population"),
            PEOPLE_UNITS,
        ),
        FieldSpec(
            "structure",
            "enum",
            "结构类型",
            "structure",
            ("结构类型", "建筑结构", "房屋结构", "结构", "structure"),
            choices=STRUCTURES,
            values=STRUCTURE_VALUES,
            fallback="other",
        ),
        FieldSpec(
            "floors",
            "int",
            "层数",
            "floors",
            ("地上层数", "层数", "建筑层数", "楼层数", "总层数", "floors"),
            min_value=-10,
            max_value=200,
            units=("层",),
        ),
        FieldSpec(
            "use",
            "enum",
            "用途",
            "use",
            ("房屋用途", "建筑用途", "使用功能", "用途", "用途类型", "use"),
            choices=BUILDING_USES,
            values=BUILDING_USE_VALUES,
            fallback="other",
        ),
        FieldSpec(
            "year_band",
            "enum",
            "建造年代",
            "construction period",
            (
                "建造年代",
                "建成年代",
                "建设年代",
                "建造年份",
                "建成年份",
                "建成时间",
                "year_built",
                "year_band",
            ),
            choices=YEAR_BANDS,
            values=YEAR_BAND_VALUES,
        ),
        FieldSpec(
            "urban_rural",
            "enum",
            "城乡类型",
            "urban or rural",
            ("城乡类型", "城乡属性", "城乡分类", "城镇农村", "城乡", "urban_rural"),
            choices=URBAN_RURAL,
            values=URBAN_RURAL_VALUES,
        ),
    ),
)

FACILITY = TargetSpec(
    table="facility",
    title_zh="公共服务设施",
    title="public-service facility",
    geometry="point",
    natural_key=(),
    fields=(
        FieldSpec(
            "kind",
            "enum",
            "设施类型",
            "facility kind",
            ("设施类型", "设施类别", "类型", "类别", "kind", "type"),
            required=True,
            choices=FACILITY_KINDS,
            values=FACILITY_KIND_VALUES,
        ),
        _name("设施名称", "机构名称", "学校名称", "医院名称", "场所名称", "单位名称"),
        FieldSpec(
            "people",
            "int",
            "人数",
            "people present",
            (
                "人数",
                "常驻人数",
                "在校生数",
                "在校学生数",
                "学生数",
                "年末在院人数",
                "实有床位",
                "床位数",
                "日常人数",
                "people",
            ),
            min_value=0,
            max_value=COUNT_MAX,
            units=("人", "张"),
        ),
    ),
)

GEOHAZARD_POINT = TargetSpec(
    table="geohazard_point",
    title_zh="地质灾害隐患点",
    title="geohazard point",
    geometry="point",
    natural_key=("code",),
    fields=(
        _code("统一编号", "隐患点编号", "灾害点编号"),
        _name("隐患点名称", "灾害点名称"),
        FieldSpec(
            "kind",
            "enum",
            "灾害类型",
            "geohazard kind",
            ("灾害类型", "灾种", "隐患点类型", "灾害种类", "类型", "kind", "type"),
            required=True,
            choices=GEOHAZARD_KINDS,
            values=GEOHAZARD_KIND_VALUES,
        ),
        FieldSpec(
            "scale",
            "enum",
            "规模等级",
            "scale",
            ("规模等级", "灾害规模等级", "规模级别", "scale"),
            choices=GEOHAZARD_SCALES,
            values=GEOHAZARD_SCALE_VALUES,
        ),
        FieldSpec(
            "danger_grade",
            "enum",
            "险情等级",
            "danger grade",
            ("险情等级", "险情级别", "险情分级", "danger_grade"),
            choices=DANGER_GRADES,
            values=DANGER_GRADE_VALUES,
        ),
        FieldSpec(
            "stability",
            "enum",
            "稳定性",
            "stability",
            ("稳定性", "稳定状态", "稳定性现状", "稳定程度", "stability"),
            choices=STABILITY,
            values=STABILITY_VALUES,
        ),
        _count(
            "threatened_households",
            "威胁户数",
            "threatened households",
            ("威胁户数", "受威胁户数", "威胁住户", "threatened_households"),
            HOUSEHOLD_UNITS,
        ),
        _count(
            "threatened_people",
            "威胁人数",
            "threatened people",
            ("威胁人数", "受威胁人数", "威胁人口", "threatened_people"),
            PEOPLE_UNITS,
        ),
        FieldSpec(
            "threatened_property",
            "float",
            "威胁财产(万元)",
            "threatened property (10k CNY)",
            ("威胁财产", "威胁资产", "潜在经济损失", "threatened_property"),
            min_value=0,
            units=("万元",),
        ),
        FieldSpec(
            "monitoring",
            "text",
            "监测方式",
            "monitoring",
            ("监测方式", "监测手段", "监测措施", "monitoring"),
            max_len=500,
        ),
        FieldSpec(
            "two_cards_issued",
            "bool",
            "是否发放两卡",
            "two cards issued",
            ("是否发放两卡", "两卡发放", "发放两卡", "两卡", "two_cards_issued"),
            values=TWO_CARDS_VALUES,
            default=False,
        ),
        FieldSpec(
            "closed",
            "bool",
            "是否销号",
            "closed",
            ("是否销号", "销号", "closed"),
            values=CLOSED_VALUES,
            default=False,
        ),
    ),
)

GEOHAZARD_ZONE = TargetSpec(
    table="geohazard_zone",
    title_zh="地质灾害风险区",
    title="geohazard risk zone",
    geometry="polygon",
    natural_key=("code",),
    fields=(
        _code("风险区编号", "统一编号"),
        _name("风险区名称"),
        FieldSpec(
            "risk_level",
            "enum",
            "风险等级",
            "zone risk level",
            ("风险等级", "风险区等级", "风险级别", "risk_level"),
            required=True,
            choices=ZONE_RISK_LEVELS,
            values=ZONE_RISK_VALUES,
        ),
        _count(
            "households",
            "户数",
            "households",
            ("户数", "威胁户数", "区内户数", "涉及户数", "households"),
            HOUSEHOLD_UNITS,
        ),
        _count(
            "people",
            "人数",
            "people",
            ("人数", "威胁人数", "区内人数", "涉及人数", "人口", "people"),
            PEOPLE_UNITS,
        ),
    ),
)

SHELTER = TargetSpec(
    table="shelter",
    title_zh="应急避难场所",
    title="emergency shelter",
    geometry="point",
    # Shelters carry no national code: the name is how bureaus tell them apart.
    natural_key=("name",),
    fields=(
        _name("避难场所名称", "场所名称"),
        FieldSpec("address", "text", "地址", "address", ("场所地址", *ADDRESS), max_len=300),
        FieldSpec(
            "grade",
            "enum",
            "场所级别",
            "shelter grade",
            ("场所级别", "场所等级", "级别", "等级", "grade"),
            required=True,
            choices=SHELTER_GRADES,
            values=SHELTER_GRADE_VALUES,
        ),
        FieldSpec(
            "space_type",
            "enum",
            "室内/室外类型",
            "indoor or outdoor",
            ("室内/室外类型", "室内室外类型", "室内外类型", "空间类型", "space_type"),
            choices=SPACE_TYPES,
            values=SPACE_TYPE_VALUES,
        ),
        FieldSpec(
            "duration_class",
            "enum",
            "避难时长类型",
            "shelter duration class",
            ("避难时长类型", "避难时长分类", "避难期限类型", "时长类型", "duration_class"),
            choices=DURATION_CLASSES,
            values=DURATION_VALUES,
        ),
        _count(
            "capacity",
            "可容纳人数",
            "capacity",
            ("可容纳人数", "容纳人数", "设计容纳人数", "可避难人数", "容量", "capacity"),
            PEOPLE_UNITS,
        ),
        FieldSpec(
            "effective_area",
            "float",
            "有效避难面积(m²)",
            "effective area (m²)",
            ("有效避难面积", "有效面积", "effective_area"),
            min_value=0,
            units=("m2", "平方米"),
        ),
        FieldSpec(
            "hazard_types",
            "enum_list",
            "避灾种类",
            "hazard types",
            ("避灾种类", "适用灾种", "避难灾种", "灾种", "hazard_types"),
            choices=SHELTER_HAZARDS,
            values=SHELTER_HAZARD_VALUES,
        ),
        FieldSpec(
            "status",
            "enum",
            "开放状态",
            "shelter status",
            ("开放状态", "运行状态", "状态", "status"),
            choices=SHELTER_STATUSES,
            values=SHELTER_STATUS_VALUES,
            default="closed",
        ),
    ),
)

SAFETY_HAZARD = TargetSpec(
    table="safety_hazard",
    title_zh="事故隐患",
    title="safety hazard",
    geometry="point",
    natural_key=("hazard_no",),
    geometry_required=False,
    fields=(
        FieldSpec(
            "hazard_no",
            "text",
            "隐患编号",
            "hazard number",
            ("隐患编号", "台账编号", "编号", "hazard_no"),
            required=True,
            max_len=32,
            identifier=True,
            pattern=CODE_FORMAT,
        ),
        FieldSpec(
            "title",
            "text",
            "隐患名称",
            "hazard title",
            ("隐患名称", "隐患内容", "隐患标题", "名称", "title"),
            required=True,
            max_len=500,
        ),
        FieldSpec(
            "description",
            "text",
            "隐患描述",
            "description",
            ("隐患描述", "隐患情况", "现状及产生原因", "问题描述", "描述", "description"),
        ),
        FieldSpec(
            "level",
            "enum",
            "隐患等级",
            "hazard level",
            ("隐患等级", "隐患级别", "level"),
            required=True,
            choices=HAZARD_LEVELS,
            values=HAZARD_LEVEL_VALUES,
        ),
        FieldSpec(
            "category",
            "enum",
            "隐患类别",
            "hazard category",
            ("隐患类别", "隐患分类", "类别", "category"),
            choices=HAZARD_CATEGORIES,
            values=HAZARD_CATEGORY_VALUES,
        ),
        FieldSpec(
            "found_via",
            "enum",
            "隐患来源",
            "how the hazard was found",
            ("隐患来源", "发现途径", "发现方式", "排查方式", "来源", "found_via"),
            choices=HAZARD_FOUND_VIA,
            values=HAZARD_FOUND_VIA_VALUES,
        ),
        FieldSpec(
            "status",
            "enum",
            "整改状态",
            "rectification status",
            ("整改状态", "治理状态", "状态", "status"),
            choices=HAZARD_STATUSES,
            values=HAZARD_STATUS_VALUES,
            default="found",
        ),
        FieldSpec(
            "escalated",
            "bool",
            "是否挂牌督办",
            "escalated (挂牌督办)",
            ("是否挂牌督办", "挂牌督办", "escalated"),
            values=ESCALATED_VALUES,
            default=False,
        ),
        FieldSpec(
            "supervision_level",
            "enum",
            "督办级别",
            "supervision level (挂牌督办)",
            ("督办级别", "挂牌督办级别", "督办层级", "supervision_level"),
            choices=SUPERVISION_LEVELS,
            values=SUPERVISION_LEVEL_VALUES,
        ),
        FieldSpec(
            "responsible_org",
            "text",
            "整改责任单位",
            "responsible organisation",
            ("整改责任单位", "责任单位", "responsible_org"),
            max_len=200,
        ),
        FieldSpec(
            "measures",
            "text",
            "整改措施",
            "measures",
            ("整改措施", "治理措施", "措施", "measures"),
        ),
        FieldSpec(
            "deadline",
            "date",
            "整改期限",
            "deadline",
            ("整改期限", "整改时限", "计划完成时间", "deadline"),
        ),
        FieldSpec(
            "found_at",
            "datetime",
            "发现时间",
            "found at",
            ("发现时间", "发现日期", "排查时间", "排查日期", "检查时间", "检查日期", "found_at"),
        ),
        FieldSpec(
            "closed_at",
            "datetime",
            "销号时间",
            "closed at",
            ("销号时间", "销号日期", "整改完成时间", "实际完成时间", "完成时间", "closed_at"),
        ),
    ),
)

FOREST_PATCH = TargetSpec(
    table="forest_patch",
    title_zh="林区/林班",
    title="forest patch",
    geometry="polygon",
    natural_key=("code",),
    fields=(
        _code("林班号", "林班编号", "责任区编号"),
        _name("林区名称", "林班名称", "责任区名称"),
        FieldSpec(
            "forest_type",
            "text",
            "森林类型",
            "forest type",
            ("森林类型", "林分类型", "林种", "forest_type"),
            max_len=100,
        ),
        FieldSpec(
            "fuel_load",
            "float",
            "可燃物载量(t/ha)",
            "fuel load (t/ha)",
            ("可燃物载量", "载量", "fuel_load"),
            min_value=0,
            units=("t/ha", "吨/公顷"),
        ),
        FieldSpec(
            "area_ha",
            "float",
            "面积(公顷)",
            "area (ha)",
            ("面积", "林地面积", "area_ha"),
            min_value=0,
            units=("公顷", "ha", "hm2"),
        ),
    ),
)

FIRE_POINT = TargetSpec(
    table="fire_point",
    title_zh="火点",
    title="fire point",
    geometry="point",
    natural_key=(),
    fields=(
        FieldSpec(
            "source_kind",
            "enum",
            "火点来源",
            "fire-point source",
            ("火点来源", "监测来源", "发现方式", "来源", "source_kind"),
            required=True,
            choices=FIRE_SOURCES,
            values=FIRE_SOURCE_VALUES,
        ),
        FieldSpec(
            "detected_at",
            "datetime",
            "发现时间",
            "detected at",
            ("发现时间", "监测时间", "报警时间", "时间", "detected_at"),
            required=True,
        ),
        FieldSpec(
            "confidence",
            "int",
            "置信度",
            "confidence",
            ("置信度", "可信度", "confidence"),
            min_value=0,
            max_value=100,
            units=("%",),
        ),
        FieldSpec(
            "verification_status",
            "enum",
            "核查状态",
            "verification status",
            ("核查状态", "处置状态", "状态", "verification_status"),
            choices=FIRE_VERIFICATION,
            values=FIRE_VERIFICATION_VALUES,
            default="pending",
        ),
        FieldSpec(
            "verdict",
            "enum",
            "核查结果",
            "verdict",
            ("核查结果", "核查结论", "火点性质", "verdict"),
            choices=FIRE_VERDICTS,
            values=FIRE_VERDICT_VALUES,
        ),
        FieldSpec(
            "verified_by",
            "text",
            "核查人",
            "verified by",
            ("核查人", "核查单位", "verified_by"),
            max_len=200,
        ),
        FieldSpec(
            "fed_back_at",
            "datetime",
            "反馈时间",
            "fed back at",
            ("反馈时间", "fed_back_at"),
        ),
    ),
)

BARRIER_LINE = TargetSpec(
    table="barrier_line",
    title_zh="道路/河流/铁路/围墙",
    title="barrier line",
    geometry="line",
    natural_key=(),
    fields=(
        FieldSpec(
            "kind",
            "enum",
            "线类型",
            "line kind",
            ("线类型", "要素类型", "道路等级", "类型", "类别", "kind", "type"),
            required=True,
            choices=BARRIER_KINDS,
            values=BARRIER_KIND_VALUES,
        ),
        FieldSpec(
            "name",
            "text",
            "名称",
            "name",
            ("道路名称", "河流名称", "路名", "名称", "name"),
            max_len=200,
        ),
    ),
)

GRID = TargetSpec(
    table="grid",
    title_zh="网格",
    title="grid",
    geometry="polygon",
    natural_key=("grid_code",),
    fields=(
        FieldSpec(
            "grid_code",
            "text",
            "网格编码",
            "grid code",
            ("网格编码", "网格编号", "网格代码", "编码", "grid_code"),
            required=True,
            max_len=15,
            identifier=True,
            pattern=GRID_CODE_FORMAT,
        ),
        _name("网格名称"),
        FieldSpec(
            "kind",
            "enum",
            "网格类型",
            "grid kind",
            ("网格类型", "网格类别", "类型", "kind"),
            choices=GRID_KINDS,
            values=GRID_KIND_VALUES,
            default="basic",
        ),
        _count(
            "households",
            "户数",
            "households",
            ("户数", "总户数", "住户数", "households"),
            HOUSEHOLD_UNITS,
        ),
        _count(
            "population",
            "人口",
            "population",
            ("人口", "人数", "总人口", "常住人口", "population"),
            PEOPLE_UNITS,
        ),
        FieldSpec(
            "community_code",
            "text",
            "社区编码",
            "community code",
            (
                "社区编码",
                "社区代码",
                "所属社区编码",
                "村(社区)代码",
                "村(社区)编码",
                "community_code",
            ),
            max_len=12,
            identifier=True,
            pattern=VILLAGE_CODE_FORMAT,
        ),
    ),
)

#: Every importable table by name.
TARGETS: dict[str, TargetSpec] = {
    t.table: t
    for t in (
        ENTERPRISE,
        BUILDING,
        FACILITY,
        GEOHAZARD_POINT,
        GEOHAZARD_ZONE,
        SHELTER,
        SAFETY_HAZARD,
        FOREST_PATCH,
        FIRE_POINT,
        BARRIER_LINE,
        GRID,
    )
}


def describe(target: TargetSpec) -> list[dict[str, Any]]:
    """What a file for ``target`` may contain, for ``--help-target`` and the API (JSON-safe).

    One entry per field, in declaration order, with its titles, the headers it is
    recognised by (priority order), and for enumerations the spellings each key accepts.
    Point tables end with the ``lon``/``lat`` pseudo-fields that pick coordinate columns.
    """
    entries: list[dict[str, Any]] = []
    for spec in target.fields:
        entry: dict[str, Any] = {
            "field": spec.name,
            "title_zh": spec.title_zh,
            "title": spec.title,
            "kind": spec.kind,
            "required": spec.required,
            "natural_key": spec.name in target.natural_key,
            "headers": list(spec.all_aliases),
        }
        if spec.kind in ("enum", "enum_list", "bool"):
            entry["values"] = spec.spellings()
        optional = {
            "default": spec.default,
            "fallback": spec.fallback,
            "min": spec.min_value,
            "max": spec.max_value,
            "max_len": spec.max_len,
            "units": list(spec.units) or None,
            "format": spec.pattern.hint if spec.pattern else None,
            "format_zh": spec.pattern.hint_zh if spec.pattern else None,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        entries.append(entry)
    if target.geometry == "point":
        for name, title_zh, title, aliases in (
            ("lon", "经度", "longitude", LON_ALIASES),
            ("lat", "纬度", "latitude", LAT_ALIASES),
        ):
            entries.append(
                {
                    "field": name,
                    "title_zh": title_zh,
                    "title": title,
                    "kind": "coordinate",
                    "required": False,
                    "natural_key": False,
                    "headers": list(aliases),
                }
            )
    return entries
