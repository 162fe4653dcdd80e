"""Reading the dev films' references, for the benchmarks (the measures are subpipe.scoring's)."""

from __future__ import annotations

import csv
from pathlib import Path

import srt


def srt_text(path: Path) -> str:
    return "".join(s.content for s in srt.parse(path.read_text(encoding="utf-8")))


def reference_rows(tsv: Path) -> list[dict[str, str]]:
    with open(tsv, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))
