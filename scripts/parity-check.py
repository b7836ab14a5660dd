#!/usr/bin/env python3
"""Checks docs/PARITY.md: every test the parity table names must exist.

The table has one row per API concept and the columns Rust | Node | Python | Kotlin | Swift.
Each cell is one of
  `path::test name`   a test in that file (path relative to the repository root),
  n/a: <reason>       the API does not exist in that language by design,
  missing             it should be covered but is not yet.
For a `path::name` cell the file must exist, belong to the column's language, and hold a test
of that name:
  .js     a node:test call  test('name' / test("name" / test(`name`  (string escapes decoded)
  .py     def name( or async def name(, with name starting test_
  .kt     fun `name`( annotated @Test
  .swift  func name(, with name starting test (XCTest)
  .rs     fn name( under a #[test] / #[tokio::test(...)] attribute
Prints every bad cell and exits 1 if there is one; `missing` cells are reported, not failed.
Python 3 standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "PARITY.md"
LANGUAGES = ["Rust", "Node", "Python", "Kotlin", "Swift"]
# Which files may appear in each column: (path prefixes, extension).
PLACES = {
    "Rust": (("core/", "cli/", "examples/"), ".rs"),
    "Node": (("bindings-node/",), ".js"),
    "Python": (("bindings-python/",), ".py"),
    "Kotlin": (("bindings-swift-kotlin/kotlin/",), ".kt"),
    "Swift": (("bindings-swift-kotlin/swift/",), ".swift"),
}

JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def js_test_names(src: str) -> set[str]:
    """The names of node:test `test(...)` calls whose first argument is a string literal."""
    names = set()
    for m in re.finditer(r"(?<![\w.$])test\s*\(\s*(['\"`])", src):
        quote, i, out = m.group(1), m.end(), []
        while i < len(src) and src[i] != quote:
            c = src[i]
            if c == "\\" and i + 1 < len(src):
                i += 1
                out.append(JS_ESCAPES.get(src[i], src[i]))
            elif c == "\n" and quote != "`":
                break
            else:
                out.append(c)
            i += 1
        else:
            names.add("".join(out))
    return names


def preceding_lines(lines: list[str], index: int) -> list[str]:
    """The attribute/annotation/comment block right above line `index`."""
    block = []
    j = index - 1
    while j >= 0:
        s = lines[j].strip()
        if s == "" or s.startswith(("#[", "@", "//", "/*", "*", "*/")) or s.endswith(")]"):
            block.append(s)
            j -= 1
        else:
            break
    return block


def has_test(path: Path, name: str, cache: dict[Path, str]) -> tuple[bool, str]:
    if path not in cache:
        cache[path] = path.read_text(encoding="utf-8")
    src = cache[path]
    ext = path.suffix
    if ext == ".js":
        return name in js_test_names(src), "no test('…') call with that name"
    if ext == ".py":
        if not name.startswith("test_"):
            return False, "a pytest test's name starts with test_"
        ok = re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", src, re.M) is not None
        return ok, f"no 'def {name}('"
    if ext == ".swift":
        if not name.startswith("test"):
            return False, "an XCTest case's name starts with test"
        ok = re.search(rf"\bfunc\s+{re.escape(name)}\s*\(", src) is not None
        return ok, f"no 'func {name}('"
    lines = src.splitlines()
    if ext == ".kt":
        pattern = re.compile(rf"\bfun\s+`{re.escape(name)}`\s*\(")
        for i, line in enumerate(lines):
            if pattern.search(line):
                if any(s.startswith("@Test") for s in preceding_lines(lines, i)):
                    return True, ""
                return False, "the function is not annotated @Test"
        return False, f"no 'fun `{name}`('"
    if ext == ".rs":
        pattern = re.compile(rf"\bfn\s+{re.escape(name)}\s*\(")
        for i, line in enumerate(lines):
            if pattern.search(line):
                attrs = preceding_lines(lines, i)
                if any(re.match(r"#\[(tokio::)?test\b", s) for s in attrs):
                    return True, ""
                return False, "the fn has no #[test] / #[tokio::test] attribute"
        return False, f"no 'fn {name}('"
    return False, f"unknown test file type {ext}"


def split_row(line: str) -> list[str]:
    cells = line.strip()
    if cells.startswith("|"):
        cells = cells[1:]
    if cells.endswith("|"):
        cells = cells[:-1]
    return [c.strip() for c in cells.split("|")]


def main() -> int:
    if not TABLE.exists():
        print(f"parity-check: {TABLE.relative_to(ROOT)} does not exist")
        return 1
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    header_at = next((i for i, l in enumerate(lines) if l.startswith("|") and split_row(l)[1:] == LANGUAGES), None)
    if header_at is None:
        print(f"parity-check: no table with the columns {' | '.join(LANGUAGES)} in docs/PARITY.md")
        return 1
    try:
        label = TABLE.relative_to(ROOT)
    except ValueError:
        label = TABLE
    problems: list[str] = []
    counts = {"covered": 0, "n/a": 0, "missing": 0}
    missing_rows: dict[str, list[str]] = {}
    cache: dict[Path, str] = {}
    rows = 0
    for n, line in enumerate(lines[header_at + 2:], start=header_at + 3):
        if not line.startswith("|"):
            break
        cells = split_row(line)
        where = f"{label}:{n}"
        if len(cells) != len(LANGUAGES) + 1:
            problems.append(f"{where}: {len(cells)} cells, want {len(LANGUAGES) + 1}")
            continue
        rows += 1
        concept = cells[0]
        if not concept:
            problems.append(f"{where}: a row with no API concept")
        for lang, raw in zip(LANGUAGES, cells[1:]):
            cell = raw.strip("`").strip()
            at = f"{where} [{concept} / {lang}]"
            if cell == "missing":
                counts["missing"] += 1
                missing_rows.setdefault(concept, []).append(lang)
            elif cell.startswith("n/a"):
                if not re.match(r"n/a:\s*\S", cell):
                    problems.append(f"{at}: 'n/a' needs a reason ('n/a: why')")
                else:
                    counts["n/a"] += 1
            elif "::" in cell:
                rel, name = cell.split("::", 1)
                prefixes, ext = PLACES[lang]
                path = ROOT / rel
                if not rel.startswith(prefixes) or not rel.endswith(ext):
                    problems.append(f"{at}: {rel} is not a {lang} test file ({'/'.join(prefixes)}…{ext})")
                elif not path.is_file():
                    problems.append(f"{at}: file {rel} does not exist")
                else:
                    ok, why = has_test(path, name, cache)
                    if ok:
                        counts["covered"] += 1
                    else:
                        problems.append(f"{at}: {rel} has no test named {name!r} ({why})")
            else:
                problems.append(f"{at}: {cell!r} is not 'path::test name', 'n/a: reason' or 'missing'")
    if rows == 0:
        problems.append(f"{label}: the table has no rows")
    for concept, langs in missing_rows.items():
        print(f"parity: missing  {concept}: {', '.join(langs)}")
    for p in problems:
        print(f"parity: BROKEN   {p}")
    print(
        f"parity: {rows} APIs x {len(LANGUAGES)} languages: {counts['covered']} covered, "
        f"{counts['n/a']} n/a, {counts['missing']} missing, {len(problems)} broken"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
