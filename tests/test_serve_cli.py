"""`lsg-edge serve` and `lsg-edge client` as a user runs them: one-line errors before any model
loads, and a real server process on a free loopback port answering the client command."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.markers import SPEECH, loads
from tests.helpers.serve import read_utterance

_START_TIMEOUT_S = 120.0  # bound on the server loading Whisper tiny.en (not a timing check)


def _lsg_edge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsg_edge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("lsg-edge: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_rejects_a_bad_cap_before_loading_anything() -> None:
    result = _lsg_edge("serve", "--max-sessions", "0")
    assert result.returncode == 2
    assert _one_line_error(result) == "lsg-edge: error: --max-sessions must be at least 1, got 0"


def test_serve_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _lsg_edge("serve", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line_error(result)


def test_serve_warns_before_listening_beyond_loopback() -> None:
    # 192.0.2.1 (TEST-NET-1) is no interface of this machine: the warning comes, then binding fails.
    result = _lsg_edge("serve", "--host", "192.0.2.1", "--port", "0")
    assert "lsg-edge: warning: listening on 192.0.2.1: anyone who can reach this machine" in result.stderr
    assert result.returncode == 1 and "cannot listen on 192.0.2.1:0" in _one_line_error(result)


def test_client_without_a_server_is_one_line(data_dir: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    _, _, wav = read_utterance(data_dir, 1)
    result = _lsg_edge("client", str(wav), "--url", f"ws://127.0.0.1:{port}/ws")
    assert result.returncode == 1
    assert f"cannot connect to ws://127.0.0.1:{port}/ws" in _one_line_error(result)


@pytest.fixture(scope="module")
@loads(SPEECH)
def server_process():
    """`lsg-edge serve --model tiny.en --port 0` as a child process: its address."""
    yield from _server_process()


@pytest.fixture(scope="module")
@loads(SPEECH)
def translating_server_process(engine):  # noqa: ARG001 - marks it as loading the default text model too
    """`lsg-edge serve --translate` (tiny.en and the default text model) as a child process."""
    yield from _server_process("--translate")


def _server_process(*flags: str):
    process = subprocess.Popen([sys.executable, "-m", "lsg_edge.cli", "serve", "--model", "tiny.en", "--port", "0",
                                "--max-sessions", "2", *flags], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               text=True)
    deadline = time.monotonic() + _START_TIMEOUT_S
    seen = []
    address = None
    while address is None and time.monotonic() < deadline and process.poll() is None:
        line = process.stderr.readline()
        seen.append(line)
        match = re.search(r"serving on http://(127\.0\.0\.1:\d+)/", line)
        address = match.group(1) if match else None
    if address is None:
        process.kill()
        pytest.fail("lsg-edge serve did not start: " + "".join(seen))
    yield address, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_client_command_prints_the_captions(server_process, data_dir: Path) -> None:
    address, _ = server_process
    _, transcript, wav = read_utterance(data_dir, 1)
    result = _lsg_edge("client", str(wav), "--url", f"ws://{address}/ws", "--fast")
    assert result.returncode == 0, result.stderr
    words = re.sub(r"[^a-z ]", "", result.stdout.lower()).split()
    assert words == transcript.lower().split()


def test_client_command_reports_a_refusal_in_one_line(server_process, data_dir: Path) -> None:
    address, _ = server_process
    _, _, wav = read_utterance(data_dir, 1)
    result = _lsg_edge("client", str(wav), "--url", f"ws://{address}/ws", "--target", "de")
    assert result.returncode == 1
    assert "translation is not available" in _one_line_error(result)


def _client_stdin(address: str, text: bytes, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsg_edge.cli", "client", "--stdin", "--url", f"ws://{address}/ws",
                           *flags], input=text, capture_output=True, timeout=300)


def test_client_stdin_prints_the_translation_of_piped_text(translating_server_process, wmt_pairs) -> None:
    address, _ = translating_server_process
    text = "".join(de + "\n" for de, _ in wmt_pairs[:2]).encode()
    result = _client_stdin(address, text, "--language", "de", "--target", "en")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2 and all(len(line.split()) >= 5 for line in lines), lines
    assert "Polizei" not in result.stdout.decode()  # translated, not echoed


def test_client_stdin_with_bytes_that_are_not_utf8_translates_what_came_before(translating_server_process) -> None:
    address, _ = translating_server_process
    result = _client_stdin(address, b"Guten Morgen, meine Damen und Herren \xff weiter", "--language", "de",
                           "--target", "en")
    assert result.returncode == 1
    assert "the input is not UTF-8: byte 0xff" in _one_line_error_bytes(result)
    assert result.stdout.decode().strip(), "the words before the bad byte were not translated"


def test_client_stdin_on_ctrl_c_prints_the_translation_of_what_was_typed(translating_server_process) -> None:
    """Ctrl-C while the text is still open: what was sent is translated, the open sentence finished."""
    import threading

    address, _ = translating_server_process
    process = subprocess.Popen([sys.executable, "-m", "lsg_edge.cli", "client", "--stdin", "--url", f"ws://{address}/ws",
                                "--language", "de", "--target", "en"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdin.write("Die Polizei sucht nach Zeugen des Unfalls auf der ".encode())
    process.stdin.flush()
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(iter(lambda: process.stdout.read1(4096), b"")), daemon=True)
    reader.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not out and time.monotonic() < deadline:  # until the first commit is printed: the words are in
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    reader.join(timeout=10)
    err = process.stderr.read().decode()
    text = b"".join(out).decode()
    assert "Traceback" not in err, err
    assert process.returncode == 0, err
    assert "police" in text.lower() and text.endswith("\n"), text  # the open sentence was finished


def test_client_stdin_needs_a_target_before_connecting() -> None:
    result = _lsg_edge("client", "--stdin", "--url", "ws://127.0.0.1:9/ws")
    assert result.returncode == 1
    assert "--stdin sends text to translate: give --target" in _one_line_error(result)


def _one_line_error_bytes(result: subprocess.CompletedProcess) -> str:
    return _one_line_error(subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(),
                                                       result.stderr.decode()))


def test_serve_stops_cleanly_on_ctrl_c(server_process) -> None:
    address, process = server_process
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    rest = process.stderr.read()
    assert "Traceback" not in rest, rest
    assert process.returncode in (0, 130), (process.returncode, rest)
