from __future__ import annotations

import re
from pathlib import Path

import pytest

from irkit import parameters
from irkit.errors import ConfigError, ParameterError

DECLARED = {
    "pg_host": "str",
    "pg_port": "int",
    "pg_long_query_warn_s": "float",
    "pg_expected_migrations": "list[str]",
    "flag": "bool",
}
KNOWN = {"db": list(DECLARED), "redis": ["redis_url", "celery_queues"]}


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("str", "x", "x"),
        ("int", 5, 5),
        ("float", 5, 5.0),
        ("float", 0.5, 0.5),
        ("bool", True, True),
        ("list[str]", ["a"], ["a"]),
    ],
)
def test_values_of_the_declared_type_pass(type_: str, value: object, expected: object) -> None:
    assert parameters.check_value("p", type_, value) == expected


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("str", 5),
        ("int", "5"),
        ("int", True),
        ("int", 1.5),
        ("float", "x"),
        ("bool", 2),
        ("bool", "maybe"),
        ("bool", "tru"),
        ("bool", "y"),
        ("bool", ""),
        ("bool", 1.0),
        ("bool", None),
        ("list[str]", "a"),
        ("list[str]", [1]),
    ],
)
def test_values_of_another_type_are_refused(type_: str, value: object) -> None:
    with pytest.raises(ParameterError, match="parameter p must be"):
        parameters.check_value("p", type_, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # What papermill's `-p notify true` injects is the text "true"; `-p notify 1` an int.
        *[(word, True) for word in ("true", "True", "TRUE", "yes", "Yes", "on", "1", " true ")],
        *[(word, False) for word in ("false", "False", "no", "NO", "off", "0")],
        (1, True),
        (0, False),
    ],
)
def test_flags_take_the_usual_spellings(value: object, expected: bool) -> None:
    assert parameters.check_value("notify", "bool", value) is expected
    if isinstance(value, str):
        assert parameters.parse_cli_value("notify", "bool", value) is expected


def test_a_flag_spelled_otherwise_is_refused_saying_what_is_accepted() -> None:
    message = "parameter notify must be true or false (or yes/no, on/off, 1/0), got str 'maybe'"
    with pytest.raises(ParameterError, match=re.escape(message)):
        parameters.check_value("notify", "bool", "maybe")
    with pytest.raises(ParameterError, match=re.escape("got 'nah'")):
        parameters.from_cli("db", ["flag=nah"], DECLARED)


def test_cli_values_are_read_in_the_declared_type() -> None:
    values = parameters.from_cli(
        "db",
        [
            "pg_port=5433",
            "pg_long_query_warn_s=2.5",
            "flag=yes",
            "pg_host=a=b",
            "pg_expected_migrations=auth.0001_initial, tenancy.0002_x",
        ],
        DECLARED,
    )
    assert values == {
        "pg_port": 5433,
        "pg_long_query_warn_s": 2.5,
        "flag": True,
        "pg_host": "a=b",
        "pg_expected_migrations": ["auth.0001_initial", "tenancy.0002_x"],
    }
    assert parameters.from_cli("db", ['pg_expected_migrations=["a.1"]'], DECLARED) == {
        "pg_expected_migrations": ["a.1"]
    }


def test_cli_errors_say_what_is_wrong() -> None:
    with pytest.raises(ParameterError, match="did you mean 'pg_host'"):
        parameters.from_cli("db", ["pg_hots=x"], DECLARED)
    with pytest.raises(ParameterError, match="must be an integer, got 'abc'"):
        parameters.from_cli("db", ["pg_port=abc"], DECLARED)
    with pytest.raises(ParameterError, match="name=value"):
        parameters.from_cli("db", ["pg_port"], DECLARED)


def test_a_shared_file_gives_each_section_its_own_keys() -> None:
    data = {"pg_port": 5, "redis_url": "redis://x", "sections": {"db": {"pg_host": "h"}}}
    assert parameters.for_section("db", data, DECLARED, KNOWN, "f.yaml") == {
        "pg_port": 5,
        "pg_host": "h",
    }
    redis_declared = {"redis_url": "str", "celery_queues": "list[str]"}
    assert parameters.for_section("redis", data, redis_declared, KNOWN, "f.yaml") == {
        "redis_url": "redis://x"
    }


def test_a_file_key_no_section_declares_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter 'pg_prot' in f.yaml.*'pg_port'"):
        parameters.for_section("db", {"pg_prot": 1}, DECLARED, KNOWN, "f.yaml")
    with pytest.raises(ParameterError, match="unknown section 'dbb'"):
        parameters.for_section("db", {"sections": {"dbb": {}}}, DECLARED, KNOWN, "f.yaml")
    with pytest.raises(ParameterError, match="section db has none"):
        parameters.for_section("db", {"sections": {"db": {"redis_url": "x"}}}, DECLARED, KNOWN, "f")
    with pytest.raises(ParameterError, match=r"f\.yaml: parameter pg_port must be an integer"):
        parameters.for_section("db", {"pg_port": "x"}, DECLARED, KNOWN, "f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pg_port: [1\n", "not valid YAML at line 2"),
        ("- a\n- b\n", "must be a mapping"),
        ("sections: [1]\n", "'sections' must map section names"),
        ("\xff", None),
    ],
)
def test_bad_files_are_config_errors(tmp_path: Path, text: str, message: str | None) -> None:
    path = tmp_path / "p.yaml"
    if message is None:
        path.write_bytes(b"\xff\xfe")
        message = "cannot read parameter file"
    else:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        parameters.load_file(path)


def test_a_missing_file_and_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        parameters.load_file(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert parameters.load_file(tmp_path / "empty.yaml") == {}


def test_declared_parameters_are_read_from_the_source() -> None:
    source = 'a: str = "x"  # help\nb: list[str] = ["y"]\nc = 3\n'
    declared = parameters.declared_in_source(source)
    assert {n: (d.type, d.default) for n, d in declared.items()} == {
        "a": ("str", "x"),
        "b": ("list[str]", ["y"]),
    }
    assert parameters.type_name(list[str]) == "list[str]"
    assert parameters.type_name(int) == "int"


def test_threshold_pairs_follow_the_direction_of_their_defaults() -> None:
    declared = {
        "disk_warn_pct": parameters.Declared("disk_warn_pct", "float", 80.0),
        "disk_crit_pct": parameters.Declared("disk_crit_pct", "float", 90.0),
        "mem_available_warn_pct": parameters.Declared("mem_available_warn_pct", "float", 10.0),
        "mem_available_crit_pct": parameters.Declared("mem_available_crit_pct", "float", 5.0),
        "pg_connect_warn_s": parameters.Declared("pg_connect_warn_s", "float", 2.0),
    }
    parameters.check_threshold_pairs({"disk_warn_pct": 90.0, "pg_connect_warn_s": 99}, declared)
    with pytest.raises(ParameterError, match=r"disk_warn_pct \(95\) is above disk_crit_pct"):
        parameters.check_threshold_pairs({"disk_warn_pct": 95.0}, declared)
    with pytest.raises(ParameterError, match=r"mem_available_warn_pct \(3\) is below"):
        parameters.check_threshold_pairs({"mem_available_warn_pct": 3.0}, declared)
