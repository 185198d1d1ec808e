"""The port a task holds for its TF server until the cluster is known (docs/ARCHITECTURE.md,
"Ports")."""

from __future__ import annotations

import random
import socket


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def hold_port(host: str = "0.0.0.0", attempts: int = 200) -> socket.socket:
    """Bind and listen on a random port below the ephemeral range; the caller keeps it held.

    Ports the kernel hands out for outgoing connections come from the ephemeral range, so a
    port picked below it is not taken by some unrelated connect() between our release and the
    TF server's bind.
    """
    low, _ = _ephemeral_range()
    candidates = (10000, max(10001, min(low, 32768)))
    for _ in range(attempts):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, random.randrange(*candidates)))
            sock.listen(1)
            return sock
        except OSError:
            sock.close()
    raise RuntimeError(f"no free TCP port found in {candidates} after {attempts} attempts")
