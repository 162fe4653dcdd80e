"""The measures against references, on cases small enough to count by hand."""

from __future__ import annotations

from subpipe.scoring import cer, edit_distance


def test_edit_distance_counts_insertions_deletions_and_substitutions() -> None:
    assert edit_distance("", "") == 0
    assert edit_distance("abc", "") == 3
    assert edit_distance("", "ab") == 2
    assert edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert edit_distance("人人有权", "人有权利") == 2  # one deleted, one added


def test_cer_folds_before_counting() -> None:
    # Traditional folded to Simplified, punctuation dropped: one character missing of five.
    assert cer("人人有權。", "人人有权利", "zh") == 1 / 5
    assert cer("Hello, world", "hello world", "en") == 0.0
    assert cer("", "", "en") == 0.0 and cer("x", "", "en") == 1.0
