"""Fast typing never loses or misplaces a key: what is on screen is exactly what was typed.

A terminal delivers a burst of keys (a fast typist, ``tmux send-keys``, a paste-like macro) to
the app in one go. ``burst`` does the same: every key is handed to the app's driver at once,
with no pause between them — unlike ``Pilot.press``, which waits for the app to go idle after
each key and so can never show a race. The property test types random edits into every field of
every form screen (text, Backspace runs, End, Home, ctrl+u, Tab to the next field), then reads
back each field's text and the answers model. ``InputModel`` is the oracle: how a Textual
``Input`` edits its text, key by key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Collapsible, Input, TabbedContent, TextArea

from steps.answers import Answers
from steps.errors import AnswersError
from tests.wizard.conftest import HUNG_AFTER, current, wait_for
from tests.wizard.fakes import FakeServices
from wizard.app import make_app
from wizard.state import WizardState, get_key
from wizard.widgets.answer_field import AnswerField, from_text

#: Screens with answer fields (``screen#tab`` for a tab other than the first), and the size
#: they are typed at.
FORM_SCREENS = ("release", "extensions", "app", "build", "network", "network#tab-router")
SIZE = (80, 24)


def key_event(key: str) -> events.Key:
    """The Key event a terminal produces for ``key`` (a character or a key name)."""
    if len(key) == 1:
        return events.Key(key if key.isalnum() else _character_to_key(key), key)
    return events.Key(key, None)


async def burst(pilot: Pilot[Any], keys: list[str]) -> None:
    """Deliver every key to the app at once, as a terminal does with a fast burst.

    Returns once the app has read them all and the widget focused last has handled what was
    sent to it (a callback queued behind the keys, through the same driver, then behind them in
    the focused widget's queue).
    """
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in keys:
        event = key_event(key)
        event.set_sender(app)
        driver.send_message(event)
    handled = asyncio.Event()

    def all_read() -> None:
        (app.focused or app.screen).call_later(handled.set)

    driver.send_message(events.Callback(callback=all_read))
    await handled.wait()


async def settle_on(pilot: Pilot[Any], probe: Callable[[], object], want: object) -> object:
    """Wait until ``probe()`` equals ``want`` (a hung app stops the wait after HUNG_AFTER);
    returns the last value seen, so the caller's assert shows the difference.

    No "it stopped changing" shortcut: on a loaded machine the app can go a second or more
    without applying the next key, and that is not a wrong value."""
    deadline = time.monotonic() + HUNG_AFTER
    seen = probe()
    while seen != want and time.monotonic() < deadline:
        await pilot.pause(0.05)
        seen = probe()
    return seen


@dataclass
class InputModel:
    """How a single-line editor changes its text, one key at a time (the test's oracle)."""

    text: str
    cursor: int
    selected: bool = False
    """Everything is selected (an Input selects its text when Tab focuses it)."""

    def key(self, key: str) -> None:
        if len(key) == 1:
            if self.selected:
                self.text, self.cursor, self.selected = key, 1, False
            else:
                self.text = self.text[: self.cursor] + key + self.text[self.cursor :]
                self.cursor += 1
        elif key in ("backspace", "ctrl+u") and self.selected:
            self.text, self.cursor, self.selected = "", 0, False
        elif key == "backspace":
            if self.cursor:
                self.text = self.text[: self.cursor - 1] + self.text[self.cursor :]
                self.cursor -= 1
        elif key == "ctrl+u":
            self.text, self.cursor = self.text[self.cursor :], 0
        elif key == "end":
            self.cursor, self.selected = len(self.text), False
        elif key == "home":
            self.cursor, self.selected = 0, False


#: Characters typed: what paths, names, versions and lists are made of (and some that are not).
ALPHABET = "abcxyz0189/._-, "
edits = st.lists(
    st.one_of(
        st.text(ALPHABET, min_size=1, max_size=10),
        st.integers(1, 30).map(lambda n: ["backspace"] * n),
        st.sampled_from([["end"], ["home"], ["ctrl+u"]]),
    ),
    min_size=1,
    max_size=6,
)


def keys_of(edit: str | list[str]) -> list[str]:
    return list(edit) if isinstance(edit, str) else edit


def fields_in_focus_order(screen: Any) -> list[AnswerField]:
    """The screen's single-line answer fields in the order Tab visits them (those on the tabs
    not shown are not visited)."""
    chain = screen.focus_chain
    found = [
        f
        for f in screen.query(AnswerField)
        if isinstance(f.query_one("#editor"), Input) and f.query_one("#editor") in chain
    ]
    return sorted(found, key=lambda f: chain.index(f.query_one("#editor")))


async def open_form(pilot: Pilot[Any], name: str) -> list[AnswerField]:
    app: Any = pilot.app
    name, _, tab = name.partition("#")
    await wait_for(pilot, lambda: app.current == name and current(app).is_mounted)
    if tab:
        current(app).query_one(TabbedContent).active = tab
    for collapsible in current(app).query(Collapsible):
        collapsible.collapsed = False
    await pilot.pause()
    return fields_in_focus_order(current(app))


def expected_answers(
    start: Answers, typed: dict[str, str], fields: list[AnswerField]
) -> tuple[Answers, set[str]]:
    """The answers after each field's final text was applied in turn, and the refused keys."""
    state = WizardState(answers=start)
    refused = set()
    for f in fields:
        if state.try_set(f.key, from_text(typed[f.key], f.kind)) is not None:
            refused.add(f.key)
    return state.answers, refused


async def type_into_every_field(
    answers: Answers, name: str, plan: list[list[str | list[str]]]
) -> None:
    app = make_app(answers, services=FakeServices(), start=name.partition("#")[0])
    async with app.run_test(size=SIZE) as pilot:
        fields = await open_form(pilot, name)
        start = app.state.answers
        screen = current(app)
        chain = screen.focus_chain
        fields[0].query_one("#editor").focus()
        await pilot.pause()
        keys: list[str] = []
        typed: dict[str, str] = {}
        for index, f in enumerate(fields):
            editor = f.query_one("#editor", Input)
            model = InputModel(editor.value, len(editor.value), selected=True)
            for edit in plan[index % len(plan)]:
                for key in keys_of(edit):
                    model.key(key)
                keys.extend(keys_of(edit))
            typed[f.key] = model.text
            if index + 1 < len(fields):
                gap = chain.index(fields[index + 1].query_one("#editor")) - chain.index(editor)
                keys.extend(["tab"] * gap)
        await burst(pilot, keys)

        def texts() -> dict[str, str]:
            return {f.key: f.text for f in fields}

        assert await settle_on(pilot, texts, typed) == typed
        # …and once the values settle, the answers model holds every valid one
        want, refused = expected_answers(start, typed, fields)
        wanted = {f.key: get_key(want, f.key) for f in fields}

        def answered() -> tuple[dict[str, Any], set[str]]:
            values = {f.key: get_key(app.state.answers, f.key) for f in fields}
            return values, {f.key for f in fields if f.error}

        # the model holds every valid value; each refused one is marked under its field
        assert await settle_on(pilot, answered, (wanted, refused)) == (wanted, refused)


@pytest.mark.parametrize("name", FORM_SCREENS)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(edits, min_size=1, max_size=4))
def test_a_burst_of_keys_into_every_field_reads_back_exactly(
    wiz_answers: Answers, name: str, plan: list[list[str | list[str]]]
) -> None:
    asyncio.run(type_into_every_field(wiz_answers.model_copy(deep=True), name, plan))


async def test_the_issue_burst_end_backspaces_path_tab_lands_in_the_right_fields(
    wiz_answers: Answers, tmp_path: Any
) -> None:
    """The burst from the issue: End, 30 × Backspace, a path, Tab — three fields in a row."""
    app = make_app(wiz_answers, services=FakeServices(), start="network")
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "network")
        screen = current(app)
        roots = ["#field-network-tftp-root", "#field-network-dnsmasq-conf"]
        last = "#field-network-state-dir"
        paths = {k: f"{tmp_path}/typed/{k[15:]}" for k in [*roots, last]}
        screen.query_one(f"{roots[0]} #editor").focus()
        await pilot.pause()
        keys: list[str] = []
        for key in [*roots, last]:
            erase = len(screen.query_one(key, AnswerField).text) + 5
            keys += ["end"] + ["backspace"] * erase + list(paths[key])
            if key != last:
                keys.append("tab")
        await burst(pilot, keys)

        def texts() -> dict[str, str]:
            return {k: screen.query_one(k, AnswerField).text for k in paths}

        assert await settle_on(pilot, texts, paths) == paths
        await wait_for(pilot, lambda: app.state.answers.network.state_dir == paths[last])
        net = app.state.answers.network
        assert (net.tftp_root, net.dnsmasq_conf) == (paths[roots[0]], paths[roots[1]])


