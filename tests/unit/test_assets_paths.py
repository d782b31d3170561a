"""ltree path validation and ancestry, without a database (PostgreSQL 15 label rules)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.assets.errors import InvalidArgument
from services.assets.model import GroupPath
from services.assets.paths import ROOT, is_within, is_within_any, join, lineage, parse_path

label = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
path = st.lists(label, min_size=1, max_size=6).map(lambda labels: GroupPath(".".join(labels)))


@pytest.mark.parametrize("text", ["utility", "utility.pge.north_ca", "program.ca_vpp.enrolled", "A_1.b2", "x" * 255,
                                  ".".join(["a"] * 64)])
def test_valid_paths(text):
    assert parse_path(text) == text


@pytest.mark.parametrize(("text", "offending"), [
    ("utility.pg-e", "'pg-e'"),            # hyphens only from PostgreSQL 16
    ("utility..pge", "''"),                # empty label
    ("utility.pge.", "''"),
    (".utility", "''"),
    ("utility.pgé", "'pgé'"),              # letters beyond ASCII depend on the database locale
    ("utility.p ge", "'p ge'"),
    ("a.b;DROP TABLE x", "'b;DROP TABLE x'"),
    ("a." + "x" * 256, "'" + "x" * 77 + "...'"),
])
def test_invalid_labels_are_named(text, offending):
    with pytest.raises(InvalidArgument) as error:
        parse_path(text, "group_paths[0]")
    message = str(error.value)
    assert message.startswith("group_paths[0]: invalid ltree label")
    assert offending in message


def test_empty_and_too_deep_paths():
    with pytest.raises(InvalidArgument, match="at least one label"):
        parse_path("")
    assert parse_path("", allow_root=True) == ROOT
    with pytest.raises(InvalidArgument, match="65 labels, at most 64"):
        parse_path(".".join(["a"] * 65))


def test_ancestry_follows_labels_not_characters():
    assert is_within(GroupPath("utility.pge.north_ca"), GroupPath("utility.pge"))
    assert is_within(GroupPath("utility.pge"), GroupPath("utility.pge"))          # a path is within itself
    assert is_within(GroupPath("utility.pge"), ROOT)                               # everything is within the root
    assert not is_within(GroupPath("utility.pge_north"), GroupPath("utility.pge"))  # a prefix of a label is not
    assert not is_within(GroupPath("utility"), GroupPath("utility.pge"))
    assert not is_within(ROOT, GroupPath("utility"))
    assert is_within_any(GroupPath("program.x.enrolled"), [GroupPath("utility"), GroupPath("program.x")])
    assert not is_within_any(GroupPath("program.x"), [])


def test_lineage_and_join():
    assert lineage(GroupPath("a.b.c")) == ["a", "a.b", "a.b.c"]
    assert lineage(ROOT) == []
    assert join(GroupPath("program.vpp"), "enrolled") == "program.vpp.enrolled"
    assert join(ROOT, "utility") == "utility"


@given(path, path)
def test_within_is_label_prefix(a, b):
    expected = a.split(".")[: len(b.split("."))] == b.split(".")
    assert is_within(a, b) == expected
    assert is_within(a, b) == (b in lineage(a))
