"""inotify's limits reached for real, without touching the host: tailsse runs in a user namespace
of its own whose per-namespace limit (`/proc/sys/user/max_inotify_watches` or
`max_inotify_instances`, counted by the kernel's ucounts for that namespace) is 0."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

LIMITS = {
    # sysctl in the namespace, the notice's reason
    "watches": ("max_inotify_watches", "the inotify watch limit is reached"),
    "instances": ("max_inotify_instances", "the inotify instance limit is reached"),
}


def limited(sysctl: str) -> list[str]:
    """A wrapper running tailsse in a new user namespace whose `user.SYSCTL` is 0; skips the test
    when this kernel or sandbox cannot do that."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "sh", "-c",
                            f"echo 0 > /proc/sys/user/{sysctl} && cat /proc/sys/user/{sysctl}"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        pytest.skip(f"cannot lower user.{sysctl} in a user namespace on kernel {os.uname().release} "
                    f"(unprivileged user namespaces off, or no per-namespace inotify limits): {probe.stderr.strip()}")
    return [unshare, "--user", "--map-root-user", "sh", "-c", f'echo 0 > /proc/sys/user/{sysctl} && exec "$@"', "sh"]


def raise_limit(srv, sysctl: str) -> None:
    """Raises the limit again inside tailsse's user namespace."""
    subprocess.run(["nsenter", "--user", "--target", str(srv.pid), "sh", "-c", f"echo 1000 > /proc/sys/user/{sysctl}"], check=True)
