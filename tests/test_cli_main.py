"""The ``asid-fast`` entry point: subcommand registration, exit codes, ``python -m asid_fast``."""
import os
import subprocess
import sys

import pytest

from asid_fast import cli
from asid_fast.tools import upscale as upscale_mod
from asid_fast.tools.errors import UserError


def test_subcommands_are_registered():
    assert cli.COMMANDS == ["upscale", "evaluate", "train", "bench", "export"]
    names = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert {"upscale", "eval", "train", "export"} <= names


def test_missing_command_module_is_skipped_but_broken_one_is_not(monkeypatch, tmp_path):
    import asid_fast.tools as tools

    assert cli._command_module("no_such_tool_module") is None
    (tmp_path / "broken_tool.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.setattr(tools, "__path__", [*tools.__path__, str(tmp_path)])
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        cli._command_module("broken_tool")


def test_user_error_and_interrupt_exit_codes(monkeypatch, tmp_path, capsys):
    def fail(*args, **kwargs):
        raise UserError("something the user can fix")

    monkeypatch.setattr(upscale_mod, "upscale", fail)
    assert cli.main(["upscale", "x.png", "-o", str(tmp_path), "--scale", "2"]) == 1
    assert capsys.readouterr().err == "asid-fast upscale: error: something the user can fix\n"

    def fail_quietly(*args, **kwargs):  # as the other ranks of a torchrun job do
        error = UserError("shown by rank 0")
        error.quiet = True
        raise error

    monkeypatch.setattr(upscale_mod, "upscale", fail_quietly)
    assert cli.main(["upscale", "x.png", "-o", str(tmp_path), "--scale", "2"]) == 1
    assert capsys.readouterr().err == ""

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(upscale_mod, "upscale", interrupt)
    assert cli.main(["upscale", "x.png", "-o", str(tmp_path), "--scale", "2"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["nonsense"], ["upscale", "x.png", "--scale", "5", "-o", "y"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "asid_fast", "--help"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for name in ("upscale", "eval", "train"):
        assert name in out.stdout
