"""Children that Ctrl-C (SIGINT) reaches, whatever the test process's native libraries did to it.

A library loaded into the pytest process may set SIGINT to "ignore" at the C level (Python's own
handler table does not show it), and an ignored signal stays ignored across exec: a CLI started
from that process would then never see the Ctrl-C a test sends. A terminal starts programs with
the default action, so the tests do too.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """`preexec_fn` for subprocess.Popen: SIGINT at its default action and unblocked in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
