"""The command line itself: every argument of every command says what it is for, -q/-v set the
log level of the command and of the worker processes it starts."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os

import pytest
import structlog

from deid import logs
from deid.cli import _parser, main


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.ENV_LEVEL, raising=False)  # restored after, whatever main() sets
    yield
    structlog.reset_defaults()


def _parsers(parser: argparse.ArgumentParser, name: str = "deid"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {command}")


def test_every_argument_of_every_command_has_help() -> None:
    missing = [
        f"{name}: {'/'.join(action.option_strings) or action.metavar or action.dest}"
        for name, parser in _parsers(_parser())
        for action in parser._actions
        if not action.help or action.help == argparse.SUPPRESS or not action.help.strip()
    ]
    assert missing == []
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in commands._choices_actions if c.help} == set(commands.choices)


def test_every_command_takes_quiet_and_verbose() -> None:
    for name, parser in _parsers(_parser()):
        options = {o for action in parser._actions for o in action.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, name


@pytest.mark.parametrize("argv, level", [
    (["-q", "explain"], "warning"), (["explain", "--quiet"], "warning"),
    (["-v", "explain"], "debug"), (["explain", "-v"], "debug"), (["explain"], None),
])
def test_the_flags_set_the_level_before_or_after_the_command(argv, level, capsys) -> None:
    assert main(argv) == 0
    assert os.environ.get(logs.ENV_LEVEL) == level
    assert "PatientName" in capsys.readouterr().out


def test_quiet_and_verbose_together_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explain", "-q", "-v"])
    assert exited.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_an_unknown_level_in_the_environment_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv(logs.ENV_LEVEL, "chatty")
    assert main(["explain"]) == 2
    assert "DEID_LOG_LEVEL is one of debug, info, warning, error" in capsys.readouterr().err


@pytest.mark.parametrize("name, shown, hidden", [
    ("warning", ["a warning"], ["an info", "a debug"]),
    ("info", ["a warning", "an info"], ["a debug"]),
    ("debug", ["a warning", "an info", "a debug"], []),
])
def test_configure_logs_at_the_level_set(name, shown, hidden, capsys) -> None:
    logs.set_level(name)
    logs.configure(json=True)
    log = logs.get_logger()
    log.warning("a warning")
    log.info("an info")
    log.debug("a debug")
    err = capsys.readouterr().err
    assert all(line in err for line in shown) and not any(line in err for line in hidden)


def _child_level(queue) -> None:
    queue.put(logs.level_from_environment())


def test_a_worker_process_inherits_the_level() -> None:
    logs.set_level("warning")
    context = multiprocessing.get_context("spawn")  # as run and serve start their workers
    queue = context.Queue()
    child = context.Process(target=_child_level, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == logging.WARNING
    child.join(60)


@pytest.mark.parametrize("given, kept", [(None, "1"), ("4", "4")])
def test_numpys_blas_starts_one_thread_unless_told_otherwise(
        monkeypatch: pytest.MonkeyPatch, tmp_path, given: str | None, kept: str) -> None:
    """OpenBLAS starts a thread per core when numpy is imported (~50 ms of CPU per command):
    deid asks for one (it does no linear algebra), unless the person set their own."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", given or "")  # restored after the test
    if given is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert main(["keygen", str(tmp_path / "key")]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == kept
