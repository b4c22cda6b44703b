"""A new user follows the README's "Set up" in a plain shell: `deid` is on PATH, DCMTK's storescu,
storescp and echoscu are still the ones that run, and every command the demo suggests runs as printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from peers import require_tool
from support import REPO

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DCMTK_TOOLS = ("storescu", "storescp", "echoscu")
README = (REPO / "README.md").read_text(encoding="utf-8")


def set_up_commands() -> list[str]:
    """The commands of the README's "Set up" block, comments left out."""
    section = README.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\n\n((?:    \S.*\n)+)", section).group(1)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines()]


def shell(script: str, home: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``script`` in bash as a user's login shell runs it: the system PATH, no venv active."""
    env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", "TCP_NODELAY": "1",
           "DEID_VENV": sys.prefix}  # the launcher runs the deid of the venv these tests run in
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_readme_sets_up_puts_deid_on_path_and_runs_the_demo() -> None:
    commands = set_up_commands()
    assert commands[0] == "./tools/setup.sh" and commands[-1].startswith("deid demo ")
    assert [c for c in commands if c.startswith("export PATH=")] == ['export PATH="$PWD/bin:$PATH"']
    assert not any("activate" in c for c in commands)
    assert sorted(p.name for p in (REPO / "bin").iterdir()) == ["deid"]  # nothing else to shadow


def test_dcmtk_tools_are_not_shadowed_by_the_venv(tmp_path: Path) -> None:
    dcmtk = {tool: require_tool(f"/usr/bin/{tool}") for tool in DCMTK_TOOLS}
    venv_bin = Path(sys.prefix) / "bin"
    shadowing = [tool for tool in DCMTK_TOOLS if (venv_bin / tool).exists()]
    assert shadowing, "pynetdicom no longer installs its apps: this test no longer guards anything"
    steps = [c for c in set_up_commands() if not c.startswith("deid ")]
    if not _venv_is_set_up():  # set-up would install into the venv these tests run in: skip that step
        steps = [c for c in steps if c != "./tools/setup.sh"]
    script = " && ".join([*steps, *(f"command -v {tool}" for tool in ("deid", *DCMTK_TOOLS))])
    result = shell(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    found = result.stdout.splitlines()[-4:]
    assert found == [str(REPO / "bin" / "deid"), *(dcmtk[tool] for tool in DCMTK_TOOLS)]
    # what the README warns about: with the venv's bin first, pynetdicom's storescu would run
    activated = shell(f"source {shlex.quote(str(venv_bin / 'activate'))} && command -v storescu", tmp_path)
    assert activated.stdout.strip() == str(venv_bin / "storescu")


def _venv_is_set_up() -> bool:
    stamp = Path(sys.prefix) / ".deid-installed"
    return stamp.is_file() and stamp.stat().st_mtime >= (REPO / "pyproject.toml").stat().st_mtime


def test_every_command_the_demo_suggests_runs_as_printed(tmp_path: Path) -> None:
    folder = tmp_path / "my demo"  # a space in the path, as a user's folder may have
    export = next(c for c in set_up_commands() if c.startswith("export PATH="))
    demo = shell(f"{export} && deid demo {shlex.quote(str(folder))}", tmp_path / "home")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    suggestions = _suggestions(demo.stdout)
    assert [s.split()[1] for s in suggestions] == ["keygen", "explain", "verify", "reidentify"]
    for command in suggestions:
        # the PATH line is run in the checkout (as set-up does), the suggestion anywhere else
        result = shell(f"{export} && cd {shlex.quote(str(tmp_path))} && {command}", tmp_path / "home")
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    assert (tmp_path / "home" / ".deid" / "key").is_file()  # the keygen suggestion made the user's key


def _suggestions(printed: str) -> list[str]:
    """The deid commands the demo tells the user to run."""
    keygen = re.findall(r"make your own with: (deid keygen \S+)\)", printed)
    tried = printed.split("\nTry: ", 1)[1].splitlines()
    return keygen + [line.strip() for line in tried if line.strip().startswith("deid ")]


def test_the_table_of_contents_leads_to_every_section() -> None:
    top = README.split("\n## ", 1)[0]
    links = re.findall(r"\]\(#([^)]+)\)", top.split("**Contents:**", 1)[1])
    anchors = {_anchor(h) for h in re.findall(r"^## (.+)$", README, flags=re.MULTILINE)}
    assert links and set(links) <= anchors, set(links) - anchors
    assert len(links) == len(anchors), anchors - set(links)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

