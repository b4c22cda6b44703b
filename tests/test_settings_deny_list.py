"""The node's deny-list setting: from the YAML (relative to it), the environment or the flag."""

from __future__ import annotations

from pathlib import Path

from deid.settings import load_settings

BASE = ("allow: [PACS]\ndata: data\nkey_file: secret.key\n"
        "destinations:\n  - {ae_title: RESEARCH, host: research.example, port: 11112}\n")


def test_the_deny_list_is_a_path_beside_the_config(tmp_path: Path) -> None:
    config = tmp_path / "deid.yaml"
    config.write_text(BASE + "deny_list: lists/staff.txt\n")
    assert load_settings(config, environ={}).deny_list == tmp_path / "lists" / "staff.txt"
    assert load_settings(tmp_path / "deid.yaml", environ={"DEID_SERVE_DENY_LIST": "/etc/deid/other.txt"}
                         ).deny_list == Path("/etc/deid/other.txt")


def test_without_a_deny_list_there_is_none(tmp_path: Path) -> None:
    config = tmp_path / "deid.yaml"
    config.write_text(BASE)
    assert load_settings(config, environ={}).deny_list is None
