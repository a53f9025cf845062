"""Test data for the population service: a tiny county and valid identity numbers."""

import random
from datetime import date, timedelta

from services.population.domain.identity import (
    CREDIT_CODE_CHARSET,
    credit_code_check_character,
    resident_id_check_character,
)

COUNTY = "530402"
TOWNSHIP_A, TOWNSHIP_B = "530402001", "530402002"
VILLAGE_A, VILLAGE_B = "530402001001", "530402002001"
GRID_A1, GRID_A2, GRID_B1 = "530402001001001", "530402001001002", "530402002001001"
BUILDING_A1 = GRID_A1 + "00001"


def square(lon: float, lat: float, size: float = 0.01) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(code: str, name: str, geometry: dict | None = None) -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}


def county_features() -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            feature(COUNTY, "红塔区"),
            feature(TOWNSHIP_A, "玉兴街道"),
            feature(TOWNSHIP_B, "凤凰街道"),
            feature(VILLAGE_A, "玉兴社区"),
            feature(VILLAGE_B, "凤凰社区"),
            feature(GRID_A1, "玉兴第一网格", square(102.50, 24.30)),
            feature(GRID_A2, "玉兴第二网格", square(102.51, 24.30)),  # shares a border with A1
            feature(GRID_B1, "凤凰第一网格", square(102.60, 24.30)),
            feature(BUILDING_A1, "1号楼"),
        ],
    }


def resident_id(birth: date = date(1990, 3, 7), sequence: int = 123, region: str = COUNTY) -> str:
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_character(first17)


def random_resident_ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    numbers = set()
    while len(numbers) < count:
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        numbers.add(resident_id(birth, rng.randrange(1, 1000)))
    return sorted(numbers)


def credit_code(body: str = "91530402MA6K000") -> str:
    first17 = (body + "0" * 17)[:17]
    assert all(c in CREDIT_CODE_CHARSET for c in first17)
    return first17 + credit_code_check_character(first17)
