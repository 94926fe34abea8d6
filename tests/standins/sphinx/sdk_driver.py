"""Deepgram's official Python SDK (`deepgram-sdk`) against the sphinx server, with real speech:
the parameters our engine sends, a 16 kHz s16le file in 20 ms messages (as fast as the SDK
sends them; the server queues), `CloseStream`, then every message until the server closes.
Every message is validated strictly against the SDK's own models (`common.strict`, shared with
the conformance drivers).

Args: {"ws": "ws://127.0.0.1:<port>", "key": "...", "pcm": "<path to raw 16 kHz s16le>"}.
Prints one JSON line: {"messages": [...], "errors": [...], "schema_errors": [...]}.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conformance"))

from common import args, chunks, deepgram_client, emit, error_text, strict  # noqa: E402

a = args()
client, models = deepgram_client(a)
out = {"messages": [], "errors": [], "schema_errors": []}
try:
    with open(a["pcm"], "rb") as f:
        pcm = f.read()
    with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate="16000", channels="1",
        interim_results="true", punctuate="true", smart_format="true", endpointing="300",
        utterance_end_ms="1000", vad_events="true",
    ) as sock:
        for c in chunks(pcm, 640):
            sock.send_media(c)
        sock.send_close_stream()
        for msg in sock:
            kind = getattr(msg, "type", type(msg).__name__)
            data = msg.dict(by_alias=True) if hasattr(msg, "dict") else {}
            if kind in models:
                out["schema_errors"] += strict(models[kind], data)
            item = {"type": kind}
            if kind == "Results":
                alt = msg.channel.alternatives[0]
                item.update(
                    transcript=alt.transcript, is_final=msg.is_final,
                    speech_final=msg.speech_final, start=msg.start, duration=msg.duration,
                    words=[[w.word, w.start, w.end] for w in alt.words],
                )
            if kind == "Metadata":
                item.update(duration=msg.duration, channels=msg.channels)
            out["messages"].append(item)
except Exception as e:  # what the SDK raises is part of what it understood
    out["errors"].append(error_text(e))
emit(out)
