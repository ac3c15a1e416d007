"""The data map as a page to explore: one self-contained HTML file (geko_data_map.html) with the Cartography
scatter (Swayamdipta et al., EMNLP 2020, Fig. 1: variability x, confidence y), hover for a sample's id, text, given
label, prediction and statistics; filters by region, by class (or an SFT group column) and "label issues only"
(the top k of label_issue_rank, k editable); a sortable side table of the selected points with their full text;
and a button that downloads the selection's sample ids as CSV for `trainer.geko.filter(..., where=...)`.

    from geko_hf.report.data_map_page import write_data_map_page
    write_data_map_page(trainer.geko.data_map().to_dict(), "out/geko_data_map.html")
    write_data_map_page(data_map_columns(tracker), path, texts=rows)   # rows: a texts file's {"id", "text", ...}

Plain columns in (a dict of lists or numpy arrays: `data_map_columns(...)`, a Dataset's `to_dict()`), an HTML string
out; no torch, transformers or datasets. Which columns mean what: `label_name` (else `label`) is the given label,
`prediction` (or `predicted_label`) the prediction when present, string columns with long or many distinct values
are the text (`text`, or `prompt` and `completion`/`answer` for SFT), and the class filter uses the label or else
the first column with at most MAX_GROUPS distinct values (an SFT run's level or task family).

Why no plotting library: the page's own HTML, CSS and canvas JavaScript are 21 KB. Bokeh 3.9's inline resources
for a scatter with widgets and a table (bokeh.min.js + bokeh-widgets + bokeh-tables) are 1.95 MB before any data,
and bokeh.min.js carries a network URL (its Google Maps loader, https://maps.googleapis.com/...) that this file must
not have; plotly 7.1's plotly.min.js is 4.8 MB, with map-tile and font URLs. A canvas draws 50,000 points in tens of
milliseconds, and all the page does (filter, hover, box select, sort, CSV) is a loop over the points' arrays; no new
dependency. No `<script src>`, no
`<link>`, no fetch: it opens offline from disk. Every sample text lives in a JSON block (`<` escaped as \u003c) and
is only ever shown with textContent, so a text holding HTML or a URL is neither rendered nor loaded.

Large runs: up to POINTS_ABOVE (50,000) observed samples every one is a point. Above it the page draws a density
layer of all observed samples (a GRID x GRID count per region x class, so the filters apply to it too) and a
stratified sample of SAMPLE_POINTS points: every region x class stratum keeps its share and at least
MIN_PER_STRATUM points (or all it has), and the top KEEP_LABEL_ISSUES label issues are always points; the page says
so, and the table and the CSV cover the drawn points. Texts longer than TEXT_LIMIT characters are cut (the parquet
file keeps them whole).

File size: synthetic maps (`synthetic_columns`: 2 classes, a text of ~180 characters per sample), measured with
`python -c "from geko_hf.report.data_map_page import benchmark_sizes as b; print(b())"`:
    samples      page     of it without the texts
    10,000       2.5 MB   0.65 MB   every observed sample a point
    100,000      5.3 MB   1.4 MB    density + a 20,000-point stratified sample (21,000 with the top label issues)
    1,000,000    5.4 MB   1.5 MB    the same: above POINTS_ABOVE the size hardly grows with N
Load time in headless Chromium (Debian chromium, 2 shared CPU cores, software rendering), navigation start to
the frame after the plot is drawn, median of 3 (`pytest -m slow tests/test_data_map_page.py -k loads -s`):
10,000 samples 0.35 s, 100,000 samples 0.44-0.57 s (two sessions), 1,000,000 samples ~0.6 s.
"""

from __future__ import annotations

import html
import json
import os

import numpy as np

from ..core.data_map import REGIONS, region_thresholds

DATA_MAP_PAGE = "geko_data_map.html"
POINTS_ABOVE = 50_000  # observed samples: above this, a density layer plus a stratified sample of points
SAMPLE_POINTS = 20_000  # points drawn above POINTS_ABOVE (each carries its text: this bounds the file)
MIN_PER_STRATUM = 50  # points kept from each region x class stratum (or all it has), however small its share
KEEP_LABEL_ISSUES = 1_000  # the top label issues are always points, so "label issues only" finds them
GRID = 80  # density cells per axis
MAX_GROUPS = 100  # a column with more distinct values is not a class filter
TEXT_LIMIT = 2_000  # characters kept of each text field of a point
DEFAULT_K = 50  # "label issues only": the top k shown first

STAT_COLUMNS = ("observations", "confidence", "variability", "correctness", "aum", "forgetting", "learned_epoch",
                "mean_loss", "last_loss", "last_epoch")
_META = {"sample_id", "region", "bucket", "label_issue_score", "label_issue_rank", "label", "label_name",
         *STAT_COLUMNS}
_PREDICTION = ("prediction_name", "prediction", "predicted_label", "pred")
_TEXT_FIRST = ("text", "sentence", "question", "prompt", "completion", "answer", "response", "chosen")


def write_data_map_page(columns: dict, path: str, **kwargs) -> str:
    """data_map_page(columns, **kwargs) written to `path` (atomically); the path."""
    page = data_map_page(columns, **kwargs)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return str(path)


