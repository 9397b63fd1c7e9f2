import sys

import numpy as np
import pytest

from gooddetect.errors import UsageError
from gooddetect.plots import write_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_scores(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "llr_in": rng.normal(0.05, 0.03, n),
        "llr_ood": rng.normal(-0.02, 0.04, n),
        "loglik_in": rng.normal(-1.30, 0.05, n),
        "loglik_ood": rng.normal(-1.28, 0.07, n),
    }


def test_write_plots_writes_three_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    outdir = tmp_path / "plots"
    paths = write_plots(outdir, **synthetic_scores())
    assert [path.name for path in paths] == ["loglik_hist.png", "llr_hist.png", "roc.png"]
    for path in paths:
        assert path.parent == outdir
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert path.stat().st_size > 10_000
    assert sorted(p.name for p in outdir.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_write_plots_handles_tiny_and_constant_inputs(tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_plots(tmp_path, llr_in=[0.1, 0.1], llr_ood=[0.1], loglik_in=[-1.3, -1.2], loglik_ood=[-1.4])
    assert all(path.stat().st_size > 0 for path in paths)


def test_write_plots_rejects_nan(tmp_path):
    pytest.importorskip("matplotlib")
    scores = synthetic_scores(n=10)
    scores["llr_ood"][3] = np.nan
    with pytest.raises(ValueError, match="llr_ood"):
        write_plots(tmp_path, **scores)


def test_missing_matplotlib_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"pip install 'gooddetect\[plots\]'"):
        write_plots(tmp_path, **synthetic_scores(n=10))
    assert list(tmp_path.iterdir()) == []
