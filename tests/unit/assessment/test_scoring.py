import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridwork_common.errors import InvalidInput
from services.assessment.domain.scoring import (
    DEFAULT_RULES,
    Indicators,
    RuleSet,
    Scorecard,
    bottom,
    ranks,
    score,
    select_rules,
    stars,
)

FULL_VISITS = {"high": 2, "medium": 2, "low": 2}


def perfect(**changes) -> Indicators:
    """A subject meeting every target; the tests change one thing at a time."""
    values = dict(
        cases_reported=120,
        cases_due=100,
        cases_closed=100,
        closed_on_time=100,
        urgent_due=10,
        urgent_closed=10,
        urgent_closed_on_time=10,
        visits_done_by_risk=FULL_VISITS,
        visits_required_by_risk=FULL_VISITS,
        records_collected=30,
        active_account_days=20,
        expected_account_days=20,
        patrols=12,
        grids_patrolled=2,
        grids_total=2,
    )
    values.update(changes)
    return Indicators(**values)


def config(**changes):
    values = DEFAULT_RULES.to_config()
    values.update(changes)
    return values


# ------------------------------------------------------------------ rates


def test_rates_follow_their_definitions():
    ind = perfect(cases_closed=80, closed_on_time=60, approved_deferrals=20, active_account_days=15)
    assert ind.closure_rate == 0.8
    assert ind.on_time_rate == 0.75  # 60 / (100 - 20)
    assert ind.account_activity_rate == 0.75
    assert ind.urgent_closure_rate == ind.urgent_on_time_rate == 1.0


def test_visit_coverage_is_risk_weighted_and_capped_per_level():
    ind = perfect(
        visits_done_by_risk={"high": 0, "medium": 2, "low": 9},
        visits_required_by_risk={"high": 2, "medium": 2, "low": 2},
    )
    # (3*0 + 2*2 + 1*2) / (3*2 + 2*2 + 1*2): extra low-risk visits do not compensate.
    assert ind.visit_coverage(DEFAULT_RULES.visit_weights) == pytest.approx(6 / 12)


def test_zero_denominators_are_not_applicable():
    ind = Indicators(cases_due=5, approved_deferrals=5)
    assert ind.on_time_rate is None
    assert ind.closure_rate == 0.0
    assert ind.urgent_closure_rate is None
    assert ind.account_activity_rate is None
    assert ind.visit_coverage({"high": 3, "medium": 2, "low": 1}) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cases_due", -1),
        ("cases_due", 1.5),
        ("cases_due", True),
        ("closed_on_time", 101),  # more than cases_closed
        ("approved_deferrals", 101),
        ("active_account_days", 21),
        ("visits_done_by_risk", {"extreme": 1}),
        ("visits_required_by_risk", {"high": -1}),
    ],
)
def test_bad_indicators_name_the_field(field, value):
    with pytest.raises(InvalidInput) as caught:
        perfect(**{field: value})
    assert caught.value.field.startswith(field)


# ------------------------------------------------------------------ rules, one by one


def test_perfect_subject_scores_100():
    card = score(perfect(), DEFAULT_RULES)
    assert card.total == 100.0
    assert card.parts == {
        "on_time": 50,
        "closure": 20,
        "urgent": 10,
        "visits": 10,
        "patrols": 5,
        "activity": 5,
    }
    assert card.deductions == {"rework": 0}
    assert card.rules_version == 1
    assert card.not_applicable == ()


def test_on_time_70_percent_earns_50_and_65_percent_earns_45():
    assert score(perfect(closed_on_time=70), DEFAULT_RULES).parts["on_time"] == 50.0
    assert score(perfect(closed_on_time=65), DEFAULT_RULES).parts["on_time"] == 45.0
    assert score(perfect(closed_on_time=0), DEFAULT_RULES).parts["on_time"] == 0.0  # floored


