"""`make mutations` breaks the code where tools/mutations.py says: each piece it replaces must be
in its module exactly once, and each test it runs must exist, or the check silently tests
nothing."""

import importlib.util

import pytest

from conftest import REPO

SPEC = importlib.util.spec_from_file_location("mutations", REPO / "tools/mutations.py")
MUTATIONS = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(MUTATIONS)


@pytest.mark.parametrize("mutation", MUTATIONS.MUTATIONS, ids=lambda m: m[0])
def test_each_mutation_names_one_piece_of_its_module_and_existing_tests(mutation):
    _, module, text, replacement, tests = mutation
    assert (REPO / module).read_text().count(text) == 1, f"{module}: {text!r}"
    assert text != replacement
    for test in tests.split():
        path, _, name = test.partition("::")
        assert (REPO / path).is_file(), test
        if name:  # a module alone runs all of it
            assert f"def {name.split('[')[0].split('::')[-1]}(" in (REPO / path).read_text(), test
