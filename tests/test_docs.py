"""The documentation cannot drift from the code: the method card's example runs, the configuration page is what
its generator writes, the README stays short, and every relative link (and its #anchor) resolves."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
LINKED_PAGES = [README, ROOT / "benchmarks" / "README.md", *sorted(DOCS.glob("*.md"))]

# Produced later by the data-map work (README's "Data map" section links it ahead of time); skipped while missing.
NOT_YET_PRODUCED = {ROOT / "docs" / "img" / "data_map.png"}

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def test_method_card_example_runs_offline_and_prints_the_report(tmp_path):
    section = _section((DOCS / "algorithm.md").read_text(), "How to use")
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)
    assert len(blocks) == 1, "the method card's 'How to use' has exactly one python block"
    script = tmp_path / "how_to_use.py"
    script.write_text(blocks[0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"the example failed:\n{proc.stderr[-4000:]}"
    assert "GEKO efficiency report" in proc.stdout
    assert "sample passes saved:" in proc.stdout


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_is_the_generators_output():
    gen = _generator()
    assert (DOCS / "configuration.md").read_text() == gen.render(), (
        "docs/configuration.md is out of date: run `python scripts/gen_config_docs.py`")


def test_configuration_page_lists_every_field_and_preset():
    from dataclasses import fields

    from geko_hf.core.config import PRESETS, GEKOConfig

    text = (DOCS / "configuration.md").read_text()
    for f in fields(GEKOConfig):
        assert f"| `{f.name}` |" in text
        assert f.metadata.get("help"), f"GEKOConfig.{f.name} has no help text (HfArgumentParser --help shows it)"
    for name in PRESETS:
        assert f"| `{name}` |" in text


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= 320, f"README.md has {lines} lines; move detail into docs/ (at most 320)"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(page: Path):
    text = FENCE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        yield target


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if dest in NOT_YET_PRODUCED and not dest.exists():
            continue  # docs/img/data_map.png: the image is produced later; the link is written ahead of it
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_ci_runs_exactly_the_readmes_test_command():
    """The README says CI runs its test command: `.ci/run`'s only command is that line of the README."""
    readme = README.read_text()
    command = re.search(r"^(bash scripts/test\.sh)\s+#", readme, re.M)
    assert command, "the README names no test command"
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == [f"exec {command.group(1)}"]
