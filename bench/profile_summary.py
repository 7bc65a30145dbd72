"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as text: where the server's time goes.

    python bench/profile_summary.py /tmp/prof/leadrelay.txt [--top 30] [--focus inbox.py]

Prints the functions with the most samples on their own (self) and anywhere on the stack (inclusive),
as percentages of all samples. ``bench/callback.py --profile DIR`` writes such files for every target.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``, so lines of one function add up."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = file.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short})"


def summarise(stacks: list[tuple[list[str], int]], top: int, focus: str | None) -> str:
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        names = [frame_name(f) for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not names:
            continue
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    out = [f"{total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        out.append(f"\n-- top {top} by {title} time --")
        shown = 0
        for name, n in counter.most_common():
            if focus and focus not in name:
                continue
            out.append(f"{n / total * 100:6.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--focus", help="only functions whose 'name (dir/file.py)' contains this")
    args = p.parse_args(argv)
    print(summarise(load(args.profile), args.top, args.focus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
