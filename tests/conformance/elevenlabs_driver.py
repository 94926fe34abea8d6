"""ElevenLabs' official Python SDK (`elevenlabs`, `text_to_speech.convert_realtime`, the
`stream-input` websocket) against the stand-in. The SDK always dials wss:// (it rewrites its
base URL's scheme), so the driver puts a TLS-terminating proxy (`common.tls_proxy`, a throwaway
self-signed certificate for 127.0.0.1 made with openssl) in front of the stand-in's ws:// port
and trusts that certificate through `SSL_CERT_FILE`, which the default SSL context of the SDK's
websocket client honours. The SDK's protocol code runs unchanged: `base_url` is
`https://127.0.0.1:<proxy>`, two pieces of text, and the SDK sends the end of input and reads
until the server closes.

`convert_realtime` yields only the audio; to see what else the server sent, the driver wraps
the websocket connection the SDK opens (`recv` is recorded, nothing altered) and validates
every message strictly against the SDK's `ReceiveMessage` models (`AudioOutput`,
`FinalOutput`). It also prints the field names of the SDK's models of what a client sends, so
the test can check our client's messages against them.

Args: {"ws": "ws://127.0.0.1:<port>", "key": "...", "voice": "...", "model": "...",
       "output_format": "pcm_24000"}.
"""

import base64
import json
import os
import tempfile
import threading

from common import args, emit, error_text, self_signed_cert, strict, tls_proxy

a = args()
tmp = tempfile.TemporaryDirectory()
cert, key = self_signed_cert(tmp.name)
os.environ["SSL_CERT_FILE"] = cert
proxy = tls_proxy(int(a["ws"].rsplit(":", 1)[1]), cert, key)

from elevenlabs import VoiceSettings, realtime_tts  # noqa: E402
from elevenlabs.client import ElevenLabs  # noqa: E402
from elevenlabs.types import (  # noqa: E402
    AudioOutput,
    CloseConnection,
    FinalOutput,
    InitializeConnection,
    SendText,
)

out = {
    "audio_bytes": 0, "messages": [], "chars": [], "is_final": False, "errors": [],
    "schema_errors": [],
    "fields": {
        name: sorted(f.alias or n for n, f in model.model_fields.items())
        for name, model in [("init", InitializeConnection), ("text", SendText), ("close", CloseConnection)]
    },
}


class Recorded:
    """The SDK's websocket connection, with every received text message also kept."""

    def __init__(self, conn):
        self._conn = conn

    def __enter__(self):
        self._conn.__enter__()
        return self

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)

    def send(self, message):
        self._conn.send(message)

    def recv(self, *timeout):
        message = self._conn.recv(*timeout)
        data = json.loads(message)
        model = AudioOutput if "audio" in data else FinalOutput
        out["schema_errors"] += strict(model, data)
        out["messages"].append(sorted(data))
        alignment = data.get("alignment") or {}
        out["chars"] += alignment.get("chars") or []
        out["is_final"] = out["is_final"] or data.get("isFinal") is True
        return message


sdk_connect = realtime_tts.connect
realtime_tts.connect = lambda *p, **k: Recorded(sdk_connect(*p, **k))



def stuck():
    """The SDK reads until the server closes the socket: say so rather than hang."""
    out["errors"].append({"type": "Timeout", "status": None, "message": f"the SDK was still "
                          f"reading after {LIMIT_S} s; the server never closed the connection"})
    emit(out)
    os._exit(0)


LIMIT_S = 20
watchdog = threading.Timer(LIMIT_S, stuck)
watchdog.daemon = True
watchdog.start()
client = ElevenLabs(api_key=a["key"], base_url=f"https://127.0.0.1:{proxy}")
try:
    audio = client.text_to_speech.convert_realtime(
        voice_id=a["voice"], text=iter(["Hello there. ", "How are you?"]), model_id=a["model"],
        output_format=a["output_format"],
        voice_settings=VoiceSettings(stability=0.5, similarity_boost=0.8),
    )
    for chunk in audio:
        out["audio_bytes"] += len(chunk)
except Exception as e:
    out["errors"].append(error_text(e))
watchdog.cancel()
emit(out)