async def test_ctrl_u_then_typing_replaces_the_whole_text(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="app")
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "app")
        field = current(app).query_one("#field-app-hostname", AnswerField)
        field.query_one("#editor").focus()
        await pilot.press("end")
        await burst(pilot, ["ctrl+u", *"kiosk-7"])
        assert await settle_on(pilot, lambda: field.text, "kiosk-7") == "kiosk-7"
        await wait_for(pilot, lambda: app.state.answers.app.hostname == "kiosk-7")


async def test_next_right_after_typing_acts_on_the_typed_value(wiz_answers: Answers) -> None:
    """ctrl+n is read before the characters typed just ahead of it are applied: it must wait."""
    app = make_app(wiz_answers, services=FakeServices(), start="app")
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "app")
        await wait_for(pilot, lambda: "✓ wheels" in str(current(app).query_one("#checks").render()))
        field = current(app).query_one("#field-app-hostname", AnswerField)
        field.query_one("#editor").focus()
        await pilot.press("end")
        await burst(pilot, ["ctrl+u", *"kiosk", "ctrl+n"])
        await wait_for(pilot, lambda: app.screen.id == "screen-build")
        await pilot.pause()
        assert app.state.answers.app.hostname == "kiosk"


def test_a_per_keystroke_check_names_the_key_and_applies_nothing(wiz_answers: Answers) -> None:
    from wizard.state import check_value

    problem = check_value("network.tftp_root", "")
    assert isinstance(problem, AnswersError)
    assert problem.message == "network.tftp_root: must not be empty"
    assert check_value("release.boards", []) is not None
    assert check_value("app.port", 8080) is None


async def test_text_area_fields_keep_their_lines(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="network")
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, "network")
        field = current(app).query_one("#field-network-dnsmasq-extra", AnswerField)
        editor = field.query_one("#editor", TextArea)
        editor.focus()
        await pilot.pause()
        keys = [*"tftp-mtu=1400", "enter", *"quiet-dhcpx", "backspace", "home", "end"]
        await burst(pilot, [*keys, *"-no"])
        await burst(pilot, ["backspace", "backspace", "backspace", "home", "end"])
        want = "tftp-mtu=1400\nquiet-dhcp"
        assert await settle_on(pilot, lambda: field.text, want) == want
        await wait_for(pilot, lambda: not field.dirty)
        assert app.state.answers.network.dnsmasq_extra == ["tftp-mtu=1400", "quiet-dhcp"]
