"""The seed's quickstart, its three Python files unchanged, on the Python front."""

import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SEED_FILES

# shared/ lies beside the repository (CI) or beside its worktree's folder.
SEED_DOCUMENT = next(
    (
        folder / "shared" / "seed" / "quick-start.md"
        for folder in (ROOT.parent, ROOT.parent.parent)
        if (folder / "shared" / "seed" / "quick-start.md").exists()
    ),
    ROOT.parent / "shared" / "seed" / "quick-start.md",
)
NAMES = ("bus.py", "call_procedure.py", "fire_event.py")


def test_the_example_files_are_the_seeds_own():
    if not SEED_DOCUMENT.exists():
        pytest.skip(f"{SEED_DOCUMENT} is not beside the repository")
    blocks = re.findall(r"```python3\n(.*?)```", SEED_DOCUMENT.read_text(), re.S)
    latest = {block.splitlines()[0].lstrip("# ").strip(): block for block in blocks}
    for name in NAMES:
        assert (SEED_FILES / name).read_text() == latest[name], name


def lightbus_command():
    """The installed `lightbus` console script beside this interpreter, else `-m lightbus`."""
    script = Path(sys.executable).parent / "lightbus"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lightbus"]


def test_seed_quickstart_runs_unchanged(bus, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for name in NAMES:
        shutil.copy(SEED_FILES / name, app / name)
    worker = bus.start("worker", [*lightbus_command(), "run"], cwd=app)
    worker.wait_for("listener `send_welcome_email` consuming")
    assert "API `auth`" in worker.output

    called = bus.run([sys.executable, "call_procedure.py"], cwd=app)
    assert called.stdout == "Password valid!\n", called.stderr
    fired = bus.run([sys.executable, "fire_event.py"], cwd=app)
    assert fired.returncode == 0 and fired.stdout == "", fired.stderr
    worker.wait_for("To: admin@example.com")
    assert "Subject: Welcome to our site, admin\nTo: admin@example.com\n" in worker.stdout
    assert worker.stop() == 0, worker.output
    assert sorted(p.name for p in app.iterdir() if p.suffix == ".py") == sorted(NAMES)
