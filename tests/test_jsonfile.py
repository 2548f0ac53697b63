"""The one JSON reader and writer (jsonfile.py): strict output, capped and type-checked input."""

import json
import math

import pytest

from seqlab.errors import DataError, RunError
from seqlab.jsonfile import check, dumps, label_list, read_json


def test_dumps_writes_non_finite_numbers_as_null():
    text = dumps({"loss": math.nan, "rows": [math.inf, -math.inf, 1.5], "ok": (1, "a")})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in output")) == {
        "loss": None, "rows": [None, None, 1.5], "ok": [1, "a"]}


def test_a_link_to_dev_zero_is_refused_without_reading_it(tmp_path):
    (tmp_path / "history.json").symlink_to("/dev/zero")
    with pytest.raises(RunError, match="not a regular file"):
        read_json(tmp_path / "history.json")


def test_a_file_over_the_cap_is_refused(tmp_path):
    (tmp_path / "big.json").write_text("[" + "0," * 600 + "0]")
    with pytest.raises(RunError, match="larger than 1,000 bytes"):
        read_json(tmp_path / "big.json", kind=list, limit=1000)


def test_absurd_nesting_is_one_error_not_a_recursion_error(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="nested too deeply"):
        read_json(tmp_path / "deep.json", kind=list)


@pytest.mark.parametrize("text, message", [("[1, 2]", "holds a list, not an object"), ("{nope", "not valid JSON"),
                                           (b"\xff\xfe{}", "not UTF-8")])
def test_wrong_kind_bad_syntax_and_bad_bytes_name_the_file(tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DataError, match="config.json") as raised:
        read_json(path, error=DataError, fix="fix it")
    assert message in str(raised.value)
    assert str(raised.value).endswith("fix it")


def test_check_names_the_key_and_refuses_a_string_of_labels():
    assert label_list(["negative", "positive"])
    for bad in ([], "ab", ["a"], ["a", "a"], ["a", 1], ["", "b"]):
        with pytest.raises(RunError, match="'label_names' must be a list of at least two distinct"):
            check({"label_names": bad}, "config.json", {"label_names": label_list})
    with pytest.raises(RunError, match="'epoch' must be a whole number"):
        check({"epoch": "3"}, "state.json", {"epoch": int})
    with pytest.raises(RunError, match="'epoch' must be a whole number"):
        check({"epoch": True}, "state.json", {"epoch": int})