def test_approved_deferrals_leave_the_on_time_denominator():
    # 63 of 90 non-deferred cases = 70 %: full marks, though 63 of 100 would not be.
    card = score(perfect(closed_on_time=63, approved_deferrals=10), DEFAULT_RULES)
    assert card.parts["on_time"] == 50.0


def test_closure_is_proportional_below_90_percent():
    assert score(perfect(cases_closed=90, closed_on_time=90), DEFAULT_RULES).parts[
        "closure"
    ] == pytest.approx(20.0)
    card = score(perfect(cases_closed=45, closed_on_time=45), DEFAULT_RULES)
    assert card.parts["closure"] == 10.0  # 45 % is half of 90 %


def test_urgent_shortfall_costs_half_a_point_per_percentage_point():
    # 19 of 20 closed (5 points short of 100 %), 18 of 20 on time (5 short of 95 %).
    card = score(perfect(urgent_due=20, urgent_closed=19, urgent_closed_on_time=18), DEFAULT_RULES)
    assert card.parts["urgent"] == 10 - 0.5 * 5 - 0.5 * 5
    assert card.total == 95.0
    # Nothing closed: 100 + 95 points short would be -87.5; the part is floored at 0.
    none_closed = perfect(urgent_closed=0, urgent_closed_on_time=0)
    assert score(none_closed, DEFAULT_RULES).parts["urgent"] == 0.0


def test_each_reworked_case_deducts_0_2():
    card = score(perfect(reworked=7), DEFAULT_RULES)
    assert card.deductions == {"rework": 1.4}
    assert card.total == 98.6


def test_visits_and_activity_earn_their_share():
    card = score(
        perfect(
            visits_done_by_risk={"high": 1, "medium": 2, "low": 2},
            active_account_days=10,
        ),
        DEFAULT_RULES,
    )
    assert card.parts["visits"] == 7.5  # 10 * (3*1 + 2*2 + 1*2) / (3*2 + 2*2 + 1*2)
    assert card.parts["activity"] == 2.5
    assert card.total == 100 - 2.5 - 2.5


def test_the_share_of_grids_patrolled_earns_its_share():
    card = score(perfect(grids_patrolled=1, grids_total=4), DEFAULT_RULES)
    assert card.parts["patrols"] == 1.25  # 5 * 1/4
    assert card.total == 100 - 3.75
    assert score(perfect(grids_patrolled=0, grids_total=3), DEFAULT_RULES).parts["patrols"] == 0


def test_rule_sets_written_before_patrols_give_them_no_points():
    older = config(visit_points=15)
    del older["patrol_points"]
    rules = RuleSet.from_config(older)
    assert rules.patrol_points == 0
    card = score(perfect(grids_patrolled=0, grids_total=3), rules)
    assert card.parts["patrols"] == 0 and card.total == 100.0


def test_not_applicable_parts_earn_full_marks():
    # Nothing due, no urgent cases, no visits required, no working days: nothing to fail.
    card = score(Indicators(cases_reported=3), DEFAULT_RULES)
    assert card.total == 100.0
    assert card.not_applicable == ("on_time", "closure", "urgent", "visits", "patrols", "activity")
    # Only the inapplicable part gets full marks; the others are scored as usual.
    card = score(
        perfect(urgent_due=0, urgent_closed=0, urgent_closed_on_time=0, active_account_days=0),
        DEFAULT_RULES,
    )
    assert card.parts["urgent"] == 10.0
    assert card.parts["activity"] == 0.0
    assert card.not_applicable == ("urgent",)


def test_total_is_clamped_to_0_and_100():
    awful = Indicators(cases_due=100, urgent_due=10, expected_account_days=20, reworked=500)
    card = score(awful, DEFAULT_RULES)
    assert card.deductions == {"rework": 100.0}
    assert card.total == 0.0
    generous = RuleSet.from_config(config(on_time_points=90, name="generous"))
    assert score(perfect(), generous).total == 100.0  # parts add up to 140


