"""Starts Arize Phoenix with every server on loopback.

Phoenix's OTLP/gRPC server binds every interface (`[::]:PORT`) whatever PHOENIX_HOST says
(phoenix/server/grpc_server.py); the tests bind everything to 127.0.0.1, so its address is
rewritten before Phoenix starts. The HTTP server follows PHOENIX_HOST.
"""

import sys

import grpc.aio

_server = grpc.aio.server


def _loopback_server(*args, **kwargs):
    server = _server(*args, **kwargs)
    for name in ("add_insecure_port", "add_secure_port"):
        add = getattr(server, name)

        def on_loopback(address, *rest, _add=add):
            return _add(address.replace("[::]", "127.0.0.1"), *rest)

        setattr(server, name, on_loopback)
    return server


grpc.aio.server = _loopback_server

from phoenix.server.main import main  # noqa: E402  (after the patch)

sys.argv = ["phoenix", "serve"]
main()
