"""Sarvam's official Python SDK (`sarvamai`, `speech_to_text_streaming`) against the
stand-in's `/speech-to-text/ws`: the environment's `production` set to the stand-in's ws://
root, the engine's parameters, 2 s of 16 kHz s16le audio as base64 in 50 ms messages
(`transcribe`), then `flush()`, then every message until the server closes. The SDK validates
every message against its own models (`parse_obj_as`).

Args: {"ws": "ws://127.0.0.1:<port>", "key": "..."}.
"""

import base64

from common import args, chunks, emit, error_text, pcm16

from sarvamai import SarvamAI
from sarvamai.environment import SarvamAIEnvironment

a = args()
out = {"messages": [], "errors": [], "schema_errors": []}
env = SarvamAIEnvironment(base=a["ws"].replace("ws://", "http://"), creative=a["ws"], production=a["ws"])
client = SarvamAI(api_subscription_key=a["key"], environment=env)
try:
    with client.speech_to_text_streaming.connect(
        language_code="hi-IN", model="saarika:v2.5", sample_rate="16000",
        input_audio_codec="pcm_s16le", high_vad_sensitivity="true", vad_signals="true",
        flush_signal="true",
    ) as ws:
        for c in chunks(pcm16(2000), 1600):
            ws.transcribe(audio=base64.b64encode(c).decode(), encoding="audio/wav", sample_rate=16000)
        ws.flush()
        for msg in ws:
            item = {"type": msg.type}
            if msg.type == "data":
                item["transcript"] = msg.data.transcript
            elif msg.type == "events":
                item["signal"] = msg.data.signal_type
            out["messages"].append(item)
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
