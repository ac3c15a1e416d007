"""geko_data_map.html (report/data_map_page.py): a self-contained page that loads nothing from the network, holds
every observed sample as a point (or, above POINTS_ABOVE, a density and a stratified sample that keeps every region
and class), shows SFT prompts and answers, is written at train end and by `geko-hf report --data-map`; and, in
headless Chromium (slow), draws its points, filters them, hovers, selects, downloads the ids, and loads fast."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest

from geko_hf.core.data_map import REGIONS
from geko_hf.report.data_map_page import (DATA_MAP_PAGE, KEEP_LABEL_ISSUES, MIN_PER_STRATUM, POINTS_ABOVE,
                                          SAMPLE_POINTS, data_map_page, synthetic_columns, write_data_map_page)

CHROMIUM = "/usr/bin/chromium"
HOSTILE = ('<img src="https://evil.example/x.png"> </script><script src="http://evil.example/a.js"></script> '
           "fetch('https://evil.example/') <link href=\"https://evil.example/c.css\">")


def _data(page: str) -> dict:
    """The page's embedded JSON, as the browser's JSON.parse reads it."""
    block = re.search(r'<script type="application/json" id="geko-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def _without_data(page: str) -> str:
    return re.sub(r'(<script type="application/json" id="geko-data">).*?(</script>)', r"\1\2", page, flags=re.S)


# -- fast ------------------------------------------------------------------------------------------------
def test_page_loads_nothing_from_the_network_even_when_a_text_holds_html():
    columns = synthetic_columns(200)
    columns["text"][0] = HOSTILE
    page = data_map_page(columns)
    for loader in ('src="http', "src='http", 'href="http', "href='http", "url(http", 'url("http', "url('http",
                   "@import", "srcset="):
        assert loader not in page, loader
    code = _without_data(page)  # the page's own HTML, CSS and JavaScript: no URL at all, nothing that fetches
    for word in ("http://", "https://", "fetch(", "XMLHttpRequest", "<link", "import(", "WebSocket", "<iframe"):
        assert word not in code, word
    assert code.count("<script") == 2 and "<script src" not in code
    assert _data(page)["points"]["texts"][0][0] == HOSTILE  # the text survives as text (shown with textContent)
    assert "innerHTML" not in code


def test_every_observed_sample_is_a_point_and_the_filters_are_there():
    columns = synthetic_columns(500)
    observed = columns["observations"] > 0
    page = data_map_page(columns, title="toy map")
    data = _data(page)
    assert data["n_total"] == 500 and data["n_points"] == data["n_observed"] == int(observed.sum()) < 500
    assert data["points"]["id"] == np.flatnonzero(observed).tolist() and not data["sampled"]
    assert data["density"] is None
    for control in ('id="geko-regions"', 'id="geko-class"', 'id="geko-issues"', 'id="geko-k"', 'id="geko-download"',
                    'id="geko-color"', 'id="geko-table"', 'id="geko-plot"', 'id="geko-status"'):
        assert control in page, control
    assert data["regions"] == list(REGIONS)
    assert data["region_counts"] == [int((columns["region"] == r).sum()) for r in REGIONS]
    assert data["group"] == "label_name" and data["classes"] == ["negative", "positive"]
    assert data["text_columns"] == ["text"] and "<title>toy map</title>" in page
    p = data["points"]
    i = 7  # a point carries what hover and table show: id, statistics, region, class, rank, text
    sid = p["id"][i]
    assert p["y"][i] == pytest.approx(columns["confidence"][sid], abs=1e-4)
    assert p["x"][i] == pytest.approx(columns["variability"][sid], abs=1e-4)
    assert REGIONS[p["r"][i]] == columns["region"][sid] and data["classes"][p["k"][i]] == columns["label_name"][sid]
    assert p["rank"][i] == columns["label_issue_rank"][sid] and p["texts"][0][i] == columns["text"][sid]


def test_sft_columns_show_prompt_and_answer_and_the_group_column():
    n = 40
    columns = {k: v[:n] for k, v in synthetic_columns(n).items() if k not in ("text", "label", "label_name")}
    columns["prompt"] = [f"What is {i} + {i}?" for i in range(n)]
    columns["completion"] = [str(2 * i) for i in range(n)]
    columns["family"] = ["small" if i < 20 else "large" for i in range(n)]
    data = _data(data_map_page(columns))
    assert data["text_columns"] == ["prompt", "completion"] and data["group"] == "family"
    assert data["classes"] == ["large", "small"] and data["label"] is None
    p = data["points"]
    j = p["id"].index(3)
    assert p["texts"][0][j] == "What is 3 + 3?" and p["texts"][1][j] == "6"
    # the CLI's way: the statistics alone plus a texts file's rows ({"id", "prompt", "answer"})
    stats = {k: v for k, v in columns.items() if k not in ("prompt", "completion", "family")}
    rows = [{"id": i, "prompt": f"q{i}", "answer": f"a{i}"} for i in range(n)]
    data = _data(data_map_page(stats, texts=rows))
    j = data["points"]["id"].index(5)
    assert data["text_columns"] == ["prompt", "answer"]
    assert data["points"]["texts"][0][j] == "q5" and data["points"]["texts"][1][j] == "a5"


def test_a_large_run_is_a_density_and_a_stratified_sample_keeping_every_region_and_class():
    n = POINTS_ABOVE + 10_000
    columns = synthetic_columns(n)
    rare = np.flatnonzero(columns["region"] == "hard-to-learn")[:7]  # a class of 7 samples, all hard-to-learn
    columns["label_name"][rare] = "rare"
    columns["label"][rare] = 2
    data = _data(data_map_page(columns))
    p = data["points"]
    assert data["sampled"] and SAMPLE_POINTS <= data["n_points"] <= SAMPLE_POINTS + KEEP_LABEL_ISSUES + 500
    assert len(p["id"]) == data["n_points"] and data["classes"] == ["negative", "positive", "rare"]
    observed = columns["observations"] > 0
    ids = np.asarray(p["id"])
    for r, region in enumerate(REGIONS):
        for k, name in enumerate(data["classes"]):
            stratum = observed & (columns["region"] == region) & (columns["label_name"] == name)
            kept = np.isin(ids, np.flatnonzero(stratum)).sum()
            assert kept >= min(int(stratum.sum()), MIN_PER_STRATUM), (region, name)
    assert set(rare.tolist()) <= set(p["id"])  # the rare class is kept whole
    top = np.flatnonzero((columns["label_issue_rank"] > 0) & (columns["label_issue_rank"] <= KEEP_LABEL_ISSUES))
    assert set(top.tolist()) <= set(p["id"])  # every top label issue is a point
    density = data["density"]
    assert sum(sum(g["n"]) for g in density["groups"]) == data["n_observed"] == int(observed.sum())
    assert {(g["r"], g["k"]) for g in density["groups"]} >= {(2, 2)}
    page = data_map_page(columns)
    assert "stratified sample of" in page  # the page says so
    again = _data(data_map_page(columns))["points"]["id"]
    assert again == p["id"]  # seeded: the same page twice


def test_bad_columns_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="sample_id"):
        data_map_page({"confidence": [0.5]})
    columns = synthetic_columns(10)
    columns["text"] = columns["text"][:9]
    with pytest.raises(ValueError, match="'text' has 9 values, sample_id has 10"):
        data_map_page(columns)
    with pytest.raises(ValueError, match="group_column='nope'"):
        data_map_page(synthetic_columns(10), group_column="nope")
    empty = synthetic_columns(5)
    empty["observations"][:] = 0
    empty["region"][:] = ""
    path = write_data_map_page(empty, str(tmp_path / "sub" / DATA_MAP_PAGE))  # nothing observed: a page, no points
    assert _data(open(path, encoding="utf-8").read())["n_points"] == 0


def test_written_at_train_end_and_by_report_data_map(tmp_path, capsys):
    from transformers import Trainer, TrainingArguments

    from geko_hf import GEKOCallback
    from geko_hf.cli import report as cli_report
    from geko_hf.cli import run_files
    from geko_hf.training.data_map import DATA_MAP_FILE
    from hf_helpers import tiny_gpt2, toy_lm_dataset

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=2,
                             report_to=[], use_cpu=True, save_strategy="epoch", disable_tqdm=True, seed=0)
    train = toy_lm_dataset(n=24).add_column("text", [f"row {i} {'learnable' if i % 2 == 0 else 'noise'}"
                                                     for i in range(24)])
    trainer = Trainer(model=tiny_gpt2(0), args=args, train_dataset=train, callbacks=[GEKOCallback(observe_only=True)])
    trainer.train()
    page = (tmp_path / DATA_MAP_PAGE).read_text(encoding="utf-8")  # next to the parquet file and the PNG
    assert (tmp_path / DATA_MAP_FILE).exists()
    data = _data(page)
    assert data["n_points"] == 24 and data["text_columns"] == ["text"]
    assert data["points"]["texts"][0][data["points"]["id"].index(3)] == "row 3 noise"
    assert trainer.geko.write_data_map(str(tmp_path / "again"))[-1].endswith(DATA_MAP_PAGE)

    checkpoint = tmp_path / f"checkpoint-{trainer.state.global_step}"
    with open(tmp_path / run_files.TEXTS_FILE, "w") as f:  # what `geko-hf train` leaves next to its checkpoints
        for i in range(24):
            f.write(json.dumps({"id": i, "text": f"text of row {i}", "label": "odd" if i % 2 else "even"}) + "\n")
    out = cli_report.run([str(checkpoint), "--no_plot", "--data-map", "--top_k", "2"])
    assert out["data_map"]["page"] == str(checkpoint / DATA_MAP_PAGE)
    assert f"Data map page: {checkpoint / DATA_MAP_PAGE}" in capsys.readouterr().out
    data = _data((checkpoint / DATA_MAP_PAGE).read_text(encoding="utf-8"))
    j = data["points"]["id"].index(5)
    assert data["points"]["texts"][0][j] == "text of row 5" and data["classes"] == ["even", "odd"]
    assert data["points"]["k"][j] == 1


# -- slow: a real browser --------------------------------------------------------------------------------
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download: "
                                                                 "the test drives the Debian chromium)")
    with sync_api.sync_playwright() as p:
        # Playwright launches with --headless and a fresh --user-data-dir of its own; never its downloaded browsers
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, path, width=1400, height=860):
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"file://{path}")
    page.wait_for_selector('#geko-status[data-ready="1"]', state="attached", timeout=60_000)
    return page, errors, requests


def _drawn(page) -> int:
    return int(page.get_attribute("#geko-status", "data-drawn"))


@pytest.mark.slow
def test_in_chromium_points_are_drawn_filtered_hovered_selected_and_downloaded(browser, tmp_path):
    columns = synthetic_columns(2_000)
    path = write_data_map_page(columns, str(tmp_path / DATA_MAP_PAGE))
    data = _data(open(path, encoding="utf-8").read())
    page, errors, requests = _open(browser, path)
    p = data["points"]
    assert _drawn(page) == data["n_points"] == 2_000 - int((columns["observations"] == 0).sum())
    page.screenshot(path=str(tmp_path / "data_map_page.png"))
    assert os.path.getsize(tmp_path / "data_map_page.png") > 20_000

    page.uncheck("#geko-region-2")  # hard-to-learn off
    assert _drawn(page) == sum(r != 2 for r in p["r"])
    page.check("#geko-region-2")
    page.select_option("#geko-class", "1")  # positive only
    assert _drawn(page) == sum(k == 1 for k in p["k"])
    page.select_option("#geko-class", "-1")
    page.fill("#geko-k", "20")
    page.check("#geko-issues")
    assert _drawn(page) == 20 and int(page.get_attribute("#geko-status", "data-selected")) == 20
    first = page.locator("#geko-table tbody tr").first.locator("td").first.text_content()
    assert int(first) == p["id"][p["rank"].index(1)]  # the table is sorted by rank: the top issue first
    with page.expect_download() as download:
        page.click("#geko-download")
    with open(download.value.path()) as f:
        ids = [int(row["sample_id"]) for row in csv.DictReader(f)]
    assert sorted(ids) == sorted(i for i, r in zip(p["id"], p["rank"]) if 0 < r <= 20)
    page.uncheck("#geko-issues")
    assert _drawn(page) == data["n_points"]

    # hover: the tooltip shows the point's id and text; a dragged box selects fewer points
    box = page.locator("#geko-plot").bounding_box()  # the page's margins: 54 left, 14 right, 12 top, 40 bottom
    i = p["id"].index(next(s for s in p["id"] if columns["region"][s] == "ambiguous"))
    left, right = box["x"] + 54, box["x"] + box["width"] - 14
    top, bottom = box["y"] + 12, box["y"] + box["height"] - 40
    to_px = (lambda x, y: (left + x / data["xmax"] * (right - left), bottom - (y + 0.02) / 1.04 * (bottom - top)))
    page.mouse.move(*to_px(p["x"][i], p["y"][i]))
    page.wait_for_selector("#geko-tip:not([hidden])", timeout=5_000)
    tip = page.text_content("#geko-tip")
    assert f"#{p['id'][i]}" in tip and "confidence" in tip
    page.mouse.move(*to_px(0.0, 0.3))
    page.mouse.down()
    page.mouse.move(*to_px(data["cut"]["variability"], 0.7), steps=5)
    page.mouse.up()
    selected = int(page.get_attribute("#geko-status", "data-selected"))
    inside = sum(0.0 <= x <= data["cut"]["variability"] and 0.3 <= y <= 0.7 for x, y in zip(p["x"], p["y"]))
    assert abs(selected - inside) <= 0.02 * inside + 3 and 0 < selected < data["n_points"]  # up to a pixel's rounding
    page.click("#geko-clear")
    assert int(page.get_attribute("#geko-status", "data-selected")) == data["n_points"]
    assert errors == [] and all(u.startswith(("file:", "blob:", "data:")) for u in requests), (errors, requests)


@pytest.mark.slow
@pytest.mark.parametrize("n", [10_000, 100_000])
def test_in_chromium_a_large_page_loads_and_draws(browser, tmp_path, n):
    """A 10k and a 100k page load and draw without an error. The load time (navigation start to the frame after the
    plot, the page's data-load-ms) is printed, not asserted: timings belong to benchmarks, not to tests."""
    path = write_data_map_page(synthetic_columns(n), str(tmp_path / f"page_{n}.html"))
    times = []
    for _ in range(3):
        page, errors, _ = _open(browser, path)
        times.append(int(page.get_attribute("#geko-status", "data-load-ms")))
        assert _drawn(page) > 0 and errors == []
        page.close()
    ms = sorted(times)[1]
    print(f"\n{n:,} samples: {os.path.getsize(path) / 1e6:.1f} MB, loaded and drawn in {ms} ms (runs: {times})")