def test_total_has_two_decimals_and_adds_up():
    card = score(perfect(closed_on_time=66, reworked=1, active_account_days=7), DEFAULT_RULES)
    assert card.parts["activity"] == 1.75
    assert card.total == round(sum(card.parts.values()) - sum(card.deductions.values()), 2)
    assert card.total == 46 + 20 + 10 + 10 + 5 + 1.75 - 0.2


# ------------------------------------------------------------------ properties

counts = st.integers(min_value=0, max_value=60)
visits = st.fixed_dictionaries({"high": counts, "medium": counts, "low": counts})


@st.composite
def indicators(draw):
    due = draw(counts)
    closed = draw(counts)
    urgent_closed = draw(counts)
    working = draw(counts)
    return Indicators(
        cases_reported=draw(counts),
        cases_due=due,
        cases_closed=closed,
        closed_on_time=draw(st.integers(0, closed)),
        approved_deferrals=draw(st.integers(0, due)),
        urgent_due=draw(counts),
        urgent_closed=urgent_closed,
        urgent_closed_on_time=draw(st.integers(0, urgent_closed)),
        reworked=draw(st.integers(0, 600)),
        visits_done_by_risk=draw(visits),
        visits_required_by_risk=draw(visits),
        records_collected=draw(counts),
        active_account_days=draw(st.integers(0, working)),
        expected_account_days=working,
    )


@given(indicators())
def test_score_is_between_0_and_100_with_two_decimals(ind):
    card = score(ind, DEFAULT_RULES)
    assert 0 <= card.total <= 100
    assert round(card.total, 2) == card.total
    assert all(points >= 0 for points in card.parts.values())


@given(indicators(), st.integers(1, 20))
def test_more_closed_on_time_never_lowers_the_score(ind, extra):
    more = min(ind.cases_closed, ind.closed_on_time + extra)
    better = dataclasses.replace(ind, closed_on_time=more)
    assert score(better, DEFAULT_RULES).total >= score(ind, DEFAULT_RULES).total


@given(indicators())
def test_scoring_is_reproducible(ind):
    rebuilt = Indicators(**{f.name: getattr(ind, f.name) for f in dataclasses.fields(ind)})
    first, second = score(ind, DEFAULT_RULES), score(rebuilt, DEFAULT_RULES)
    assert isinstance(first, Scorecard)
    assert first == second
    assert repr(first) == repr(second)


# ------------------------------------------------------------------ stars and bottom

PERCENTILE_RULES = RuleSet.from_config(config(stars_by="percentile", version=2))
scores_maps = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.sampled_from([0, 12.5, 59.99, 60, 70, 75.5, 80, 89.99, 90, 100]),
    max_size=25,
)


def test_threshold_stars():
    result = stars(
        {"a": 95, "b": 90, "c": 89.99, "d": 80, "e": 70, "f": 60, "g": 59.99, "h": 0},
        DEFAULT_RULES,
    )
    assert result == {"a": 5, "b": 5, "c": 4, "d": 4, "e": 3, "f": 2, "g": 1, "h": 1}


def test_percentile_stars_split_10_20_40_20_10():
    scores = {f"s{i:02d}": float(i) for i in range(10)}  # s09 best
    result = stars(scores, PERCENTILE_RULES)
    assert [result[f"s{i:02d}"] for i in range(9, -1, -1)] == [5, 4, 4, 3, 3, 3, 3, 2, 2, 1]


def test_percentile_ties_share_the_better_stars():
    # Position = share scoring strictly higher: a-c 0 %, d 60 % (< 70 %), e 80 % (< 90 %).
    scores = {"a": 90, "b": 90, "c": 90, "d": 50, "e": 40}
    assert stars(scores, PERCENTILE_RULES) == {"a": 5, "b": 5, "c": 5, "d": 3, "e": 2}
    assert stars({}, PERCENTILE_RULES) == {}


