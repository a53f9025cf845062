"""A fictional demo county for `make up`: territory, grid staff, residents, group members.

Pure: no database, no network, no clock, no global random state. Every function returns
the same data for the same arguments (each draws from its own seeded `random.Random`), so
seeding a stack twice sends the same records and the idempotent imports change nothing.

    demo_territory()             the county, 3 townships/streets, 8 villages/communities,
                                 60 grids (rectangles tiling each village's block) and a
                                 few buildings per grid, as a GeoJSON FeatureCollection
    demo_staff(territory)        a "1+1+N" roster for every grid
    demo_residents_csv(...)      a resident import file (UTF-8 CSV) with valid ID numbers
    demo_group_members(...)      about 1% of the residents in special/vulnerable groups

All people, numbers and places are invented; ID numbers carry the demo county's region
code and valid check characters, phone numbers are random mainland mobiles.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta

from services.population.domain.codes import CODE_LENGTHS
from services.population.domain.groups import group_kind
from services.population.domain.identity import resident_id_check_character

DEMO_COUNTY = "530402"
COUNTY_NAME = "演示县"
TERRITORY_SEED = 2602
STAFF_SEED = 2603
RESIDENTS_SEED = 2604
GROUPS_SEED = 2605

# (township serial, name, villages): streets (街道) have communities, towns (镇) villages.
TOWNSHIPS = (
    ("001", "玉溪街道", ("玉泉社区", "明珠社区", "桂苑社区")),
    ("002", "凤鸣街道", ("凤鸣社区", "翠湖社区")),
    ("003", "龙泉镇", ("龙潭村", "杏林村", "梨园村")),
)
GRID_COUNT = 60
# Where the county lies (around 102.5E, 24.3N) and how large its pieces are, in degrees.
ORIGIN_LON, ORIGIN_LAT = 102.47, 24.28
TOWNSHIP_WIDTH = 0.03  # about 3 km
VILLAGE_HEIGHT = 0.012  # two rows of grids, about 650 m each
COORDINATE_DIGITS = 6  # about 0.1 m: shared borders are the very same numbers

# The columns of the resident import file (canonical names of importing.RESIDENT_COLUMNS).
RESIDENT_CSV_COLUMNS = (
    "id_number",
    "name",
    "gender",
    "birth_date",
    "phone",
    "ethnicity",
    "household_registration_place",
    "residence_type",
    "grid_code",
    "employment",
    "notes",
)

# About a hundred common surnames, the most common first (普 and 龙 are frequent among the
# Yi); half the draws come from the first twenty, as in a real roll.
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史"
    "顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文普"
)
MALE_GIVEN = (
    "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发"
    "武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪"
    "心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦奇翰朗伯宏言鸣朋斌梁栋维启克伦翔旭鹏"
    "泽晨辰士建家致树炎德行泰盛雄琛钧冠策腾楠航弘"
)
FEMALE_GIVEN = (
    "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹"
    "霞香月莺媛艳瑞佳嘉琼勤珍贞莉桂娣叶璐娅琦晶妍茜秋珊莎锦青倩婷姣婉娴瑾颖露瑶怡婵雁"
    "蓓仪荷丹蓉君琴蕊薇菁梦岚苑婕馨韵园艺卿澜纯毓悦昭冰琬茗羽欣滢筠柔竹凝晓欢芸菲伊亚"
    "宜可舒丽妮宝琪晴容睿雯萱彦宇雨曼紫逸蝶菡"
)

ETHNICITIES = (("汉族", 86), ("彝族", 8), ("哈尼族", 3), ("回族", 3))
# Residence types as a county's forms write them (the importer accepts the Chinese labels).
RESIDENCE_TYPES = (("户籍", 82), ("流动", 14), ("人户分离", 4))
ELSEWHERE = (
    "云南省曲靖市麒麟区",
    "云南省昭通市昭阳区",
    "云南省红河哈尼族彝族自治州建水县",
    "云南省昆明市官渡区",
    "云南省楚雄彝族自治州双柏县",
    "四川省凉山彝族自治州会理市",
    "贵州省六盘水市水城区",
    "重庆市万州区",
)
# Birth years by band, weighted like a county's age pyramid.
BIRTH_BANDS = (
    ((1930, 1949), 5),
    ((1950, 1959), 10),
    ((1960, 1969), 17),
    ((1970, 1979), 16),
    ((1980, 1989), 16),
    ((1990, 1999), 14),
    ((2000, 2009), 12),
    ((2010, 2020), 10),
)
WORKING_AGE_JOBS = (
    ("务农", 30),
    ("外出务工", 15),
    ("个体经营", 12),
    ("企业职工", 14),
    ("机关事业单位", 6),
    ("灵活就业", 10),
    ("待业", 5),
    ("", 8),
)
NOTES = ("新迁入", "租住", "已核实", "长期外出", "联系电话已更新")
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
    *(f"18{d}" for d in range(10)),
    "166",
    "173",
    "177",
    "198",
    "199",
)
# The reference day ages are counted from, fixed so the output never depends on the clock.
AGE_REFERENCE = date(2026, 1, 1)

# Group draws: (group, weight); vulnerable people are far more common than special groups.
GROUP_WEIGHTS = (
    ("low_income", 30),
    ("elderly_alone", 22),
    ("disabled", 16),
    ("left_behind_child", 10),
    ("severe_mental_disorder", 7),
    ("community_correction", 4),
    ("released_prisoner", 5),
    ("drug_user", 3),
    ("key_youth", 3),
)
RISK_WEIGHTS = {
    "special": (("high", 20), ("medium", 40), ("low", 40)),
    "vulnerable": (("high", 5), ("medium", 30), ("low", 65)),
}
GROUP_SHARE = 0.01


def _rng(seed: int) -> random.Random:
    # Demo data wants repeatable draws, not secrets: a seeded PRNG is the point.
    return random.Random(seed)  # noqa: S311


# ---------------------------------------------------------------------------- territory
def demo_territory(county_code: str = DEMO_COUNTY) -> dict:
    """The demo county as a GeoJSON FeatureCollection the population service imports.

    Townships are side-by-side bands; in each, the villages are stacked blocks; a
    village's grids tile its block in two rows of rectangles, so no two grids overlap
    (neighbours share a border) and every point of a block lies in exactly one grid.
    """
    rng = _rng(TERRITORY_SEED)
    features = [_feature(county_code, COUNTY_NAME)]
    villages = [(t, v) for t, (_, _, names) in enumerate(TOWNSHIPS) for v in range(len(names))]
    grid_counts = _spread(GRID_COUNT, len(villages))
    township_edges = [
        _round(ORIGIN_LON + index * TOWNSHIP_WIDTH) for index in range(len(TOWNSHIPS) + 1)
    ]
    for t, (serial, township_name, village_names) in enumerate(TOWNSHIPS):
        township = county_code + serial
        features.append(_feature(township, township_name))
        for v, village_name in enumerate(village_names):
            village = f"{township}{v + 1:03d}"
            features.append(_feature(village, village_name))
            west, east = township_edges[t], township_edges[t + 1]
            south = _round(ORIGIN_LAT + v * VILLAGE_HEIGHT)
            north = _round(ORIGIN_LAT + (v + 1) * VILLAGE_HEIGHT)
            middle = _round((south + north) / 2)
            count = grid_counts[villages.index((t, v))]
            top = (count + 1) // 2
            cells = [
                (row_south, row_north, cut_west, cut_east)
                for row_south, row_north, cells_in_row in (
                    (middle, north, top),
                    (south, middle, count - top),
                )
                for cut_west, cut_east in _cuts(rng, west, east, cells_in_row)
            ]
            for number, (cell_south, cell_north, cell_west, cell_east) in enumerate(cells, 1):
                grid = f"{village}{number:03d}"
                polygon = _rectangle(cell_west, cell_south, cell_east, cell_north)
                features.append(_feature(grid, f"{village_name}第{number}网格", polygon))
                for building in range(1, rng.randint(2, 4) + 1):
                    suffix = "号楼" if village_name.endswith("社区") else "号院"
                    label = f"{building}{suffix}"
                    features.append(_feature(f"{grid}{building:05d}", label))
    return {"type": "FeatureCollection", "features": features}


def _feature(code: str, name: str, geometry: dict | None = None) -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}


def _round(value: float) -> float:
    return round(value, COORDINATE_DIGITS)


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def _cuts(rng: random.Random, west: float, east: float, count: int) -> list[tuple[float, float]]:
    """`count` adjacent intervals covering [west, east], of unequal widths."""
    weights = [rng.uniform(0.7, 1.3) for _ in range(count)]
    total = sum(weights)
    edges, running = [west], 0.0
    for weight in weights[:-1]:
        running += weight
        edges.append(_round(west + (east - west) * running / total))
    edges.append(east)
    return list(itertools.pairwise(edges))


def _rectangle(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def grid_codes(territory: Mapping) -> list[str]:
    """The codes of the grids in a territory FeatureCollection, sorted."""
    return sorted(
        feature["properties"]["code"]
        for feature in territory["features"]
        if len(feature["properties"]["code"]) == CODE_LENGTHS["grid"]
    )


def _names_by_code(territory: Mapping) -> dict[str, str]:
    return {f["properties"]["code"]: f["properties"]["name"] for f in territory["features"]}


# ---------------------------------------------------------------------------- staff
def demo_staff(territory: Mapping) -> dict[str, list[dict]]:
    """{grid code: roster} with one grid leader, one supervisor, one full-time grid worker
    and 1-3 part-time workers per grid ("1+1+N"), as `set_grid_staff` takes them. About
    one grid in four shares a part-time worker with the grid before it in its village."""
    rng = _rng(STAFF_SEED)
    numbers = iter(range(1, 1_000_000))

    def person(role: str) -> dict:
        return {
            "person_id": f"staff-{next(numbers):04d}",
            "name": _person_name(rng, rng.choice(("male", "female"))),
            "role": role,
        }

    rosters: dict[str, list[dict]] = {}
    previous_grid, shareable = None, None
    for grid in grid_codes(territory):
        roster = [person("grid_leader"), person("supervisor"), person("full_time")]
        part_time = rng.randint(1, 3)
        same_village = previous_grid is not None and previous_grid[:12] == grid[:12]
        if same_village and shareable is not None and rng.random() < 0.3:
            roster.append(dict(shareable))  # serves the previous grid too
            part_time -= 1
            shareable = None  # nobody serves more than two grids
        new_part_time = [person("part_time") for _ in range(part_time)]
        roster.extend(new_part_time)
        if new_part_time:
            shareable = new_part_time[0]
        rosters[grid] = roster
        previous_grid = grid
    return rosters


def _person_name(rng: random.Random, gender: str) -> str:
    pool = MALE_GIVEN if gender == "male" else FEMALE_GIVEN
    given = rng.choice(pool) if rng.random() < 0.3 else rng.choice(pool) + rng.choice(pool)
    surnames = SURNAMES[:20] if rng.random() < 0.5 else SURNAMES
    return rng.choice(surnames) + given


# ---------------------------------------------------------------------------- residents
def demo_residents(
    territory: Mapping, count: int = 20_000, seed: int = RESIDENTS_SEED
) -> Iterator[dict[str, str]]:
    """Resident rows as the import file holds them (text cells keyed by column name)."""
    rng = _rng(seed)
    grids = grid_codes(territory)
    if not grids:
        raise ValueError("the territory has no grids")
    county_code = grids[0][: CODE_LENGTHS["county"]]
    names = _names_by_code(territory)
    county_name = names.get(county_code, COUNTY_NAME)
    weights = [rng.uniform(0.5, 1.5) for _ in grids]
    places = {
        grid: f"{county_name}{names.get(grid[:9], '')}{names.get(grid[:12], '')}" for grid in grids
    }
    band_years, band_weights = zip(*BIRTH_BANDS, strict=True)
    ethnicity, ethnicity_weights = zip(*ETHNICITIES, strict=True)
    residence, residence_weights = zip(*RESIDENCE_TYPES, strict=True)
    jobs, job_weights = zip(*WORKING_AGE_JOBS, strict=True)
    cumulative = _cumulative
    grid_cum, band_cum = cumulative(weights), cumulative(band_weights)
    ethnicity_cum, residence_cum, job_cum = (
        cumulative(ethnicity_weights),
        cumulative(residence_weights),
        cumulative(job_weights),
    )
    used_ids: set[str] = set()
    used_phones: set[str] = set()
    for _ in range(count):
        grid = rng.choices(grids, cum_weights=grid_cum)[0]
        first_year, last_year = rng.choices(band_years, cum_weights=band_cum)[0]
        start = date(first_year, 1, 1)
        born = start + timedelta(days=rng.randrange((date(last_year, 12, 31) - start).days + 1))
        gender = "male" if rng.random() < 0.51 else "female"
        id_number = _new_resident_id(rng, county_code, born, gender, used_ids)
        age = _age(born)
        phone = ""
        if age >= 14 and rng.random() < 0.95:
            phone = _new_mobile(rng, used_phones)
        residence_type = rng.choices(residence, cum_weights=residence_cum)[0]
        registration = places[grid] if residence_type != "流动" else rng.choice(ELSEWHERE)
        yield {
            "id_number": id_number,
            "name": _person_name(rng, gender),
            "gender": "男" if gender == "male" else "女",
            "birth_date": born.isoformat(),
            "phone": phone,
            "ethnicity": rng.choices(ethnicity, cum_weights=ethnicity_cum)[0],
            "household_registration_place": registration,
            "residence_type": residence_type,
            "grid_code": grid,
            "employment": _employment(rng, age, jobs, job_cum),
            "notes": rng.choice(NOTES) if rng.random() < 0.02 else "",
        }


def demo_residents_csv(
    territory: Mapping, count: int = 20_000, seed: int = RESIDENTS_SEED
) -> bytes:
    """`count` residents spread over the territory's grids, as a UTF-8 CSV import file."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=RESIDENT_CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(demo_residents(territory, count, seed))
    return text.getvalue().encode("utf-8")


