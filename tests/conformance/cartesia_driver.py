"""Cartesia's official Python SDK (`cartesia`, `tts.websocket_connect()` contexts) against the
stand-in: `websocket_base_url` set to the stand-in's ws:// root (the SDK adds
`/tts/websocket`), one context streaming two pieces of text, `no_more_inputs()`, then every
event of the context until `done`; each validated strictly against the SDK's models.

Args: {"ws": "ws://127.0.0.1:<port>", "key": "...", "voice": "...", "model": "..."}.
"""

import base64

from common import args, emit, error_text, strict

from cartesia import Cartesia
from cartesia.types import websocket_response as r

a = args()
out = {"events": [], "audio_bytes": 0, "words": [], "errors": [], "schema_errors": []}
models = {"chunk": r.Chunk, "done": r.Done, "timestamps": r.Timestamps, "error": r.Error, "flush_done": r.FlushDone}
client = Cartesia(api_key=a["key"], websocket_base_url=a["ws"])
try:
    with client.tts.websocket_connect() as conn:
        ctx = conn.context(
            model_id=a["model"], voice={"mode": "id", "id": a["voice"]},
            output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000},
            add_timestamps=True, timeout=10,
        )
        ctx.push("Hello there. ")
        ctx.push("How are you?")
        ctx.no_more_inputs()
        for ev in ctx.receive():
            out["schema_errors"] += strict(models.get(ev.type, r.Error), ev.model_dump(exclude_unset=True))
            out["events"].append(ev.type)
            if ev.type == "chunk":
                out["audio_bytes"] += len(base64.b64decode(ev.data))
            elif ev.type == "timestamps" and ev.word_timestamps:
                out["words"] += ev.word_timestamps.words
            elif ev.type == "error":
                out["errors"].append({"type": "error", "status": ev.status_code, "message": ev.message})
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
