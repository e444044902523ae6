"""The bench's traffic: the same records for the same arguments, with UUID event ids on ask."""

import json
import re

from bench.traffic import generate

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid_event_ids_change_the_ids_alone_and_are_the_same_every_time() -> None:
    short = list(generate(6, 400))
    with_uuids = list(generate(6, 400, uuid_ids=True))
    assert with_uuids == list(generate(6, 400, uuid_ids=True))
    assert len(with_uuids) == len(short)
    ids = []
    for plain, changed in zip(short, with_uuids, strict=True):
        if not plain.startswith(b'{"'):  # a bad record of the traffic
            assert changed == plain
            continue
        before, after = json.loads(plain), json.loads(changed)
        assert {**after, "event_id": before["event_id"]} == before
        if before["type"] == "catalog.published":
            assert after["event_id"] == before["event_id"]
        else:
            assert UUID4.match(after["event_id"]), after["event_id"]
            ids.append(after["event_id"])
    assert len(set(ids)) == len(ids) > 400