def _cumulative(weights: Sequence[float]) -> list[float]:
    totals, running = [], 0.0
    for weight in weights:
        running += weight
        totals.append(running)
    return totals


def _new_resident_id(
    rng: random.Random, region: str, born: date, gender: str, used: set[str]
) -> str:
    # Digits 15-17 are a sequence number whose last digit is odd for men, even for women.
    parities = (1, 3, 5, 7, 9) if gender == "male" else (0, 2, 4, 6, 8)
    while True:
        sequence = rng.randrange(100) * 10 + rng.choice(parities)
        if sequence == 0:
            continue
        first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
        if first17 not in used:
            used.add(first17)
            return first17 + resident_id_check_character(first17)


def _new_mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        number = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(100_000_000):08d}"
        if number not in used:
            used.add(number)
            return number


def _age(born: date) -> int:
    before_birthday = (AGE_REFERENCE.month, AGE_REFERENCE.day) < (born.month, born.day)
    return AGE_REFERENCE.year - born.year - before_birthday


def _employment(rng: random.Random, age: int, jobs, job_cum) -> str:
    if age < 6:
        return ""
    if age < 18:
        return "学生"
    if age < 23 and rng.random() < 0.6:
        return "学生"
    if age >= 60:
        return rng.choice(("退休", "务农", "", "无"))
    return rng.choices(jobs, cum_weights=job_cum)[0]


