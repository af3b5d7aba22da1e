"""The Prepare screen, the write dialog and Summary's Write SD image, driven with Pilot."""

from __future__ import annotations

import os
from pathlib import Path

from textual.widgets import Button, Checkbox, Input, Select, Static

from steps.answers import Answers
from steps.artifacts import BuildResult
from steps.events import Result, drive
from steps.picore.sdcard import CardFile, write_card
from tests.conftest import FakeStep
from tests.wizard.conftest import wait_for
from tests.wizard.fakes import INTERNAL, MOUNTED, PI4_CARD, FakeServices
from wizard.app import make_app
from wizard.screens.write_card import WriteCardModal


def text(app: object, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


async def test_models_show_what_to_do_and_the_eeprom_settings(
    wiz_answers: Answers, services: FakeServices
) -> None:
    card = FakeStep("prepare", "Prepare", [Result("prepare", "Pi 4: EEPROM card", PI4_CARD)])
    app = make_app(wiz_answers, services=services, steps=[card], start="prepare")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        model = screen.query_one("#model", Select)
        assert model.value == "pi3b" and "OTP row 17" in text(app, "#why")
        assert not screen.query_one("#eeprom-settings").display
        model.value = "pi3b+"
        await wait_for(pilot, lambda: "out of the box" in text(app, "#why"))
        assert screen.query_one("#make", Button).disabled
        model.value = "pi4"
        await wait_for(pilot, lambda: screen.query_one("#eeprom-settings").display)
        assert app.state.prepare_model == "pi4"
        # the bootloader settings are answers, validated like the file
        field = screen.query_one("#field-prepare-boot-order")
        field.set_text("0xf41")  # type: ignore[attr-defined]
        await pilot.pause()
        assert "no network boot" in field.error  # type: ignore[attr-defined]
        await pilot.press("f5")
        assert card.ran == []  # refused until fixed
        field.set_text("sd,network")  # type: ignore[attr-defined]
        await pilot.pause()
        assert app.state.answers.prepare.boot_order == "0xf21"
        screen.query_one("#card-mode", Select).value = "many"
        await pilot.pause()
        assert app.state.answers.prepare.card == "many"
        await pilot.press("f5")
        await wait_for(pilot, lambda: "pi4" in app.state.prepared)
        shown = text(app, "#card")
        assert "Card image: /cards/firecore-pi4-eeprom-1b6018a08f4e.img" in shown
        assert "1. Write the card" in shown and "Check: " in shown
        assert not screen.query_one("#write", Button).disabled


async def test_write_dialog_refuses_names_and_writes(
    wiz_answers: Answers, services: FakeServices, tmp_path: Path
) -> None:
    """The real inspection and write step on a file target; fixed devices for the refusals."""
    image = tmp_path / "card.img"
    drive(write_card("t", [CardFile("a.txt", data=os.urandom(1000))], image, label="X", serial=1,
                     mtime=0))  # fmt: skip
    services.targets = {"/dev/sdc": MOUNTED, "/dev/sda": INTERNAL}
    app = make_app(wiz_answers, services=services, start="summary")
    async with app.run_test(size=(120, 40)) as pilot:
        modal = WriteCardModal(services, image, app.clock)
        app.push_screen(modal)
        await wait_for(pilot, lambda: modal.is_mounted and "card_devices" in services.calls)
        device = modal.query_one("#device", Input)
        write = modal.query_one("#write", Button)
        force = modal.query_one("#force", Checkbox)

        device.value = "/dev/sdc"  # mounted: refused, Force not offered
        modal.action_check()
        await wait_for(pilot, lambda: modal.target is MOUNTED)
        assert write.disabled and not force.has_class("-shown")
        assert "mounted at /media/x" in str(modal.query_one("#target", Static).render())

        device.value = "/dev/sda"  # internal and large: only with Force
        modal.action_check()
        await wait_for(pilot, lambda: modal.target is INTERNAL)
        assert write.disabled and force.has_class("-shown")
        force.value = True
        await wait_for(pilot, lambda: not write.disabled)
        assert "Erase /dev/sda and write" in str(write.label)

        target = tmp_path / "written.img"  # a file: the real inspection allows it
        device.value = str(target)
        modal.action_check()
        await wait_for(pilot, lambda: modal.target is not None and modal.target.path == str(target))
        await wait_for(pilot, lambda: not write.disabled)
        await pilot.click("#write")
        await wait_for(pilot, lambda: modal.written)
        assert target.read_bytes() == image.read_bytes()
        assert "✓ wrote and verified" in str(modal.query_one("#target", Static).render())


async def test_summary_offers_the_sd_image(
    wiz_answers: Answers, services: FakeServices, tmp_path: Path
) -> None:
    app = make_app(wiz_answers, services=services, start="summary")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.query_one("#write-sd", Button).disabled
        assert "set build.sd_image" in text(app, "#sd-state")
    image = tmp_path / "firecore-0123456789ab.img"
    image.write_bytes(b"\0" * 1024)
    app = make_app(wiz_answers, services=services, start="summary")
    out = tmp_path / "out"
    built = BuildResult(out, out / "manifest.json", "0123456789ab", 3, 100, True, sd_image=image)
    app.state.results.put(built)
    async with app.run_test(size=(120, 40)) as pilot:
        assert f"SD image: {image}" in text(app, "#report")
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, WriteCardModal))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, WriteCardModal))
