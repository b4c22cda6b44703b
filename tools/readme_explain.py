"""Rewrite the `deid explain` blocks of README.md from the tool's own output (tests check they match)."""

import re
import subprocess
import sys
from pathlib import Path

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
pattern = re.compile(r"(<!-- explain:([\w.-]+):(\w+) -->\n```text\n)(.*?)(```\n<!-- /explain -->)", re.S)


def block(match: re.Match) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "deid", "explain", "--profile", match.group(2), "--sop-class", match.group(3),
         "--only-profile"], check=True, capture_output=True, text=True).stdout
    return match.group(1) + out + match.group(5)


readme.write_text(pattern.sub(block, text))
