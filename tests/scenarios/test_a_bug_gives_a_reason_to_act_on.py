"""A bug in deid quarantines the object with a reason a maintainer can act on: the exception's type,
the deid line and the innermost line it was raised at, the stage that failed and the element path,
never a value.  With ``--debug`` (or the node's ``debug: true``) the traceback also goes to
RECORDS/debug/<entry>.txt (mode 0600), never to the terminal or the log."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support import SIZE

from deid import cli
from deid.engine.walker import Walker
from deid.io import encoder
from deid.synthetic import make_patient, write_sample_study

SECRET = "PATIENT^SECRET 1234"  # what a foreign exception's message may carry: it stays in the records


def _boom(*_args, **_kwargs):
    raise TypeError(f"cannot write {SECRET}")


def _bug(
    *_args, **_kwargs
):  # not an error the walker expects of a value (those are rule-not-applicable)
    raise RuntimeError(f"cannot apply to {SECRET}")


def _run(tmp_path: Path, key_file: Path, capsys, *extra: str) -> tuple[Path, list[dict], str]:
    """A small study through `deid run`: the quarantine reasons, what reached the terminal and log."""
    incoming = tmp_path / "incoming"
    write_sample_study(incoming, make_patient(5), slices=1, size=SIZE)
    with capture_logs() as logs:
        code = cli.main(
            [
                "run",
                str(incoming),
                "--out",
                str(tmp_path / "out"),
                "--key-file",
                str(key_file),
                "--no-progress",
                *extra,
            ]
        )
    captured = capsys.readouterr()
    assert code == 3, captured
    quarantine = tmp_path / "out-quarantine"
    reasons = [
        json.loads((entry / "reason.json").read_text()) | {"entry": entry.name}
        for entry in sorted(quarantine.iterdir())
    ]
    return tmp_path / "out-records", reasons, captured.out + captured.err + json.dumps(logs)


def test_an_encoder_bug_names_type_stage_and_lines_but_no_value(
    tmp_path, key_file, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(encoder, "_element", _boom)
    records, reasons, terminal = _run(tmp_path, key_file, capsys)
    assert reasons and all(r["code"] == "internal-error" for r in reasons)
    reason = reasons[0]
    assert reason["stage"] == "encode"
    assert reason["exception"] == "TypeError"
    assert re.fullmatch(r"deid/io/encoder\.py:\d+", reason["raised_in"]), reason
    assert re.fullmatch(
        r"test_a_bug_gives_a_reason_to_act_on\.py:\d+ _boom", reason["innermost"].split("/")[-1]
    )
    assert (
        "debug" not in reason and not (records / "debug").exists()
    )  # no --debug, no traceback anywhere
    text = json.dumps(reasons)
    assert SECRET not in text and "PATIENT" not in text and str(tmp_path) not in text
    assert SECRET not in terminal and "Traceback" not in terminal


def test_a_rules_bug_names_the_element_path(tmp_path, key_file, capsys, monkeypatch) -> None:
    monkeypatch.setattr(Walker, "_new_values", _bug)
    _records, reasons, _terminal = _run(tmp_path, key_file, capsys)
    reason = reasons[0]
    assert reason["code"] == "internal-error" and reason["stage"] == "rules"
    assert re.fullmatch(
        r"(\([0-9A-F]{4},[0-9A-F]{4}\)\[\d+\]\.)*\([0-9A-F]{4},[0-9A-F]{4}\)", reason["path"]
    ), reason
    assert reason["exception"] == "RuntimeError"
    assert re.fullmatch(r"deid/engine/walker\.py:\d+", reason["raised_in"]), reason
    assert SECRET not in json.dumps(reason)


def test_debug_writes_the_traceback_to_the_records_only(
    tmp_path, key_file, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(encoder, "_element", _boom)
    records, reasons, terminal = _run(tmp_path, key_file, capsys, "--debug")
    reason = reasons[0]
    assert reason["debug"] == f"debug/{reason['entry']}.txt"
    trace = records / reason["debug"]
    assert stat.S_IMODE(trace.stat().st_mode) == 0o600
    assert stat.S_IMODE(trace.parent.stat().st_mode) == 0o700
    text = trace.read_text()
    assert "Traceback" in text and SECRET in text and "deid/io/encoder.py" in text
    assert (
        SECRET not in terminal and "Traceback" not in terminal
    )  # not to the terminal, not to the log


@pytest.mark.parametrize("source", ["yaml", "env", "flag"])
def test_the_node_turns_debugging_on_from_its_settings(tmp_path, key_file, source) -> None:
    from deid.settings import load_settings

    config = tmp_path / "deid.yaml"
    config.write_text(
        f"data: {tmp_path / 'data'}\nkey_file: {key_file}\nallow: [MODALITY]\n"
        f"destinations: [PACS@127.0.0.1:104]\n" + ("debug: true\n" if source == "yaml" else "")
    )
    environ = {"DEID_SERVE_DEBUG": "true"} if source == "env" else {}
    flags = {"debug": True} if source == "flag" else {}
    assert load_settings(config, flags=flags, environ=environ).debug is True
    assert load_settings(config, environ={}).debug is (source == "yaml")
