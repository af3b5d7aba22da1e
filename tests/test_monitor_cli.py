"""``firecore-wizard monitor`` on capture files and streams: output, filters, exit codes.

Captures here are written with the project's own frame builders (``tests.support.synthetic``);
the namespace-made ones are in tests/integration/test_monitor_captures.py.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from steps.base import StepContext
from steps.errors import UsageError
from steps.events import LogLine, Result
from steps.monitor import MonitorStep
from steps.wire.monitor_events import SummaryEvent
from steps.wire.pcap import read_file, write_records
from tests.support.synthetic import Pi, Wire
from wizard.cli import main
from wizard.render import MonitorRenderer

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))


def good_and_bad(tmp: Path) -> tuple[Path, Pi, Pi]:
    wire = Wire()
    good, bad = Pi.pi4(1), Pi.pi3(2)
    wire.good_boot(good)
    wire.client(bad, bad.discover())
    wire.offer(bad)  # no proxy answers it
    wire.wait(3)
    wire.client(bad, bad.discover())
    path = tmp / "two.pcap"
    write_records(path, wire.records)
    return path, good, bad


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = main(["monitor", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines() if x.strip()], err


def test_json_lines_and_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, good, _bad = good_and_bad(tmp_path)
    code, lines, err = run_cli(["--pcap", str(path), "--json"], capsys)
    assert code == 1
    assert {x["type"] for x in lines} == {"packet", "stage", "diagnosis", "summary", "done"}
    assert [x["code"] for x in lines if x["type"] == "diagnosis" and x["severity"] == "error"] == [
        "no-proxy-offer"
    ]
    assert lines[-1] == {"type": "done", "exit_code": 1}  # --json: `done` is always last
    assert lines[-2]["type"] == "summary" and len(lines[-2]["clients"]) == 2
    assert "reading " in err and "pcap, Ethernet" in err
    code, lines, _ = run_cli(["--pcap", str(path), "--mac", good.mac.upper()], capsys)
    assert code == 0  # not a terminal: JSON lines anyway
    assert {x.get("mac") for x in lines if x["type"] != "summary"} == {good.mac}
    assert [c["mac"] for c in lines[-1]["clients"]] == [good.mac]


def test_duration_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _good, _bad = good_and_bad(tmp_path)
    copy = tmp_path / "out" / "copy.pcapng"
    _code, lines, err = run_cli(
        ["--pcap", str(path), "--duration", "0.05", "--write", str(copy)], capsys
    )
    last_t = max(x["t"] for x in lines if x["type"] == "packet")
    assert last_t <= 0.05
    assert len(list(read_file(copy))) == lines[-1]["frames"] < len(list(read_file(path)))
    assert f"wrote {lines[-1]['frames']} frame(s) to {copy}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give exactly one source"),
        (["--pcap", "x.pcap", "--duration", "0"], "--duration 0"),
        (["--pcap", "x.pcap", "--mac", "b8:27:eb"], "--mac"),
        (["--pcap", "/nonexistent/x.pcap"], "does not exist"),
        (["--pcap", "."], "is a directory"),
    ],
)
def test_usage_errors_exit_2_with_one_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run_cli(argv, capsys)
    assert code == 2 and lines == [] and message in err and "Traceback" not in err


def test_both_sources_and_writing_over_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = good_and_bad(tmp_path)
    code, _, err = run_cli(["--pcap", str(path), "--interface", "lo"], capsys)
    assert code == 2 and "not allowed with" in err
    code, _, err = run_cli(["--pcap", str(path), "--write", str(path)], capsys)
    assert code == 2 and "must not be the --pcap file" in err


def test_a_stream_on_stdin_is_decoded_as_it_arrives(tmp_path: Path) -> None:
    path, _good, _bad = good_and_bad(tmp_path)
    data = path.read_bytes()
    first_record = 24 + 16 + len(next(iter(read_file(path)))[2])
    proc = subprocess.Popen(
        [WIZARD, "monitor", "--pcap", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(data[:first_record])
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no output while stdin stays open"
        line = json.loads(proc.stdout.readline())
        assert line["type"] == "packet" and line["msg_type"] == "DISCOVER"

        def feed() -> None:
            assert proc.stdin is not None
            proc.stdin.write(data[first_record:])
            proc.stdin.close()

        writer = threading.Thread(target=feed)
        writer.start()  # the rest, while we read (else both pipes fill up)
        rest = [json.loads(x) for x in proc.stdout.read().splitlines()]
        writer.join()
        assert proc.wait(timeout=120) == 1
        assert [x["type"] for x in rest[-2:]] == ["summary", "done"]
    finally:
        proc.kill()
        proc.wait()


def test_human_lines(tmp_path: Path) -> None:
    path, good, _bad = good_and_bad(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    renderer = MonitorRenderer(out, err, json_lines=False)
    for event in MonitorStep(pcap=path).watch():
        renderer.event(event)
    text = out.getvalue()
    assert "DHCP DISCOVER xid 0x26f30339" in text
    assert f"{good.mac}  ▶ kernel" in text and "after power-on" in text
    assert "ERROR [no-proxy-offer]" in text and "fix: Start our dnsmasq" in text
    assert "file kernel6647v8.img: complete, 110.0 kB" in text
    assert "TFTP DATA" not in text  # not every block
    assert "diagnoses: early-terminate ×1, no-proxy-offer ×1" in text
    assert renderer.errors == 1


def test_the_step_as_plain_events(tmp_path: Path) -> None:
    from steps.answers import default_answers

    path, good, _bad = good_and_bad(tmp_path)
    step = MonitorStep(pcap=path, keep_frames=False)
    events = list(step.run(StepContext(default_answers())))
    assert isinstance(events[-1], Result) and events[-1].data["type"] == "summary"
    texts = [e.text for e in events if isinstance(e, LogLine)]
    assert any(t.startswith("[no-proxy-offer]") for t in texts)
    assert any(f"{good.mac} initramfs" in t for t in texts)
    assert isinstance(step.summary, SummaryEvent)


def test_cancel_stops_a_quiet_stream_and_still_summarises() -> None:
    """Ctrl-C on `tcpdump ... | monitor --pcap -` while nothing arrives: the summary comes."""
    rfd, wfd = os.pipe()
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    os.write(wfd, header)
    cancel = threading.Event()
    with open(rfd, "rb", buffering=0) as stream:
        step = MonitorStep(pcap="-", stdin=stream)
        events = []
        for event in step.watch(cancel):
            events.append(event)
            cancel.set()  # after the first notice; the reader ticks while the pipe is quiet
    os.close(wfd)
    assert isinstance(events[0], LogLine) and "pcap, Ethernet" in events[0].text
    assert isinstance(events[-1], SummaryEvent) and events[-1].frames == 0


def test_a_step_needs_one_source() -> None:
    with pytest.raises(UsageError):
        MonitorStep()
