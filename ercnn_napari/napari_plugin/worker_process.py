"""Run an ``ercnn-napari`` command as a separate process and turn its JSON lines into Qt signals.

Why a process and not a thread: TensorFlow must never be loaded into the viewer (software OpenGL
binds to its LLVM symbols and crashes), a thread cannot be killed, and GPU memory is only released
when the process that holds it ends. A process gives a real Cancel (SIGTERM, then SIGKILL after a
grace period) and a training crash cannot take the analyst's labels down with it.

Everything here runs on the Qt main thread through :class:`QProcess` signals, so the viewer never
blocks on the worker's pipes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from qtpy.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from ercnn_napari.core.messages import Error, Finished, Message, parse_message

#: How long a worker may take to stop after SIGTERM before it is killed.
DEFAULT_GRACE_SECONDS = 5.0
#: Workers run at a lower CPU priority than the viewer: on a CPU-only machine training takes every
#: core, and the analyst's brush and slider must still answer at once (GPU runs barely notice).
DEFAULT_NICENESS = 10

#: Runs the command line after lowering the process priority (os.nice exists on POSIX only).
_NICE_PRELUDE = (
    "import os, sys\n"
    "n = int(sys.argv.pop(1))\n"
    "if n and hasattr(os, 'nice'):\n"
    "    os.nice(n)\n"
    "from ercnn_napari.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@dataclass
class WorkerResult:
    """How a worker ended, as the dock needs it: a status word and one sentence for the analyst."""

    status: str  # "completed", "cancelled" or "failed"
    exit_code: int
    error_message: str = ""
    finished: Finished | None = None
    stderr_tail: list[str] = field(default_factory=list)


def worker_command(args: list[str], niceness: int = 0) -> list[str]:
    """The argv of a worker: the same interpreter as the viewer, so the same installed package.

    With ``niceness`` the worker first lowers its own priority, then runs exactly what
    ``python -m ercnn_napari ARGS`` runs.
    """
    if niceness:
        return [sys.executable, "-c", _NICE_PRELUDE, str(int(niceness)), *args]
    return [sys.executable, "-m", "ercnn_napari", *args]


class WorkerProcess(QObject):
    """One ``python -m ercnn_napari <args>`` run.

    Signals: ``message(Message)`` for every parsed JSON line, ``log(str)`` for every stderr line,
    ``done(WorkerResult)`` exactly once when the process is gone.
    """

    message = Signal(object)
    log = Signal(str)
    done = Signal(object)

    def __init__(self, args: list[str], parent: QObject | None = None,
                 grace_seconds: float = DEFAULT_GRACE_SECONDS, env: dict[str, str] | None = None,
                 niceness: int = DEFAULT_NICENESS) -> None:
        super().__init__(parent)
        self.args = list(args)
        self.niceness = niceness
        self.grace_seconds = grace_seconds
        self._extra_env = dict(env or {})
        self._process = QProcess(self)
        self._process.readyReadStandardOutput.connect(self._read_stdout)
        self._process.readyReadStandardError.connect(self._read_stderr)
        self._process.finished.connect(self._on_finished)
        self._process.errorOccurred.connect(self._on_error)
        self._stdout_buffer = ""
        self._stderr_buffer = ""
        self._stderr_tail: list[str] = []
        self._error: Error | None = None
        self._finished_msg: Finished | None = None
        self._cancel_requested = False
        self._reported = False
        self.messages: list[Message] = []

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker; returns at once (the process runs while the event loop spins)."""
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # every JSON line must arrive as soon as it is written
        env.insert("TF_CPP_MIN_LOG_LEVEL", env.value("TF_CPP_MIN_LOG_LEVEL", "2"))
        for key, value in self._extra_env.items():
            env.insert(key, value)
        self._process.setProcessEnvironment(env)
        command = worker_command(self.args, self.niceness)
        self._process.start(command[0], command[1:])

    def is_running(self) -> bool:
        return self._process.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self._process.processId())

    def cancel(self) -> None:
        """Ask the worker to stop (SIGTERM); kill it if it is still there after the grace period."""
        if not self.is_running():
            return
        self._cancel_requested = True
        self._process.terminate()
        QTimer.singleShot(int(self.grace_seconds * 1000), self._kill_if_running)

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the process ends (tests and shutdown only; the docks never call this)."""
        return bool(self._process.waitForFinished(msecs))

    def _kill_if_running(self) -> None:
        if self.is_running():
            self._process.kill()

    # -- output --------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")
        *lines, self._stdout_buffer = self._stdout_buffer.split("\n")
        for line in lines:
            self._handle_stdout_line(line)

    def _handle_stdout_line(self, line: str) -> None:
        msg = parse_message(line)
        if msg is None:
            if line.strip():
                self.log.emit(line.rstrip())
            return
        if isinstance(msg, Error):
            self._error = msg
        elif isinstance(msg, Finished):
            self._finished_msg = msg
        self.messages.append(msg)
        self.message.emit(msg)

    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        *lines, self._stderr_buffer = self._stderr_buffer.split("\n")
        for line in lines:
            if line.strip():
                self._stderr_tail = (self._stderr_tail + [line.rstrip()])[-20:]
                self.log.emit(line.rstrip())

    # -- end -----------------------------------------------------------------------------------
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._report(WorkerResult("failed", -1, f"could not start the worker: {self._process.errorString()}"))

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        if self._stdout_buffer.strip():
            self._handle_stdout_line(self._stdout_buffer)
            self._stdout_buffer = ""
        self._read_stderr()
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        if self._cancel_requested:
            status, text = "cancelled", ""
        elif not crashed and exit_code == 0:
            status = (self._finished_msg.status if self._finished_msg is not None else "") or "completed"
            text = ""
        elif self._error is not None:
            status, text = "failed", self._error.message
        else:
            status, text = "failed", self._failure_sentence(exit_code, crashed)
        self._report(WorkerResult(status, int(exit_code), text, self._finished_msg, list(self._stderr_tail)))

    def _failure_sentence(self, exit_code: int, crashed: bool) -> str:
        """One line for a worker that died without an error event: its last stderr line, no traceback."""
        last = next((line.strip() for line in reversed(self._stderr_tail) if line.strip()), "")
        how = "crashed" if crashed else f"exited with code {exit_code}"
        name = self.args[0] if self.args else "worker"
        return f"the {name} worker {how}" + (f": {last}" if last else "")

    def _report(self, result: WorkerResult) -> None:
        if self._reported:
            return
        self._reported = True
        self.done.emit(result)