def data_map_page(columns: dict, title: str | None = None, texts: list | None = None, group_column: str | None = None,
                  max_points: int = POINTS_ABOVE, sample_points: int = SAMPLE_POINTS, seed: int = 0) -> str:
    """The page as one HTML string.

    columns: one entry per data-map column (sample_id, confidence, variability, correctness, region,
        label_issue_rank, ... and any readable field of the rows), all of the same length.
    texts: rows of a texts file ({"id": sample id, "text": ..., "label": ...} or {"id", "prompt", "answer"}),
        added as columns where the map has none of that name.
    group_column: the column the class filter uses (default: the label, else the first low-cardinality field).
    max_points / sample_points: every observed sample is a point up to max_points; above, a density layer and a
        stratified sample of sample_points points. seed: that sample's generator (the page is reproducible).
    """
    cols = _columns(columns, texts)
    n = len(cols["sample_id"])
    x = _floats(cols["variability"])
    y = _floats(cols["confidence"])
    seen = np.isfinite(x) & np.isfinite(y) & (_floats(cols.get("observations", np.ones(n))) > 0)
    region = np.asarray(cols.get("region", [""] * n), dtype=object)
    region_idx = np.full(n, -1, dtype=np.int64)
    for i, name in enumerate(REGIONS):
        region_idx[region == name] = i
    seen &= region_idx >= 0

    label_col = "label_name" if "label_name" in cols else ("label" if "label" in cols else None)
    texts_cols, groups = _fields(cols, label_col)
    group_col = group_column if group_column is not None else (
        label_col if label_col and _distinct(cols[label_col]) <= MAX_GROUPS else (groups[0] if groups else None))
    if group_col is not None and group_col not in cols:
        raise ValueError(f"group_column={group_col!r} is not a column of the map; columns: {sorted(cols)}.")
    classes, class_idx = _categories(cols, group_col, n)
    rank = _ints(cols.get("label_issue_rank", np.zeros(n)))

    observed = np.flatnonzero(seen)
    sampled = len(observed) > max_points
    points = _stratified(observed, region_idx, class_idx, len(classes), rank, sample_points, seed) \
        if sampled else observed
    cut = region_thresholds({"observations": seen.astype(np.int64), "confidence": y, "variability": x}) \
        if len(observed) else {"variability_cutoff": 0.0, "confidence_cutoff": 0.5}
    xmax = float(max(np.nanmax(x[observed]) * 1.05, 0.05)) if len(observed) else 0.5
    pred_col = next((c for c in _PREDICTION if c in cols), None)

    p = {"id": _ints(cols["sample_id"])[points].tolist(), "x": _round(x[points]), "y": _round(y[points]),
         "c": _round(_floats(cols.get("correctness", np.full(n, np.nan)))[points]),
         "r": region_idx[points].tolist(), "k": class_idx[points].tolist(), "rank": rank[points].tolist()}
    for key, name in (("aum", "aum"), ("forget", "forgetting"), ("obs", "observations"), ("loss", "mean_loss"),
                      ("learned", "learned_epoch"), ("score", "label_issue_score")):
        if name in cols:
            p[key] = _round(_floats(cols[name])[points])
    if label_col and label_col != group_col:
        p["label"] = [_text(cols[label_col][i], 200) for i in points]
    if pred_col:
        p["pred"] = [_text(cols[pred_col][i], 200) for i in points]
    p["texts"] = [[_text(cols[name][i], TEXT_LIMIT) for i in points] for name in texts_cols]

    region_counts = [int(((region_idx == i) & seen).sum()) for i in range(len(REGIONS))]
    class_counts = np.bincount(class_idx[seen], minlength=len(classes)).tolist() if classes else []
    data = {
        "title": title or f"GEKO data map: {n:,} samples",
        "n_total": n, "n_observed": int(len(observed)), "n_points": int(len(points)), "sampled": bool(sampled),
        "max_points": int(max_points), "min_per_stratum": MIN_PER_STRATUM, "keep_issues": KEEP_LABEL_ISSUES,
        "text_limit": TEXT_LIMIT, "n_ranked": int((rank > 0).sum()), "default_k": DEFAULT_K,
        "regions": list(REGIONS), "region_counts": region_counts,
        "group": group_col, "label": label_col, "prediction": pred_col, "classes": classes,
        "class_counts": class_counts, "text_columns": texts_cols,
        "cut": {"variability": float(cut["variability_cutoff"]), "confidence": float(cut["confidence_cutoff"])},
        "xmax": xmax, "points": p,
        "density": _density(x, y, observed, region_idx, class_idx, len(classes), xmax) if sampled else None,
    }
    return _html(data)


# -- columns -----------------------------------------------------------------------------------------------
def _columns(columns: dict, texts) -> dict:
    cols = dict(columns)
    if "sample_id" not in cols:
        raise ValueError(f"The data map's columns need `sample_id`; got {sorted(cols)}.")
    n = len(cols["sample_id"])
    for name, values in cols.items():
        if len(values) != n:
            raise ValueError(f"Column {name!r} has {len(values)} values, sample_id has {n}: one value per sample.")
    if texts:
        where = {int(s): i for i, s in enumerate(_ints(cols["sample_id"]))}
        for name in dict.fromkeys(k for row in texts for k in row if k != "id"):
            if name in cols:
                continue
            values = [None] * n
            for row in texts:
                i = where.get(int(row["id"]))
                if i is not None:
                    values[i] = row.get(name)
            cols[name] = values
    return cols


