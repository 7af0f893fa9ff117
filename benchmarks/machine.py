"""One line describing the machine a benchmark ran on, for the reports."""

from __future__ import annotations

import contextlib
import os
import platform

import torch

__all__ = ["machine_info"]


def machine_info() -> str:
    """CPU model, logical CPUs, torch and Python versions and the OS."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} logical CPUs (shared with other jobs), "
            f"torch {torch.__version__} with 1 thread per process, "
            f"Python {platform.python_version()}, {platform.system()}")
