"""AssemblyAI's official Python SDK (`assemblyai`, Universal Streaming v3 `StreamingClient`)
against the stand-in's `/v3/ws`: `api_host` set to the stand-in's ws:// root (the SDK keeps
a ws:// or wss:// host as given), the engine's parameters, 2 s of 16 kHz s16le audio in 50 ms
messages, then `disconnect(terminate=True)` (the SDK's `Terminate`, waiting for
`Termination`). Prints the events as the SDK parsed them.

Args: {"ws": "ws://127.0.0.1:<port>", "key": "..."}.
"""

import logging
import threading

from common import args, chunks, emit, error_text, pcm16

from assemblyai.streaming.v3 import (
    RealTimeEvents,
    RealTimeParameters,
    RealTimeTranscriberOptions,
    StreamingClient,
)

a = args()
out = {"messages": [], "errors": [], "schema_errors": []}


class Problems(logging.Handler):
    """The SDK logs, rather than raises, messages it cannot parse."""

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            out["schema_errors"].append(record.getMessage()[:300])


logging.getLogger("assemblyai").addHandler(Problems())
threading.excepthook = lambda h: out["errors"].append(error_text(h.exc_value))

client = StreamingClient(
    RealTimeTranscriberOptions(api_host=a["ws"], api_key=a["key"], max_connection_retries=0)
)


def on(kind):
    def handler(_client, event):
        item = {"type": kind}
        if kind == "Turn":
            item.update(transcript=event.transcript, end_of_turn=event.end_of_turn,
                        turn_order=event.turn_order)
        out["messages"].append(item)

    return handler


for kind in ("Begin", "Turn", "Termination", "SpeechStarted"):
    client.on(RealTimeEvents[kind], on(kind))
client.on(RealTimeEvents.Error, lambda _c, e: out["errors"].append(error_text(e)))
try:
    client.connect(RealTimeParameters(
        sample_rate=16000, encoding="pcm_s16le", speech_model="universal-streaming-english",
        format_turns=False,
    ))
    client.stream(chunks(pcm16(2000), 1600))
    client.disconnect(terminate=True)
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