def _fields(cols: dict, label_col) -> tuple[list, list]:
    """(text columns, low-cardinality group columns) among the fields that are neither statistics nor labels."""
    texts, groups = [], []
    for name, values in cols.items():
        if name in _META or name in _PREDICTION or name.startswith("early_") or name == label_col:
            continue
        first = next((v for v in values[:1000] if v is not None), None)
        if isinstance(first, str):
            head = [str(v) for v in values[:1000] if v is not None]
            long = sum(map(len, head)) / max(len(head), 1) > 24
            # a known text name is text even when short (an SFT run's answers: "42")
            text = name in _TEXT_FIRST or long or _distinct(values) > MAX_GROUPS
            (texts if text else groups).append(name)
        elif isinstance(first, (bool, int, np.integer)) and _distinct(values) <= MAX_GROUPS:
            groups.append(name)
    texts.sort(key=lambda c: (_TEXT_FIRST.index(c) if c in _TEXT_FIRST else len(_TEXT_FIRST)))
    return texts, groups


def _distinct(values) -> int:
    try:
        return len(set(values.tolist() if isinstance(values, np.ndarray) else values))
    except TypeError:  # unhashable values (lists of messages): not a class
        return MAX_GROUPS + 1


def _categories(cols, name, n) -> tuple[list, np.ndarray]:
    """The group column's values as names (in label order when the label's integers are known) and an index each."""
    if name is None:
        return [], np.zeros(n, dtype=np.int64)
    values = ["(none)" if v is None else str(v) for v in (cols[name].tolist() if isinstance(cols[name], np.ndarray)
                                                           else cols[name])]
    names = sorted(set(values))
    if name == "label_name" and "label" in cols:  # id2label order, not alphabetical
        first = {}
        for v, label in zip(values, _floats(cols["label"])):
            first.setdefault(v, label)
        names.sort(key=lambda v: (np.nan_to_num(first[v], nan=np.inf), v))
    else:
        try:
            names.sort(key=float)
        except ValueError:
            pass
    index = {v: i for i, v in enumerate(names)}
    return names, np.fromiter((index[v] for v in values), dtype=np.int64, count=n)


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _ints(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0).astype(np.int64)


def _round(values: np.ndarray, digits: int = 4) -> list:
    """Floats as short JSON numbers, NaN as null (4 digits: a pixel of the plot is ~0.002)."""
    out = np.round(values.astype(np.float64), digits).astype(object)
    out[~np.isfinite(values.astype(np.float64))] = None
    return out.tolist()


def _text(value, limit: int) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}… [+{len(text) - limit:,} characters]"


# -- large runs --------------------------------------------------------------------------------------------
def _stratified(observed, region_idx, class_idx, n_classes, rank, budget, seed) -> np.ndarray:
    """About `budget` of the observed samples: each region x class stratum its share, at least MIN_PER_STRATUM (or
    all it has), plus the top KEEP_LABEL_ISSUES label issues. Sorted sample ids' rows."""
    rng = np.random.default_rng(seed)
    stratum = region_idx[observed] * max(n_classes, 1) + class_idx[observed]
    sizes = np.bincount(stratum)
    quota = np.maximum(np.minimum(sizes, MIN_PER_STRATUM), np.round(budget * sizes / len(observed))).astype(np.int64)
    order = np.lexsort((rng.random(len(observed)), stratum))  # strata in turn, each shuffled
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(len(observed)) - start[stratum[order]]
    keep = np.zeros(len(observed), dtype=bool)
    keep[order[position < quota[stratum[order]]]] = True
    r = rank[observed]
    keep |= (r > 0) & (r <= KEEP_LABEL_ISSUES)
    return observed[keep]


