"""Name pools for the synthetic city: people, places, enterprises, hazards, facilities.

Everything is drawn from a caller-supplied ``numpy.random.Generator`` so that names are as
deterministic as the geometry. The pools imitate what a 湖南 bureau's ledgers look like
(common 湘 surnames, ``××冲村``-style village names, ``株洲××机械有限公司``) without copying any
real ledger: the people and enterprises are fictional.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ENTERPRISE_TRADES",
    "HAZARD_TEMPLATES",
    "brand_names",
    "compose_unique",
    "person_names",
    "phones",
    "place_names",
    "road_names",
]

#: Surnames with rough weights for 湖南 (刘, 李, 陈 and 彭, 谭, 曾 are frequent there).
_SURNAMES = (
    "刘李陈王张周彭罗谭唐曾胡邓黄易龙贺杨吴赵徐孙朱郭何高林郑梁谢宋许韩冯曹肖田董袁潘蒋"
    "蔡余杜叶程苏魏吕丁任沈姚卢钟陆汪范金石廖贾夏付方邹熊秦邱江尹段雷侯文颜欧阳"
)
_SURNAME_WEIGHTS = np.r_[np.linspace(3.0, 1.2, 20), np.full(len(_SURNAMES) - 20, 0.6)]
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华建国红玲斌波辉鹏飞宇浩文俊峰亮燕萍"
    "琴兰梅莉婷雪慧颖晨阳志坚卫东海林彬凯锋雄武新春秋秀云凤霖湘湘江益智坤德福"
)

_PLACE_HEADS = [
    "杨家",
    "李家",
    "周家",
    "黄家",
    "谭家",
    "彭家",
    "罗家",
    "曾家",
    "易家",
    "唐家",
    "石",
    "枫",
    "樟",
    "桐",
    "竹",
    "松",
    "梅",
    "桃",
    "杉木",
    "白",
    "青",
    "大",
    "小",
    "新",
    "长",
    "高",
    "马",
    "龙",
    "凤",
    "金",
    "银",
    "铁",
    "泉",
    "荷",
    "桂",
    "柏",
    "茶",
    "狮",
    "鹤",
    "鹿",
    "云",
    "霞",
    "清",
    "和",
    "东",
    "西",
    "南",
    "北",
    "双",
    "三",
    "五",
    "七",
    "九",
    "上",
    "下",
    "田",
    "沙",
    "河",
    "湖",
    "湘",
    "仙",
    "古",
    "太",
    "阳",
    "明",
    "月",
    "花",
    "兰",
    "柳",
    "莲",
    "栗",
    "槐",
    "杏",
    "稻",
]
_PLACE_TAILS_RURAL = [
    "冲",
    "湾",
    "塘",
    "坪",
    "岭",
    "坳",
    "桥",
    "山",
    "铺",
    "垅",
    "湖",
    "港",
    "洲",
    "园",
    "坝",
    "岗",
    "坡",
    "源",
    "口",
    "田",
    "溪",
    "峰",
]
_URBAN_COMMUNITY_BASES = [
    "建设",
    "和平",
    "新华",
    "红旗",
    "车站",
    "学林",
    "幸福",
    "团结",
    "东风",
    "光明",
    "胜利",
    "育红",
    "清石",
    "霞湾",
    "湘天",
    "响田",
    "北站",
    "高家坪",
    "先锋",
    "时代",
    "金钩山",
    "杉木塘",
    "九塘",
    "木鱼",
    "翔龙",
    "工农",
    "民主",
    "新民",
    "田园",
    "兴隆",
    "百花",
    "向阳",
    "星光",
    "华达",
    "桂花",
    "丽景",
    "荷花",
    "湘江",
    "滨江",
    "铁道",
    "机车",
    "友谊",
    "长青",
    "新桥",
    "晨光",
    "朝阳",
    "曙光",
    "金山",
    "银海",
    "南湖",
    "北湖",
    "东湖",
    "锦绣",
    "龙泉",
    "凤凰",
    "科苑",
    "嘉园",
    "翠竹",
    "梧桐",
    "玉兰",
    "丹桂",
    "月塘",
    "钻石",
    "新城",
    "古桑洲",
]

#: Trades by sector: (name fragment, special flags that typically come with it).
ENTERPRISE_TRADES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "hazchem": (
        ("化工", ("hazardous_process", "major_hazard_source")),
        ("精细化工", ("hazardous_process",)),
        ("工业气体", ("major_hazard_source",)),
        ("涂料", ("hazardous_process",)),
        ("石油化工储运", ("major_hazard_source",)),
        ("加油站", ()),
    ),
    "fireworks": (("烟花爆竹", ()), ("花炮", ()), ("鞭炮引线", ())),
    "non_coal_mine": (("石料", ()), ("矿业", ()), ("采石场", ())),
    "coal_mine": (("煤矿", ("confined_space",)),),
    "industry_trade": (
        ("机械", ("confined_space",)),
        ("冶金", ("confined_space",)),
        ("电子", ()),
        ("陶瓷", ("dust_explosion",)),
        ("服饰", ()),
        ("建材", ()),
        ("食品", ("ammonia_refrigeration", "confined_space")),
        ("冷链物流", ("ammonia_refrigeration",)),
        ("木业", ("dust_explosion",)),
        ("硬质合金", ("dust_explosion",)),
        ("轨道交通装备", ("confined_space",)),
        ("包装", ("dust_explosion",)),
        ("塑胶", ()),
        ("汽车零部件", ()),
        ("铝业", ("dust_explosion",)),
        ("酿造", ("confined_space",)),
    ),
    "other": (("物流", ()), ("仓储", ()), ("商贸", ()), ("物业管理", ())),
}

_BRAND_CHARS = "华鑫宏恒盛新达源泰通联中天金瑞祥隆昌丰利兴明海力科创嘉诚信安湘株峰远航宇博凯"

#: Hazard titles by category; the second item is whether it also fits non-enterprise places.
HAZARD_TEMPLATES: dict[str, tuple[tuple[str, str, str, bool], ...]] = {
    "site": (
        (
            "消防通道被杂物堵塞",
            "疏散通道堆放货物，宽度不足",
            "立即清理通道，设置禁止占用标识",
            True,
        ),
        ("电动自行车在楼道内充电", "楼道内私拉电线为电动车充电", "清理楼道，设置集中充电点", True),
        ("安全出口锁闭", "夜间锁闭安全出口", "拆除锁具，安装推闩式门锁", True),
        ("灭火器过期失效", "部分灭火器压力不足、过期", "更换灭火器并建立检查台账", True),
        ("有限空间无警示标识", "污水池入口未设置警示标识", "设置警示标识，完善审批制度", False),
        ("粉尘未及时清扫", "除尘系统周边积尘超标", "落实粉尘清扫制度，定期清理", False),
        ("液氨管道阀门腐蚀", "制冷车间液氨管道锈蚀", "更换阀门，开展检测", False),
        ("危化品混存", "氧化剂与易燃物同库存放", "分区分类存放，设置隔离", False),
        ("临时用电不规范", "临时线路未穿管保护，私拉乱接", "规范敷设线路，安装漏电保护", True),
        ("机械设备防护罩缺失", "传动部位未设置防护罩", "加装防护罩，开展隐患自查", False),
        ("边坡未设置截排水沟", "采场边坡雨后渗水", "设置截排水沟，开展边坡监测", False),
        ("燃气管道未安装泄漏报警", "餐饮后厨未安装可燃气体报警器", "安装报警装置并联动切断", True),
        ("外墙广告牌松动", "广告牌固定件锈蚀松动", "加固或拆除广告牌", True),
        ("自建房擅自加层", "居民自建房违规加建一层", "停止使用加建部分，开展安全鉴定", True),
    ),
    "basic_management": (
        ("安全生产责任制不健全", "未明确各岗位安全生产职责", "修订责任制，逐级签订责任书", False),
        ("特种作业人员无证上岗", "电焊作业人员未持证", "停止作业，组织培训取证", False),
        ("应急预案未演练", "本年度未开展应急演练", "制定演练计划并组织实施", False),
        ("安全培训记录缺失", "新员工三级安全教育记录不全", "补充培训并建立档案", False),
        ("隐患排查台账不规范", "自查隐患未闭环记录", "完善台账，落实闭环管理", False),
        ("危险作业未审批", "动火作业无审批手续", "严格执行危险作业审批制度", False),
    ),
}

_ROAD_HEADS = [
    "田心",
    "响石",
    "红旗",
    "建设",
    "车站",
    "铜霞",
    "清石",
    "云龙",
    "迎宾",
    "新华",
    "长江",
    "黄河",
    "珠江",
    "湘江",
    "天台",
    "泰山",
    "庐山",
    "衡山",
    "华山",
    "钟鼓岭",
    "荷塘",
    "芦淞",
    "石峰",
    "龙头",
    "杉木",
    "学林",
    "栗雨",
    "株洲",
    "神农",
    "炎帝",
    "人民",
    "解放",
    "滨江",
    "合泰",
    "凤凰",
    "金山",
    "庆云",
    "仙庾",
    "白石",
    "桂花",
    "嵩山",
    "长城",
    "沿江",
    "航空",
    "机车",
    "时代",
    "响田",
    "井墩",
    "霞湾",
]


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` plausible (possibly repeated, as in real life) Chinese personal names."""
    probs = _SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum()
    surnames = list(_SURNAMES)
    sur_idx = rng.choice(len(surnames), size=n, p=probs)
    two = rng.random(n) < 0.72
    g1 = rng.integers(0, len(_GIVEN), size=n)
    g2 = rng.integers(0, len(_GIVEN), size=n)
    return [
        surnames[s] + _GIVEN[a] + (_GIVEN[b] if t else "")
        for s, a, b, t in zip(sur_idx, g1, g2, two, strict=True)
    ]


