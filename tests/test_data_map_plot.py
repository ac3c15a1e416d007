"""The data-map picture at 100 samples (a scatter) and above HEXBIN_ABOVE (a density): both drawn, both PNG."""

from __future__ import annotations

import numpy as np
import pytest

from geko_hf.core.data_map import DataMap
from geko_hf.report import data_map_plot
from geko_hf.report.data_map_plot import HEXBIN_ABOVE, plot_data_map

pytest.importorskip("matplotlib")


def _map(n: int, epochs: int = 3) -> DataMap:
    rng = np.random.default_rng(0)
    dm = DataMap(n)
    for epoch in range(epochs):
        p = rng.beta(2, 2, n)
        dm.update(np.arange(n), epoch, -np.log(p), p > 0.5, 2 * p - 1)
    return dm


@pytest.mark.parametrize("n", [100, HEXBIN_ABOVE + 1000])
def test_the_picture_is_drawn_at_any_size(tmp_path, n, monkeypatch):
    calls = []
    real = data_map_plot._regions
    monkeypatch.setattr(data_map_plot, "_regions", lambda ax, *a: (calls.append(ax.collections[0]), real(ax, *a)))
    path = plot_data_map(_map(n), str(tmp_path / "map.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    kind = type(calls[0]).__name__
    assert kind == ("PolyCollection" if n > HEXBIN_ABOVE else "PathCollection")  # hexbin above, scatter below


def test_no_picture_without_an_observation(tmp_path):
    assert plot_data_map(DataMap(5), str(tmp_path / "map.png")) is None
