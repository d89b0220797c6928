"""An extension built against another torch (a pip install that replaced torch): the import warns
once with what happened and the one command that rebuilds, and every asid-fast command says on
stderr what runs its ops instead, so the fallback to the reference is never silent."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from asid_fast.ops._registry import _explain_extension_failure

# Makes `import asid_fast._C` fail as a stale build does: the dynamic loader's undefined symbol.
STALE_EXTENSION = textwrap.dedent("""
    import sys
    class StaleExtension:
        def find_spec(self, name, path=None, target=None):
            if name == "asid_fast._C":
                raise ImportError("/x/asid_fast/_C.so: undefined symbol: _ZN3c106detail19maybe_wrap_dim")
    sys.meta_path.insert(0, StaleExtension())
""")


def _run(code):
    return subprocess.run([sys.executable, "-c", STALE_EXTENSION + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_the_message_names_the_cause_and_the_rebuild_command():
    message = _explain_extension_failure(ImportError("_C.so: undefined symbol: _ZN3c10xyz"))
    assert "built against another torch" in message
    assert "pip install --no-build-isolation --force-reinstall --no-deps -e ." in message


def test_import_warns_once_and_commands_name_the_fallback(tmp_path):
    from PIL import Image

    Image.new("RGB", (12, 10), (90, 120, 200)).save(tmp_path / "in.png")
    result = _run(f"""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import asid_fast
        stale = [str(w.message) for w in caught if "another torch" in str(w.message)]
        assert len(stale) == 1, [str(w.message) for w in caught]
        from asid_fast.cli import main
        raise SystemExit(main(["upscale", r"{tmp_path / 'in.png'}", "-o", r"{tmp_path / 'out'}",
                               "--scale", "2"]))
    """)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("running on cpu")]
    assert len(lines) == 1, result.stderr
    assert "plain PyTorch (the reference ops)" in lines[0]
    assert "built against another torch" in lines[0] and "--force-reinstall" in lines[0]
    assert (tmp_path / "out" / "in.png").is_file()