# ---------------------------------------------------------------------------- groups
def demo_group_members(
    resident_ids_by_grid: Mapping[str, Sequence[str]],
    staff: Mapping[str, Sequence[Mapping]],
    seed: int = GROUPS_SEED,
    share: float = GROUP_SHARE,
) -> list[dict]:
    """About `share` of each grid's residents as special or vulnerable group members: the
    keyword arguments of `flag_group`, the grid's full-time worker responsible."""
    rng = _rng(seed)
    group_names, group_weights = zip(*GROUP_WEIGHTS, strict=True)
    members = []
    for grid in sorted(resident_ids_by_grid):
        resident_ids = sorted(resident_ids_by_grid[grid])
        chosen = rng.sample(resident_ids, min(len(resident_ids), round(len(resident_ids) * share)))
        if not chosen:
            continue
        worker = next(m["person_id"] for m in staff[grid] if m["role"] == "full_time")
        for resident_id in chosen:
            group = rng.choices(group_names, weights=group_weights)[0]
            levels, level_weights = zip(*RISK_WEIGHTS[group_kind(group)], strict=True)
            members.append(
                {
                    "resident_id": resident_id,
                    "group": group,
                    "risk_level": rng.choices(levels, weights=level_weights)[0],
                    "responsible_worker_id": worker,
                    "note": "演示数据",
                }
            )
    return members
