"""Every citation ``docs/theory.md §<id>`` names an anchor of docs/theory.md; no citation of the
external theory file of the project (outside the repository) is left in the package."""
import re
from pathlib import Path

EXTERNAL = "THEORY" + ".md"  # spelled apart so that this file does not cite it itself
ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
CITATION = re.compile(r"docs/theory\.md §(\w+)")


def _cited_files():
    yield from sorted((ROOT / "src").rglob("*.py"))
    yield from sorted((ROOT / "tests").rglob("*.py"))
    yield from sorted((ROOT / "benchmarks").rglob("*.py"))
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))
    yield ROOT / "benchmarks" / "README.md"


def test_every_citation_names_an_anchor_of_the_theory_document():
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', THEORY.read_text(encoding="utf-8")))
    cited = {}
    for path in _cited_files():
        if path.exists():
            for ident in CITATION.findall(path.read_text(encoding="utf-8")):
                cited.setdefault(ident, []).append(str(path.relative_to(ROOT)))
    assert cited, "no citation of docs/theory.md found"
    missing = {ident: files for ident, files in cited.items() if ident not in anchors}
    assert not missing, f"citations of anchors that docs/theory.md lacks: {missing}"


def test_theory_document_has_the_numbered_sections():
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', THEORY.read_text(encoding="utf-8")))
    required = {"1", "2", "3a", "3b", "3c", "3d", "3e", "4", "5", "6", "7", "8", "9"}
    assert required <= anchors, f"missing anchors: {sorted(required - anchors)}"


def test_no_citation_of_the_external_theory_file_in_src():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.py")
                 if EXTERNAL in p.read_text(encoding="utf-8")]
    assert not offenders, f"files still citing {EXTERNAL}: {offenders}"
