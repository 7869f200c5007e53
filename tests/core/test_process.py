"""Servers stop together with every process they started (va_core.process)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from va_core.process import stop_group


def test_stop_group_returns_only_when_every_process_of_the_group_is_gone():
    # a leader that leaves at once and a child that ignores SIGTERM: the child is killed after
    # the linger, and is gone (not merely signalled) when stop_group returns
    script = ("import signal, subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)']); "
              "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"1"  # the child is up and ignores SIGTERM
    stop_group(proc, timeout=5, linger=0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
