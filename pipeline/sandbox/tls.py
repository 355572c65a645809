"""Throwaway TLS for the sandbox servers: a CA generated at start that clients trust explicitly."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from pipeline.sandbox.files import write_private


def server_context(state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1/localhost and the path of the CA that signed it.

    A fresh CA per start: nothing long-lived to leak, and clients must be pointed at `ca.pem`
    (never `verify=False`).
    """
    ca = trustme.CA(organization_name="m3sync sandbox")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = state_dir / "ca.pem"
    write_private(ca_file, ca.cert_pem.bytes())
    return context, ca_file
