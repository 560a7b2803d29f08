#!/usr/bin/env python3
"""List the longest functions of Rust and JavaScript files (issue 13: none over 80 lines in src/ or
www/, except data tables).

    python3 tools/fn_lengths.py [--over N] [--most N] [PATH ...]   (default: src www)

A function runs from its signature's line to the line of its closing brace, found by counting
braces outside strings, characters and comments. Rust `fn`s; JavaScript `function`s, methods and
arrow functions with a block body. A text tool, not a parser: good enough for this code base.
"""
import argparse
import re
import sys
from pathlib import Path

RUST_FN = re.compile(r"^\s*(?:pub(?:\([\w:]+\))?\s+)?(?:const\s+|async\s+|unsafe\s+)*fn\s+(\w+)")
JS_FN = [
    re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(\w+)\s*\("),
    re.compile(r"^\s*(?:export\s+)?(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s+)?(?:\([^)]*\)|\w+)\s*=>\s*\{\s*$"),
    re.compile(r"^\s*(?:async\s+|static\s+|get\s+|set\s+)*(?!if\b|for\b|while\b|switch\b|catch\b|function\b|return\b)(\w+)\s*\([^)]*\)\s*\{\s*$"),
]
STRINGS = re.compile(r'"(?:\\.|[^"\\])*"' r"|'(?:\\.|[^'\\])'" r"|'(?:\\.|[^'\\])*'")


def code_of(line: str, rust: bool) -> str:
    """The line without string and character literals and line comments."""
    if rust:
        # Lifetimes ('a) are not characters: drop them before matching literals.
        line = re.sub(r"'[a-z_]\w*\b(?!')", "", line)
    line = STRINGS.sub('""', line)
    return line.split("//", 1)[0]


def functions(path: Path):
    rust = path.suffix == ".rs"
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("//", "*", "/*")):
            continue
        m = RUST_FN.match(line) if rust else next((p.match(line) for p in JS_FN if p.match(line)), None)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            code = code_of(lines[j], rust)
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body (trait method)
            for ch in code:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
            if opened and depth <= 0:
                yield m.group(1), i + 1, j - i + 1
                break


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["src", "www"])
    ap.add_argument("--over", type=int, default=0, help="only functions longer than this")
    ap.add_argument("--most", type=int, default=15, help="how many rows (0: all)")
    a = ap.parse_args()
    rows = []
    for root in map(Path, a.paths):
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.suffix in (".rs", ".js", ".mjs") and "pkg" not in f.parts:
                rows += [(n, f"{f}:{line}", name) for name, line, n in functions(f) if n > a.over]
    rows.sort(reverse=True)
    for n, where, name in rows[: a.most or None]:
        print(f"{n:5}  {where}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