@settings(max_examples=60)
@given(scores_maps, st.sampled_from([DEFAULT_RULES, PERCENTILE_RULES]))
def test_stars_are_deterministic_and_consistent(scores, rules):
    result = stars(scores, rules)
    assert result == stars(dict(reversed(list(scores.items()))), rules)
    assert set(result) == set(scores)
    for a in scores:
        assert 1 <= result[a] <= 5
        for b in scores:
            if scores[a] > scores[b]:
                assert result[a] >= result[b]
            if scores[a] == scores[b]:
                assert result[a] == result[b]


def test_equal_scores_share_a_rank_and_the_next_is_skipped():
    scores = {"g3": 80, "g1": 80, "g2": 90, "g4": 70, "g5": 80}
    assert ranks(scores) == {"g2": 1, "g1": 2, "g3": 2, "g5": 2, "g4": 5}
    assert ranks({"a": 1, "b": 2, "c": 2, "d": 3}) == {"d": 1, "b": 2, "c": 2, "a": 4}
    assert ranks({}) == {}


def test_bottom_takes_everyone_tied_at_the_cut():
    # Ranks 1, 2, 3, 3, 5: the bottom two positions are 4 and 5; rank 3's tie reaches 4.
    scores = {"g1": 99, "g2": 90, "g3": 50, "g4": 50, "g5": 40}
    assert bottom(scores, 1) == ["g5"]
    assert bottom(scores, 2) == ["g5", "g3", "g4"]
    assert bottom(scores, 3) == ["g5", "g3", "g4"]
    assert bottom(scores, 4) == ["g5", "g3", "g4", "g2"]
    assert bottom(scores, 0) == []
    with pytest.raises(InvalidInput, match=r"^n:"):
        bottom(scores, -1)


def test_nobody_is_at_the_bottom_when_nobody_did_better():
    assert bottom({"a": 75, "b": 75, "c": 75, "d": 75}, 3) == []
    assert bottom({"only": 60}, 3) == []
    assert bottom({}, 3) == []
    # The best score is never 末位, even when its tie reaches the cut (most units with
    # nothing to do earn full marks): only those who did worse are.
    assert bottom({"a": 100, "b": 100, "c": 100, "d": 100, "e": 95, "f": 90}, 3) == ["f", "e"]
    assert bottom({"a": 90, "b": 50}, 3) == ["b"]


@st.composite
def boards_and_renaming(draw):
    """A board, the number of bottom places, and its subjects renamed by a permutation
    and listed in another order: the same board, only the ids moved."""
    scores = draw(scores_maps)
    subjects = list(scores)
    renamed = dict(zip(subjects, draw(st.permutations(subjects)), strict=True))
    listed = draw(st.permutations(subjects))
    moved = {renamed[subject]: scores[subject] for subject in listed}
    return scores, draw(st.integers(0, 30)), renamed, moved


@settings(max_examples=80)
@given(boards_and_renaming())
def test_permuting_subjects_changes_no_rank_and_no_bottom_place(case):
    scores, n, renamed, moved = case
    rank, moved_rank = ranks(scores), ranks(moved)
    at_bottom, moved_bottom = set(bottom(scores, n)), set(bottom(moved, n))
    for subject in scores:
        assert moved_rank[renamed[subject]] == rank[subject]
        assert (renamed[subject] in moved_bottom) == (subject in at_bottom)


@settings(max_examples=80)
@given(scores_maps, st.integers(0, 30))
def test_ranks_and_bottom_follow_the_scores_alone(scores, n):
    rank, chosen = ranks(scores), bottom(scores, n)
    assert len(set(chosen)) == len(chosen) and set(chosen) <= set(scores)
    assert chosen == sorted(chosen, key=lambda subject: (scores[subject], subject))
    for a in scores:
        assert rank[a] == 1 + sum(1 for b in scores if scores[b] > scores[a])
        lower = sum(1 for b in scores if scores[b] < scores[a])
        best = scores[a] == max(scores.values())
        assert (a in chosen) == (lower < n and not best)
    if len(set(scores.values())) > 1 and n > 0:
        # someone did worse than the best: the lowest are at the bottom, at least n of
        # those below the best when there are that many
        below_best = [a for a in scores if scores[a] != max(scores.values())]
        assert len(chosen) >= min(n, len(below_best))