def _density(x, y, observed, region_idx, class_idx, n_classes, xmax) -> dict:
    """All observed samples counted on a GRID x GRID grid, one sparse grid per region x class (the filters apply)."""
    xb = np.clip((x[observed] / xmax * GRID).astype(np.int64), 0, GRID - 1)
    yb = np.clip(((y[observed] + 0.02) / 1.04 * GRID).astype(np.int64), 0, GRID - 1)  # the plot's y range
    stratum = region_idx[observed] * max(n_classes, 1) + class_idx[observed]
    keys, counts = np.unique(stratum * GRID * GRID + yb * GRID + xb, return_counts=True)
    groups = []
    for s in np.unique(keys // (GRID * GRID)):
        mask = keys // (GRID * GRID) == s
        groups.append({"r": int(s // max(n_classes, 1)), "k": int(s % max(n_classes, 1)),
                       "cells": (keys[mask] % (GRID * GRID)).tolist(), "n": counts[mask].tolist()})
    return {"grid": GRID, "y0": -0.02, "y1": 1.02, "groups": groups}


# -- the page ----------------------------------------------------------------------------------------------
def _html(data: dict) -> str:
    # "<" escaped: no text can close the script block or open a tag; JSON.parse reads \u003c back as "<".
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return (_PAGE.replace("__TITLE__", html.escape(data["title"])).replace("__STYLE__", _STYLE)
            .replace("__SCRIPT__", _SCRIPT).replace("__DATA__", payload))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title><style>__STYLE__</style></head>
<body>
<header><h1>__TITLE__</h1><p id="geko-note"></p></header>
<div id="geko-controls">
  <label>colour <select id="geko-color"><option value="correctness">correctness</option>
    <option value="region">region</option></select></label>
  <span id="geko-regions"></span>
  <label id="geko-class-label">class <select id="geko-class"></select></label>
  <label><input type="checkbox" id="geko-issues"> label issues only: top
    <input type="number" id="geko-k" min="1" step="1" style="width:5em"></label>
  <button id="geko-clear">clear selection</button>
  <button id="geko-download">download ids (CSV)</button>
</div>
<main>
  <section id="geko-left">
    <div id="geko-plot-box"><canvas id="geko-plot"></canvas><div id="geko-tip" hidden></div></div>
    <div id="geko-legend"></div>
    <p class="hint">Drag a box to select, click a point to pick it, hover for its text. The CSV holds the sample ids
    of the table's rows: <code>ids = np.loadtxt("geko_selection.csv", dtype=int, skiprows=1)</code>, then
    <code>trainer.geko.filter(train, where=np.isin(np.arange(len(train)), ids))</code> drops them.</p>
  </section>
  <section id="geko-right"><p id="geko-count"></p><div id="geko-table-box"><table id="geko-table"></table></div></section>
</main>
<div id="geko-status" data-ready="0" data-drawn="0" data-selected="0" data-load-ms=""></div>
<script type="application/json" id="geko-data">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""

_STYLE = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fff}
header{padding:8px 14px 0}h1{font-size:17px;margin:0 0 2px}#geko-note{margin:0;color:#555}
#geko-controls{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;padding:8px 14px;border-bottom:1px solid #ddd}
#geko-controls label{white-space:nowrap}.swatch{display:inline-block;width:10px;height:10px;margin:0 3px;vertical-align:-1px}
main{display:flex;gap:12px;padding:8px 14px;height:calc(100vh - 120px);min-height:420px;box-sizing:border-box}
#geko-left{flex:1 1 55%;display:flex;flex-direction:column;min-width:320px}
#geko-plot-box{position:relative;flex:1;min-height:300px}
#geko-plot{width:100%;height:100%;display:block;cursor:crosshair}
#geko-tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #999;
 border-radius:4px;padding:6px 8px;max-width:360px;font-size:12px;box-shadow:0 2px 6px rgba(0,0,0,.15);z-index:2}
#geko-tip b{font-weight:600}#geko-tip .t{white-space:pre-wrap;color:#333;margin-top:3px}
#geko-legend{padding:4px 0;color:#444}.hint{color:#666;font-size:12px;margin:4px 0}
#geko-right{flex:1 1 45%;display:flex;flex-direction:column;min-width:300px}#geko-count{margin:0 0 4px}
#geko-table-box{flex:1;overflow:auto;border:1px solid #ddd}
#geko-table{border-collapse:collapse;width:100%;font-size:12px}
#geko-table th{position:sticky;top:0;background:#f3f3f3;cursor:pointer;text-align:left;padding:3px 5px;
 border-bottom:1px solid #ccc;white-space:nowrap;user-select:none}
