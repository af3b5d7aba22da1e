"""The wizard's screens in order, and the rules that decide done / current / blocked.

One table drives the stepper sidebar, the navigation loop, the command palette's "Go to …"
entries and the help text, so adding a screen is one line. Screen classes are named as
"module:Class" strings and imported only when the screen is first shown (startup stays fast).

``Diagnostics`` (the live packet monitor) comes in a later issue: its row is already in the table
with ``screen=None``, so the stepper shows where it will go without a placeholder screen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from wizard.state import WizardState

Status = Literal["done", "current", "todo", "blocked", "later"]


@dataclass(frozen=True)
class ScreenSpec:
    """One entry of the wizard's flow."""

    name: str
    title: str
    screen: str | None
    """"module:Class" of the screen; None for a place kept for a later issue."""
    sections: tuple[str, ...] = ()
    """Answers sections this screen fills (a loaded file that sets them fills it in)."""
    requires: tuple[str, ...] = ()
    """Screens that must be done (or, if not ``strict``, passed with Next) before this one."""
    fact: bool = False
    """Done is a fact about the world (``steps.done``): a loaded file or Next never makes it so."""
    strict: bool = False
    """Screens that require this one need it done; having passed it with Next is not enough."""

    def load(self) -> type[Any]:
        """Import the screen class."""
        assert self.screen is not None
        module, _, cls = self.screen.partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


FLOW: tuple[ScreenSpec, ...] = (
    ScreenSpec("welcome", "Welcome", "wizard.screens.welcome:WelcomeScreen"),
    ScreenSpec("release", "Release", "wizard.screens.release:ReleaseScreen", ("release",)),
    ScreenSpec(
        "extensions",
        "Extensions",
        "wizard.screens.extensions:ExtensionsScreen",
        ("extensions",),
        ("release",),
    ),
    ScreenSpec("app", "App", "wizard.screens.app:AppScreen", ("app",), ("release", "extensions")),
    ScreenSpec(
        "build",
        "Build",
        "wizard.screens.build:BuildScreen",
        ("build",),
        ("release", "extensions", "app"),
        fact=True,
        strict=True,
    ),
    ScreenSpec(
        "network", "Network", "wizard.screens.network:NetworkScreen", ("network",), fact=True
    ),
    ScreenSpec("prepare", "Prepare", "wizard.screens.prepare:PrepareScreen", ("prepare",)),
    ScreenSpec(
        "deploy",
        "Deploy",
        "wizard.screens.deploy:DeployScreen",
        ("deploy",),
        ("build", "network"),
        fact=True,
    ),
    ScreenSpec("status", "Status", "wizard.screens.status:StatusScreen"),
    ScreenSpec("diagnostics", "Diagnostics", None),
    ScreenSpec("summary", "Summary", "wizard.screens.summary:SummaryScreen"),
)

NAMES: tuple[str, ...] = tuple(s.name for s in FLOW)


def spec(name: str) -> ScreenSpec:
    """The flow entry called ``name``."""
    return next(s for s in FLOW if s.name == name)


def is_done(state: WizardState, name: str) -> bool:
    """Whether a screen's part of the job is complete (its ✓ in the stepper).

    Build, Network and Deploy are done only when the world says so for the current answers
    (a tree built from them, their dnsmasq config installed, that tree live in the TFTP root):
    a resumed file or a change of answers never shows ✓ for work that does not match. Form
    screens are done once filled in: set by a loaded file, or left with Next.
    """
    entry = spec(name)
    if entry.screen is None:
        return False
    if entry.fact:
        facts = state.facts()
        return bool(getattr(facts, name).done)
    if name in state.confirmed:
        return True
    if name == "welcome":
        return state.answers_path is not None
    return bool(entry.sections) and set(entry.sections) <= state.given


def passed(state: WizardState, name: str) -> bool:
    """Done, or (unless ``strict``) left with Next in this session: the screens after may open."""
    return is_done(state, name) or (name in state.confirmed and not spec(name).strict)


def missing(state: WizardState, name: str) -> list[str]:
    """Titles of the screens that must be done before ``name`` opens (empty: it may open)."""
    return [spec(req).title for req in spec(name).requires if not passed(state, req)]


def status(state: WizardState, name: str, current: str | None) -> Status:
    """How the stepper shows ``name``."""
    if spec(name).screen is None:
        return "later"
    if name == current:
        return "current"
    if is_done(state, name):
        return "done"
    return "blocked" if missing(state, name) else "todo"


def first_open(state: WizardState) -> str:
    """Where a pre-filled session starts: the first screen whose part is not done yet."""
    for entry in FLOW:
        if entry.screen is None or entry.name in ("welcome", "summary"):
            continue
        if entry.name == "status":
            break  # status is a look at the Pis, never a part of the job left to do
        if not is_done(state, entry.name):
            return entry.name
    return "status"


def neighbour(name: str, step: int) -> str | None:
    """The next (``step=1``) or previous (``-1``) screen, skipping places kept for later."""
    index = NAMES.index(name) + step
    while 0 <= index < len(FLOW):
        if FLOW[index].screen is not None:
            return FLOW[index].name
        index += step
    return None
