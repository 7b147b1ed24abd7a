import pytest

from spinect_core.training import kfold_splits, split_for_fold


def test_study_split_five_folds_of_fifty():
    ids = [f"c{i:02d}" for i in range(50)]
    splits = kfold_splits(ids, folds=5, seed=0)
    assert [s.counts for s in splits] == ["32:8:10"] * 5
    tests = [set(s.test) for s in splits]
    # test folds: pairwise disjoint and together every case
    assert set().union(*tests) == set(ids)
    assert sum(len(t) for t in tests) == len(ids)
    for s in splits:
        assert not (set(s.train) & set(s.val)) and not (set(s.train) & set(s.test))
        assert not (set(s.val) & set(s.test))
        assert set(s.train) | set(s.val) | set(s.test) == set(ids)


def test_deterministic_and_order_independent():
    ids = [f"c{i}" for i in range(13)]
    a = kfold_splits(ids, folds=3, seed=7)
    b = kfold_splits(list(reversed(ids)), folds=3, seed=7)
    assert a == b
    assert kfold_splits(ids, folds=3, seed=8) != a
    assert split_for_fold(ids, folds=3, fold=2, seed=7) == a[2]


def test_single_fold_has_no_test_set():
    (s,) = kfold_splits(["a", "b", "c", "d", "e"], folds=1)
    assert s.test == () and len(s.val) == 1 and len(s.train) == 4
    (one,) = kfold_splits(["a"], folds=1)
    assert one.train == ("a",) and one.val == ()


def test_errors():
    with pytest.raises(ValueError):
        kfold_splits(["a", "a"], folds=1)
    with pytest.raises(ValueError):
        kfold_splits(["a", "b"], folds=3)
    with pytest.raises(ValueError):
        split_for_fold(["a", "b", "c"], folds=3, fold=3)