#geko-table td{padding:3px 5px;border-bottom:1px solid #eee;vertical-align:top}
#geko-table td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#geko-table td.txt{white-space:pre-wrap;min-width:260px;max-width:440px}
#geko-table td.reg{white-space:nowrap}
#geko-table tr:hover td{background:#f7fbff}
"""

_SCRIPT = r"""
(function () {
"use strict";
const D = JSON.parse(document.getElementById("geko-data").textContent);
const P = D.points, N = P.id.length, $ = (id) => document.getElementById(id);
const REGION_COLORS = ["#4c78a8", "#f2a93b", "#d6404e"];
const RDYLBU = ["#a50026", "#d73027", "#f46d43", "#fdae61", "#fee090", "#ffffbf", "#e0f3f8", "#abd9e9",
                "#74add1", "#4575b4", "#313695"];
const TABLE_ROWS = 500;
const S = {regions: D.regions.map(() => true), cls: -1, issues: false, k: Math.max(1, D.default_k),
           color: "correctness", box: null, picked: -1, sortKey: "rank", sortDir: 1};
const visible = new Uint8Array(N), px = new Float32Array(N), py = new Float32Array(N);
const canvas = $("geko-plot"), ctx = canvas.getContext("2d"), tip = $("geko-tip"), status = $("geko-status");
const M = {l: 54, r: 14, t: 12, b: 40};
let W = 0, H = 0, dpr = 1, drawn = 0, drag = null, hoverI = -1;
const X0 = 0, X1 = D.xmax, Y0 = -0.02, Y1 = 1.02;
const sx = (x) => M.l + (x - X0) / (X1 - X0) * (W - M.l - M.r);
const sy = (y) => H - M.b - (y - Y0) / (Y1 - Y0) * (H - M.t - M.b);
const ix = (v) => X0 + (v - M.l) / (W - M.l - M.r) * (X1 - X0);
const iy = (v) => Y0 + (H - M.b - v) / (H - M.t - M.b) * (Y1 - Y0);
const fmt = (v, d) => (v === null || v === undefined) ? "–" : (typeof v === "number" ? v.toFixed(d) : String(v));
const className = (i) => D.classes.length ? D.classes[P.k[i]] : "";
const givenLabel = (i) => P.label ? P.label[i] : className(i);

// -- controls -------------------------------------------------------------------------------------------
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function controls() {
  const box = $("geko-regions");
  D.regions.forEach((name, r) => {
    const lab = el("label"), cb = el("input", {type: "checkbox", id: "geko-region-" + r});
    cb.checked = true;
    cb.addEventListener("change", () => { S.regions[r] = cb.checked; update(); });
    const sw = el("span", {"class": "swatch"}); sw.style.background = REGION_COLORS[r];
    lab.append(cb, sw, document.createTextNode(name + " (" + D.region_counts[r].toLocaleString() + ")"));
    box.append(lab, document.createTextNode(" "));
  });
  const sel = $("geko-class");
  if (!D.classes.length) { $("geko-class-label").hidden = true; }
  else {
    $("geko-class-label").firstChild.textContent = (D.group === "label_name" ? "class" : D.group) + " ";
    sel.append(el("option", {value: "-1"}, "all (" + D.classes.length + ")"));
    D.classes.forEach((c, k) => sel.append(el("option", {value: String(k)}, c + " (" + D.class_counts[k].toLocaleString() + ")")));
    sel.addEventListener("change", () => { S.cls = parseInt(sel.value, 10); update(); });
  }
  const kin = $("geko-k"), iss = $("geko-issues");
  kin.value = String(S.k);
  kin.addEventListener("input", () => { const v = parseInt(kin.value, 10); if (v > 0) { S.k = v; if (S.issues) update(); } });
  iss.addEventListener("change", () => { S.issues = iss.checked; if (S.issues) S.sortKey = "rank", S.sortDir = 1; update(); });
  $("geko-color").addEventListener("change", (e) => { S.color = e.target.value; draw(); legend(); });
  $("geko-clear").addEventListener("click", () => { S.box = null; S.picked = -1; update(); });
  $("geko-download").addEventListener("click", download);
  let note = D.n_total.toLocaleString() + " samples, " + D.n_observed.toLocaleString() + " observed";
  if (D.n_total > D.n_observed) note += " (" + (D.n_total - D.n_observed).toLocaleString() + " never observed: not drawn)";
  if (D.sampled) note += ". Above " + D.max_points.toLocaleString() + " samples the grey cells are the density of all " +
    D.n_observed.toLocaleString() + " observed samples and the points a stratified sample of " + D.n_points.toLocaleString() +
    ": every region × class keeps its share and at least " + D.min_per_stratum + " points, and the top " +
    D.keep_issues.toLocaleString() + " label issues are all points. The table and the CSV cover these points; " +
    "geko_data_map.parquet has every sample";
  else note += "; every observed sample is a point";
  $("geko-note").textContent = note + ". Dashed: the region cut-offs.";
}
function legend() {
  const box = $("geko-legend"); box.textContent = "";
  if (S.color === "region") D.regions.forEach((name, r) => {
    const sw = el("span", {"class": "swatch"}); sw.style.background = REGION_COLORS[r];
    box.append(sw, document.createTextNode(name + "  "));
  });
  else {
    box.append(document.createTextNode("correctness 0 "));
    RDYLBU.forEach((c) => {
      const sw = el("span", {"class": "swatch"}); sw.style.background = c; sw.style.margin = "0"; box.append(sw);
    });
    box.append(document.createTextNode(" 1 (share of observations right)"));
  }
}

// -- filter and selection ---------------------------------------------------------------------------------
function passes(i) {
  return S.regions[P.r[i]] && (S.cls < 0 || P.k[i] === S.cls) && (!S.issues || (P.rank[i] > 0 && P.rank[i] <= S.k));
}
function filter() { let n = 0; for (let i = 0; i < N; i++) { visible[i] = passes(i) ? 1 : 0; n += visible[i]; } return n; }
function inBox(i) {
  const b = S.box;
  return !b || (P.x[i] >= b.x0 && P.x[i] <= b.x1 && P.y[i] >= b.y0 && P.y[i] <= b.y1);
}
function selected() {
  if (S.picked >= 0) return visible[S.picked] ? [S.picked] : [];
  const out = [];
  for (let i = 0; i < N; i++) if (visible[i] && inBox(i)) out.push(i);
  return out;
}

// -- drawing ----------------------------------------------------------------------------------------------
function layout() {
  dpr = window.devicePixelRatio || 1;
  const r = canvas.getBoundingClientRect();
  W = Math.max(r.width, 200); H = Math.max(r.height, 200);
  canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
}
function ticks(lo, hi, n) {
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(6));
  return out;
}
function axes() {
  ctx.strokeStyle = "#eee"; ctx.fillStyle = "#444"; ctx.lineWidth = 1; ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const v of ticks(X0, X1, 6)) {
    ctx.beginPath(); ctx.moveTo(sx(v), sy(Y0)); ctx.lineTo(sx(v), sy(Y1)); ctx.stroke(); ctx.fillText(String(v), sx(v), H - M.b + 4);
  }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    ctx.beginPath(); ctx.moveTo(sx(X0), sy(v)); ctx.lineTo(sx(X1), sy(v)); ctx.stroke(); ctx.fillText(String(v), M.l - 5, sy(v));
  }
  ctx.strokeStyle = "#888"; ctx.strokeRect(M.l, M.t, W - M.l - M.r, H - M.t - M.b);
  ctx.textAlign = "center"; ctx.textBaseline = "bottom";
  ctx.fillText("variability (std of the gold-label probability)", (M.l + W - M.r) / 2, H - 2);
  ctx.save(); ctx.translate(12, (M.t + H - M.b) / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "top";
  ctx.fillText("confidence (mean gold-label probability)", 0, 0); ctx.restore();
}
function density() {
  if (!D.density || S.issues) return;
  const g = D.density.grid, cnt = new Float64Array(g * g);
  for (const grp of D.density.groups) {
    if (!S.regions[grp.r] || (S.cls >= 0 && grp.k !== S.cls)) continue;
    for (let j = 0; j < grp.cells.length; j++) cnt[grp.cells[j]] += grp.n[j];
  }
  let max = 0; for (const c of cnt) if (c > max) max = c;
  if (!max) return;
  const cw = (sx(X1) - sx(X0)) / g, ch = (sy(D.density.y0) - sy(D.density.y1)) / g, lm = Math.log1p(max);
  const cx = (b) => Math.round(sx(X0) + b * cw), cy = (b) => Math.round(sy(D.density.y0) - b * ch);  // no seams
  for (let c = 0; c < g * g; c++) {
    if (!cnt[c]) continue;
    const xb = c % g, yb = (c - xb) / g;
    ctx.fillStyle = "rgba(70,70,80," + (0.06 + 0.5 * Math.log1p(cnt[c]) / lm).toFixed(3) + ")";
    ctx.fillRect(cx(xb), cy(yb + 1), cx(xb + 1) - cx(xb), cy(yb) - cy(yb + 1));
  }
}
function cutoffs() {
  const v = D.cut.variability, c = D.cut.confidence;
  ctx.save(); ctx.setLineDash([5, 4]); ctx.strokeStyle = "#555"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(sx(v), sy(Y0)); ctx.lineTo(sx(v), sy(Y1));
  ctx.moveTo(sx(X0), sy(c)); ctx.lineTo(sx(v), sy(c)); ctx.stroke(); ctx.restore();
  ctx.font = "bold 12px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.lineWidth = 3; ctx.strokeStyle = "#fff";
  const label = (text, r, x, y, base) => {
    ctx.textBaseline = base; ctx.strokeText(text, x, y); ctx.fillStyle = REGION_COLORS[r]; ctx.fillText(text, x, y);
  };
  label("easy-to-learn", 0, sx(X0) + 6, sy(Y1) + 4, "top");
  label("ambiguous", 1, sx(v) + 6, sy(Y1) + 4, "top");
  label("hard-to-learn", 2, sx(X0) + 6, sy(Y0) - 4, "bottom");
}
function colorOf(i) {
  if (S.color === "region") return P.r[i];
  const c = P.c[i];
  return c === null ? 5 : Math.max(0, Math.min(10, Math.round(c * 10)));
}
function points() {
  const palette = S.color === "region" ? REGION_COLORS : RDYLBU;
  const n = Math.max(1, drawnCount());
  const rad = Math.max(1.2, Math.min(5, 30 / Math.sqrt(Math.sqrt(n))));
  const paths = [palette.map(() => new Path2D()), palette.map(() => new Path2D())];  // [outside box, inside]
  drawn = 0;
  for (let i = 0; i < N; i++) {
    px[i] = sx(P.x[i]); py[i] = sy(P.y[i]);
    if (!visible[i]) continue;
    const p = paths[(S.box || S.picked >= 0) ? ((S.picked >= 0 ? i === S.picked : inBox(i)) ? 1 : 0) : 1][colorOf(i)];
    p.moveTo(px[i] + rad, py[i]); p.arc(px[i], py[i], rad, 0, 2 * Math.PI);
    drawn++;
  }
  for (let s = 0; s < 2; s++) {
    ctx.globalAlpha = s ? (D.sampled ? 0.6 : 0.8) : 0.18;
    palette.forEach((col, c) => { ctx.fillStyle = col; ctx.fill(paths[s][c]); });
  }
  ctx.globalAlpha = 1;
  const hi = S.picked >= 0 ? S.picked : hoverI;
  if (hi >= 0 && visible[hi]) {
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(px[hi], py[hi], rad + 3, 0, 2 * Math.PI); ctx.stroke();
  }
}
function drawnCount() { let n = 0; for (let i = 0; i < N; i++) n += visible[i]; return n; }
function boxes() {
  const b = drag && drag.moved ? {x0: Math.min(drag.x, drag.x1), y0: Math.min(drag.y, drag.y1),
                                  w: Math.abs(drag.x1 - drag.x), h: Math.abs(drag.y1 - drag.y)}
          : S.box ? {x0: sx(S.box.x0), y0: sy(S.box.y1), w: sx(S.box.x1) - sx(S.box.x0), h: sy(S.box.y0) - sy(S.box.y1)} : null;
  if (!b) return;
  ctx.fillStyle = "rgba(30,120,220,0.08)"; ctx.strokeStyle = "rgba(30,120,220,0.9)"; ctx.lineWidth = 1;
  ctx.fillRect(b.x0, b.y0, b.w, b.h); ctx.strokeRect(b.x0, b.y0, b.w, b.h);
}
function draw() {
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  axes(); density();
  ctx.save(); ctx.beginPath(); ctx.rect(M.l, M.t, W - M.l - M.r, H - M.t - M.b); ctx.clip();
  points(); cutoffs(); boxes(); ctx.restore();
  status.dataset.drawn = String(drawn);
}

