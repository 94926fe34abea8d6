"""What every conformance driver shares (stdlib only): its arguments, test audio, its one
JSON line of output, and a strict check of a parsed message against the SDK's own model.

A driver is run as `python <provider>.py '<json args>'` and prints exactly one JSON line on
stdout: what the official SDK understood. Anything the SDK raises is reported in `errors`
(the driver still exits 0), so the Rust test can assert on error paths too.
"""

import json
import math
import struct
import sys


def args():
    return json.loads(sys.argv[1])


def pcm16(ms, rate=16000):
    """`ms` of a 440 Hz tone as 16 kHz mono s16le bytes."""
    n = rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n)
    )


def chunks(data, size):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def emit(out):
    print(json.dumps(out, default=str), flush=True)


def error_text(exc):
    """The exception's class and message, plus an HTTP status when the SDK carries one."""
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    resp = getattr(exc, "response", None)
    if status is None and resp is not None:
        status = getattr(resp, "status_code", None)
    return {"type": type(exc).__name__, "status": status, "message": str(exc)[:300]}


def strict(model_cls, data):
    """Validate `data` against a pydantic model of the SDK (required fields, literals, types);
    returns the list of problems, empty when the message is what the SDK's schema says."""
    try:
        if hasattr(model_cls, "model_validate"):
            model_cls.model_validate(data)
        else:
            model_cls.parse_obj(data)
        return []
    except Exception as e:  # pydantic.ValidationError
        errs = getattr(e, "errors", None)
        if callable(errs):
            return [f"{model_cls.__name__}.{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in errs()]
        return [f"{model_cls.__name__}: {e}"]


def self_signed_cert(directory):
    """A throwaway certificate and key for 127.0.0.1 and localhost, made with the openssl CLI
    (Python's stdlib cannot make one); returns `(cert_path, key_path)`."""
    import os
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        sys.exit("openssl is not installed: run `apt-get install openssl` (make setup does)")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def tls_proxy(upstream_port, cert, key):
    """A TLS-terminating TCP proxy on 127.0.0.1 in front of `127.0.0.1:upstream_port`, for an
    SDK that only dials wss://. Bytes pass through unchanged both ways; it runs on an asyncio
    loop in a daemon thread for the life of the driver. Returns its port."""
    import asyncio
    import ssl
    import threading

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return server.sockets[0].getsockname()[1]


def deepgram_client(a):
    """Deepgram's SDK client pointed at the server `a["ws"]`, and the SDK's own model of each
    listen message type (for `strict`). Shared by the conformance and sphinx drivers."""
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment
    from deepgram.listen.v1.types import (
        ListenV1Metadata,
        ListenV1Results,
        ListenV1SpeechStarted,
        ListenV1UtteranceEnd,
    )

    ws = a["ws"]
    env = DeepgramClientEnvironment(
        base=ws.replace("ws://", "http://"), production=ws, agent=ws, agent_rest=ws
    )
    models = {
        "Results": ListenV1Results,
        "Metadata": ListenV1Metadata,
        "UtteranceEnd": ListenV1UtteranceEnd,
        "SpeechStarted": ListenV1SpeechStarted,
    }
    return DeepgramClient(api_key=a["key"], environment=env), models