def test_scores_must_be_finite_numbers():
    with pytest.raises(InvalidInput, match=r"^scores\.x:"):
        stars({"x": float("nan")}, DEFAULT_RULES)


# ------------------------------------------------------------------ rule sets


def test_default_rules_round_trip_through_config():
    assert RuleSet.from_config(DEFAULT_RULES.to_config()) == DEFAULT_RULES


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": 0}, "version"),
        ({"version": "1"}, "version"),
        ({"name": " "}, "name"),
        ({"valid_from": "2024-13"}, "valid_from"),
        ({"valid_from": "2024-1"}, "valid_from"),
        ({"on_time_points": -5}, "on_time_points"),
        ({"on_time_target": 1.5}, "on_time_target"),
        ({"closure_target": 0}, "closure_target"),
        ({"rework_per_case": float("inf")}, "rework_per_case"),
        ({"urgent_per_point": True}, "urgent_per_point"),
        ({"visit_weights": {"high": 3, "medium": 2}}, "visit_weights.low"),
        ({"visit_weights": {"high": 3, "medium": 2, "low": 1, "x": 1}}, "visit_weights.x"),
        ({"visit_weights": {"high": -3, "medium": 2, "low": 1}}, "visit_weights.high"),
        ({"stars_by": "rank"}, "stars_by"),
        ({"star_thresholds": [90, 80, 80, 60]}, "star_thresholds"),
        ({"star_shares": [0.1, 0.2, 0.4, 0.2, 0.2]}, "star_shares"),
        ({"bonus_points": 5}, "bonus_points"),
    ],
)
def test_rule_set_validation_names_the_field(changes, field):
    with pytest.raises(InvalidInput) as caught:
        RuleSet.from_config(config(**changes))
    assert caught.value.field == field


def test_missing_rule_set_field_is_named():
    values = config()
    del values["closure_points"]
    with pytest.raises(InvalidInput, match=r"^closure_points: is required"):
        RuleSet.from_config(values)
    del values["stars_by"], values["star_thresholds"], values["star_shares"]
    values["closure_points"] = 20
    assert RuleSet.from_config(values) == DEFAULT_RULES  # star settings are optional


def test_rule_set_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_RULES.version = 9
    with pytest.raises(TypeError):
        DEFAULT_RULES.visit_weights["high"] = 9


def test_select_rules_picks_the_latest_version_in_force():
    v1 = DEFAULT_RULES
    v2 = RuleSet.from_config(config(version=2, valid_from="2025-01", on_time_target=0.8))
    v3 = RuleSet.from_config(config(version=3, valid_from="2025-07"))
    rule_sets = [v3, v1, v2]
    assert select_rules(rule_sets, "2024-06") is v1
    assert select_rules(rule_sets, "2025-01") is v2
    assert select_rules(rule_sets, "2025-06") is v2
    assert select_rules(rule_sets, "2026-02") is v3
    with pytest.raises(InvalidInput, match=r"^period:"):
        select_rules(rule_sets, "2023-12")
    with pytest.raises(InvalidInput, match=r"^period:"):
        select_rules(rule_sets, "2025/01")
    with pytest.raises(InvalidInput, match=r"^rule_sets:"):
        select_rules([v1, v1], "2025-01")


def test_the_rule_set_version_changes_the_score():
    stricter = RuleSet.from_config(config(version=2, on_time_target=0.8))
    ind = perfect(closed_on_time=70)
    assert score(ind, DEFAULT_RULES).parts["on_time"] == 50.0
    card = score(ind, stricter)
    assert card.parts["on_time"] == 40.0
    assert card.rules_version == 2