// -- hover, box select, pick ------------------------------------------------------------------------------
function nearest(mx, my, within) {
  let best = -1, bd = within * within;
  for (let i = 0; i < N; i++) {
    if (!visible[i]) continue;
    const dx = px[i] - mx, dy = py[i] - my, d = dx * dx + dy * dy;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}
function short(t, n) { t = t.replace(/\s+/g, " ").trim(); return t.length > n ? t.slice(0, n) + "…" : t; }
function showTip(i, mx, my) {
  if (i < 0) { tip.hidden = true; return; }
  tip.textContent = "";
  const head = el("div"); head.append(el("b", {}, "#" + P.id[i]), document.createTextNode("  " + D.regions[P.r[i]]));
  tip.append(head);
  const lab = D.label ? "label: " + givenLabel(i) : D.classes.length ? D.group + ": " + className(i) : "";
  const line = [lab, P.pred ? "prediction: " + P.pred[i] : ""].filter((t) => t).join("   ");
  if (line) tip.append(el("div", {}, line));
  D.text_columns.forEach((name, t) => {
    const tag = D.text_columns.length > 1 ? name + ": " : "";
    if (P.texts[t][i]) tip.append(el("div", {"class": "t"}, tag + short(P.texts[t][i], 160)));
  });
  tip.append(el("div", {}, "confidence " + fmt(P.y[i], 3) + "  variability " + fmt(P.x[i], 3) + "  correctness " + fmt(P.c[i], 2)));
  const more = [];
  if (P.aum) more.push("AUM " + fmt(P.aum[i], 3));
  if (P.forget) more.push("forgotten " + fmt(P.forget[i], 0) + "×");
  if (P.obs) more.push("observed " + fmt(P.obs[i], 0) + "×");
  more.push("label-issue rank " + (P.rank[i] > 0 ? P.rank[i] : "–"));
  tip.append(el("div", {}, more.join("  ")));
  tip.hidden = false;
  const box = canvas.getBoundingClientRect();
  tip.style.left = Math.min(mx + 14, box.width - tip.offsetWidth - 4) + "px";
  tip.style.top = (my + 14 + tip.offsetHeight > box.height ? my - tip.offsetHeight - 10 : my + 14) + "px";
}
function mouse(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
let pending = false, last = null;
canvas.addEventListener("mousemove", (e) => {
  last = mouse(e);
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const [mx, my] = last;
    if (drag) { drag.x1 = mx; drag.y1 = my; drag.moved = drag.moved || Math.abs(mx - drag.x) + Math.abs(my - drag.y) > 4; draw(); return; }
    const i = nearest(mx, my, 8);
    if (i !== hoverI) { hoverI = i; draw(); }
    showTip(i, mx, my);
  });
});
canvas.addEventListener("mouseleave", () => { tip.hidden = true; if (hoverI >= 0) { hoverI = -1; draw(); } });
canvas.addEventListener("mousedown", (e) => {
  const [mx, my] = mouse(e);
  drag = {x: mx, y: my, x1: mx, y1: my, moved: false}; tip.hidden = true;
});
window.addEventListener("mouseup", (e) => {
  if (!drag) return;
  const d = drag; drag = null;
  if (d.moved) {
    S.box = {x0: ix(Math.min(d.x, d.x1)), x1: ix(Math.max(d.x, d.x1)), y0: iy(Math.max(d.y, d.y1)), y1: iy(Math.min(d.y, d.y1))};
    S.picked = -1;
  } else {
    S.picked = nearest(d.x, d.y, 8);
    if (S.picked < 0) S.box = null;
  }
  draw(); table();
});

