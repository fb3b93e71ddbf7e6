"""A fit's reasons are encoded once per Reason and joined (``FitResult.encoded_reasons``): the text must
be byte for byte what the store's encoder gives for the decoded list, whatever the values."""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.scoring import ICP, make_records
from worker.icp.reasons import EncodedReasons, Reason, new_reason
from worker.icp.scoring import Scorer
from worker.icp.spec import parse_icp
from worker.store.db import _json_dumps

SCORER = Scorer(parse_icp(ICP, "benchmark.yaml"))


def test_encoded_reasons_are_the_stores_encoding_of_the_reasons_on_varied_records():
    records = make_records(random.Random(11), 4000)
    for attributes in records:
        result = SCORER.score(attributes)
        encoded = result.encoded_reasons()
        assert encoded.text == _json_dumps(result.reasons_json())
        assert encoded == result.reasons_json() and list(encoded) == result.reasons_json()
        assert result.encoded_reasons().text == encoded.text  # the cached fragments give the same text


@settings(max_examples=200, deadline=None)
@given(
    code=st.text(min_size=1, max_size=20),
    credit=st.floats(min_value=0, max_value=1, allow_nan=False),
    points=st.floats(min_value=-100, max_value=100, allow_nan=False),
    text=st.text(max_size=80),
    status=st.sampled_from(["match", "partial", "miss", "missing", "disqualified"]),
    value=st.text(max_size=40),
)
def test_one_reasons_fragment_is_its_dict_encoded(code, credit, points, text, status, value):
    built = new_reason(code, credit, points, text, status, "brief", value)
    direct = Reason(code, credit, points, text, status, "brief", value)
    for reason in (built, direct):
        assert reason.json() == _json_dumps(reason.to_dict())
        assert orjson.loads(reason.json()) == reason.to_dict()
    assert built == direct  # the cached text takes no part in equality


def test_encoded_reasons_behave_as_the_list_they_encode():
    items = [{"code": "a", "points": 1.5}, {"code": "b", "points": 0.0}]
    encoded = EncodedReasons(orjson.dumps(items).decode())
    assert encoded == items and len(encoded) == 2 and encoded[1]["code"] == "b" and encoded[:1] == items[:1]
    assert encoded == EncodedReasons(orjson.dumps(items).decode())
    assert EncodedReasons("[]") == [] and EncodedReasons("null") == []
