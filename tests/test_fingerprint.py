"""The table's fingerprint compared (probes/fingerprint.py compare), on files written by hand in
the format take() writes: key, row hash, created_at epoch; one file a page range."""
from __future__ import annotations

from probes.fingerprint import compare


def _write(path, rows):
    path.write_text("".join(f"{k}\t{h}\t{c}\n" for k, h, c in rows))


def test_lost_and_changed_rows_are_named_with_the_age_of_the_lost_ones(tmp_path):
    _write(tmp_path / "before.tsv", [("a", 1, 100.0), ("b", 2, 50.0)])
    _write(tmp_path / "before.tsv.1", [("c", -3, 75.5), ("d", 4, 10.0)])  # a second page range
    _write(tmp_path / "after.tsv", [("a", 1, 100.0), ("c", 99, 75.5), ("e", 5, 200.0)])
    out = compare(tmp_path / "before.tsv", tmp_path / "after.tsv")
    assert (out["rows_before"], out["rows_now"], out["lost"], out["changed"]) == (4, 3, 2, 1)
    assert out["lost_sample"] == ["d", "b"] and out["lost_created_epoch"] == [10.0, 50.0]  # oldest first
    assert out["changed_sample"] == ["c"] and out["lost_created_complete"] is True


def test_the_digest_does_not_depend_on_the_order_of_the_rows(tmp_path):
    _write(tmp_path / "x.tsv", [("a", 1, 1.0), ("b", 2, 2.0)])
    _write(tmp_path / "y.tsv", [("b", 2, 2.0)])
    _write(tmp_path / "y.tsv.1", [("a", 1, 1.0)])
    out = compare(tmp_path / "x.tsv", tmp_path / "y.tsv")
    assert out["digest_before"] == out["digest_now"] and out["lost"] == out["changed"] == 0