// -- table ----------------------------------------------------------------------------------------------
const COLUMNS = [["id", "id", (i) => P.id[i], 0]];
if (D.label || D.classes.length) COLUMNS.push(["label", D.label ? "label" : D.group, givenLabel, -1]);
if (P.pred) COLUMNS.push(["pred", "prediction", (i) => P.pred[i], -1]);
D.text_columns.forEach((name, t) => COLUMNS.push(["t" + t, name, (i) => P.texts[t][i], -2]));
COLUMNS.push(["region", "region", (i) => D.regions[P.r[i]], -1], ["y", "confidence", (i) => P.y[i], 3],
             ["x", "variability", (i) => P.x[i], 3],
             ["c", "correctness", (i) => P.c[i], 2]);
if (P.aum) COLUMNS.push(["aum", "AUM", (i) => P.aum[i], 3]);
if (P.forget) COLUMNS.push(["forget", "forgetting", (i) => P.forget[i], 0]);
COLUMNS.push(["rank", "issue rank", (i) => P.rank[i] > 0 ? P.rank[i] : null, 0]);
function sortRows(rows) {
  const col = COLUMNS.find((c) => c[0] === S.sortKey) || COLUMNS[0], get = col[2], dir = S.sortDir;
  return rows.sort((a, b) => {
    const va = get(a), vb = get(b);
    if (va === vb) return P.id[a] - P.id[b];
    if (va === null || va === "") return 1;
    if (vb === null || vb === "") return -1;
    return (va < vb ? -1 : 1) * dir;
  });
}
function table() {
  const rows = sortRows(selected());
  status.dataset.selected = String(rows.length);
  const shown = rows.slice(0, TABLE_ROWS);
  $("geko-count").textContent = (S.picked >= 0 ? "picked point" : S.box ? "selected by the box" : "all points shown") + ": " +
    rows.length.toLocaleString() + " samples" +
    (rows.length > TABLE_ROWS ? " (table: first " + TABLE_ROWS + " by the sort; the CSV has all)" : "") +
    (S.issues ? " · top " + S.k + " label issues" : "");
  const t = $("geko-table"), head = el("tr");
  t.textContent = "";
  for (const [key, name] of COLUMNS) {
    const th = el("th", {"data-key": key}, name + (S.sortKey === key ? (S.sortDir > 0 ? " ▲" : " ▼") : ""));
    th.addEventListener("click", () => { S.sortDir = S.sortKey === key ? -S.sortDir : 1; S.sortKey = key; table(); });
    head.append(th);
  }
  const thead = el("thead"); thead.append(head); t.append(thead);
  const body = el("tbody"), frag = document.createDocumentFragment();
  for (const i of shown) {
    const tr = el("tr");
    for (const [, , get, digits] of COLUMNS) {
      const v = get(i);
      const text = digits >= 0 ? fmt(v, digits) : (v === null ? "" : String(v));
      tr.append(el("td", {"class": digits === -2 ? "txt" : digits >= 0 ? "num" : "reg"}, text));
    }
    tr.addEventListener("mouseenter", () => { hoverI = i; draw(); });
    frag.append(tr);
  }
  body.append(frag); t.append(body);
}
function download() {
  const rows = selected().sort((a, b) => P.id[a] - P.id[b]);
  const blob = new Blob(["sample_id\n" + rows.map((i) => P.id[i]).join("\n") + "\n"], {type: "text/csv"});
  const a = el("a", {download: "geko_selection.csv"});
  a.href = URL.createObjectURL(blob);
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function update() {
  filter();
  if (S.picked >= 0 && !visible[S.picked]) S.picked = -1;
  draw(); table();
}
controls(); legend(); layout(); update();
window.addEventListener("resize", () => { layout(); draw(); });
// ready after the frame that shows the plot: performance.now() counts from navigation start
requestAnimationFrame(() => requestAnimationFrame(() => {
  status.dataset.loadMs = performance.now().toFixed(0);
  status.dataset.ready = "1";
}));
})();
"""


def benchmark_sizes(sizes=(10_000, 100_000, 1_000_000), folder: str = ".", seed: int = 0) -> dict:
    """Write synthetic pages of each size into `folder` (data_map_page_<n>.html); {n: bytes}. The numbers in the
    module docstring come from `python -c "from geko_hf.report.data_map_page import benchmark_sizes as b; print(b())"`."""
    out = {}
    for n in sizes:
        path = os.path.join(folder, f"data_map_page_{n}.html")
        out[n] = os.path.getsize(write_data_map_page(synthetic_columns(n, seed), path))
    return out


def synthetic_columns(n: int, seed: int = 0) -> dict:
    """A plausible data map of n samples (2 classes, texts of 60-300 characters) for sizes, load times and tests."""
    rng = np.random.default_rng(seed)
    conf = np.clip(rng.beta(4, 1.5, n), 0, 1)
    var = np.clip(rng.gamma(2, 0.05, n) * (1 - np.abs(conf - 0.5)), 0, 0.5)
    label = rng.integers(0, 2, n)
    words = np.array("the movie was great awful plot acting slow fun boring script cast score scenes ending".split())
    pool = [" ".join(words[rng.integers(0, len(words), k)]) for k in rng.integers(10, 50, min(n, 5_000))]
    text = [f"review {i}: {pool[j]}" for i, j in enumerate(rng.integers(0, len(pool), n))]
    obs = np.full(n, 3)
    obs[rng.random(n) < 0.01] = 0
    conf[obs == 0], var[obs == 0] = np.nan, np.nan
    stats = {"observations": obs, "confidence": conf, "variability": var}
    from ..core.data_map import regions_of
    from ..core.label_issues import label_issue_ranking

    correctness = np.where(obs > 0, np.round(np.clip(conf + rng.normal(0, 0.15, n), 0, 1) * 3) / 3, np.nan)
    stats.update(correctness=correctness, aum=np.where(obs > 0, 2 * conf - 1, np.nan),
                 last_loss=-np.log(np.clip(conf, 1e-3, 1)))
    score, ranking = label_issue_ranking(stats)
    rank = np.zeros(n, dtype=np.int64)
    rank[ranking] = np.arange(1, len(ranking) + 1)
    return {"sample_id": np.arange(n), "text": text, "label": label,
            "label_name": np.array(["negative", "positive"], dtype=object)[label], **stats,
            "forgetting": rng.integers(0, 3, n), "mean_loss": -np.log(np.clip(conf, 1e-3, 1)),
            "region": regions_of(stats), "label_issue_score": score, "label_issue_rank": rank}
