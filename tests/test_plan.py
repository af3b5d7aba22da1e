"""The plan's entries agree with the step classes they name, and building the plan imports none."""

from __future__ import annotations

import importlib
import subprocess
import sys

from steps.answers import default_answers
from steps.plan import PLAN, DeferredStep, build_plan
from tests.conftest import ROOT


def test_entries_name_their_class_with_its_name_title_and_early_work() -> None:
    for entry in PLAN:
        module, _, cls = entry.target.partition(":")
        step = getattr(importlib.import_module(module), cls)()
        assert (step.name, step.title) == (entry.name, entry.title)
        assert hasattr(step, "start_early") == entry.early, entry


def test_building_the_plan_imports_no_step_module() -> None:
    code = (
        "import sys\n"
        "from steps.answers import default_answers\n"
        "from steps.plan import build_plan\n"
        "steps = build_plan(default_answers())\n"
        "print(' '.join(m for m in sys.modules if m.startswith('steps.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    step_modules = {e.target.partition(":")[0] for e in PLAN}
    assert not step_modules & set(loaded), loaded
    assert not {"httpx", "sh", "psutil"} & set(loaded)


def test_a_deferred_step_runs_the_real_one() -> None:
    steps = build_plan(default_answers(), only=["deploy", "release"])
    assert [s.name for s in steps] == ["release", "deploy"]
    deferred = steps[1]
    assert isinstance(deferred, DeferredStep)
    assert type(deferred.load()).__name__ == "DeployStep"


def test_the_step_modules_leave_what_a_no_change_rerun_never_uses_unimported() -> None:
    code = (
        "import sys\n"
        "from steps.plan import PLAN\n"
        "import importlib\n"
        "for e in PLAN:\n"
        "    importlib.import_module(e.target.partition(':')[0])\n"
        "from steps.remaster import tool_version\n"
        "tool_version()\n"
        "print(' '.join(sys.modules))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
    )
    # each is imported where a fresh download, a tree swap, a firewall check or a program needs it
    unused = {"ctypes", "importlib.metadata", "email.parser", "zipfile", "csv"}
    unused |= {"steps.fetch.catalog", "steps.host.firewall", "shlex"}
    # a rerun runs no program and opens no socket; ports and links are read from /proc and sysfs
    unused |= {"subprocess", "socket", "psutil"}
    assert not unused & loaded, sorted(unused & loaded)
