"""EPICS network settings that keep servers and clients on 127.0.0.1, on free ports.

Shared by the online tests, the container's serve test and bench/bench_online.py. The
variable names are those of the pvxs (PVAccess) and EPICS base (Channel Access) libraries
that p4p and pyepics ship.
"""

import socket


def free_port(kind: int) -> int:
    """A port nothing listens on now (``socket.SOCK_STREAM`` or ``SOCK_DGRAM``), from the kernel."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_tcp_udp_port() -> int:
    """A port free for both TCP and UDP (a CA server uses the same number for both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free for both TCP and UDP")


def pva_env() -> dict[str, str]:
    """PVAccess: no broadcast discovery, search and serve on loopback only, new free ports."""
    return {
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_ADDR_LIST": "127.0.0.1",
        "EPICS_PVA_SERVER_PORT": str(free_port(socket.SOCK_STREAM)),
        "EPICS_PVA_BROADCAST_PORT": str(free_port(socket.SOCK_DGRAM)),
        "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
    }


def ca_env() -> dict[str, str]:
    """Channel Access, likewise."""
    return {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_SERVER_PORT": str(free_tcp_udp_port()),
        "EPICS_CA_REPEATER_PORT": str(free_port(socket.SOCK_DGRAM)),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    }