def phones(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` distinct fictional 11-digit mobile numbers (prefix 13x, 15x or 18x)."""
    prefixes = np.array(
        [
            130,
            131,
            132,
            135,
            136,
            137,
            138,
            139,
            150,
            151,
            152,
            155,
            158,
            159,
            180,
            181,
            182,
            186,
            187,
            188,
            189,
        ]
    )
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        m = n - len(out)
        pre = rng.choice(prefixes, size=m)
        body = rng.integers(0, 100_000_000, size=m)
        for p, b in zip(pre, body, strict=True):
            s = f"{p}{b:08d}"
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def compose_unique(
    rng: np.random.Generator, n: int, heads: list[str], tails: list[str], taken: set[str]
) -> list[str]:
    """Draw ``n`` names ``head + tail`` not in ``taken`` (which is updated).

    Falls back to a numbered head when the combinations run out, so it never loops forever.
    """
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        h = heads[int(rng.integers(len(heads)))]
        t = tails[int(rng.integers(len(tails)))]
        name = h + t if attempts < 50 * (n + 10) else f"{h}{len(taken)}{t}"
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def place_names(rng: np.random.Generator, n: int, *, urban: bool, taken: set[str]) -> list[str]:
    """Names of communities (``urban``) or villages, without the 社区/村 suffix."""
    if urban:
        bases = [b for b in _URBAN_COMMUNITY_BASES if b not in taken]
        order = rng.permutation(len(bases))
        out = [bases[i] for i in order[:n]]
        taken.update(out)
        if len(out) < n:
            out += compose_unique(rng, n - len(out), _PLACE_HEADS, ["苑", "园", "城", "湾"], taken)
        return out
    return compose_unique(rng, n, _PLACE_HEADS, _PLACE_TAILS_RURAL, taken)


def road_names(rng: np.random.Generator, n: int, suffix: str, taken: set[str]) -> list[str]:
    """Urban street names such as ``响石路`` or ``田心大道``."""
    return compose_unique(rng, n, _ROAD_HEADS, [suffix], taken)


def brand_names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """Two-character trade names (字号) for enterprises, unique within ``taken``."""
    chars = list(_BRAND_CHARS)
    return compose_unique(rng, n, chars, chars, taken)
