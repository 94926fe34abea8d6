"""Sarvam's official Python SDK (`sarvamai`, `text_to_speech_streaming`) against the stand-in's
`/text-to-speech/ws`: the environment's `production` set to the stand-in's ws:// root, the
engine's config (linear16), two pieces of text, `flush()`, then every message until the
`final` event. The SDK validates every message against its models (`parse_obj_as`).

Args: {"ws": "ws://127.0.0.1:<port>", "key": "..."}.
"""

import base64

from common import args, emit, error_text

from sarvamai import SarvamAI
from sarvamai.environment import SarvamAIEnvironment

a = args()
out = {"events": [], "audio_bytes": 0, "errors": [], "schema_errors": []}
env = SarvamAIEnvironment(base=a["ws"].replace("ws://", "http://"), creative=a["ws"], production=a["ws"])
client = SarvamAI(api_subscription_key=a["key"], environment=env)
try:
    with client.text_to_speech_streaming.connect(model="bulbul:v2", send_completion_event="true") as ws:
        ws.configure(
            target_language_code="en-IN", speaker="anushka", pace=1.0, speech_sample_rate=24000,
            enable_preprocessing=True, output_audio_codec="linear16", min_buffer_size=30,
            max_chunk_length=150,
        )
        ws.convert("Hello there, this is a test. ")
        ws.convert("How are you today?")
        ws.flush()
        for msg in ws:
            out["events"].append(msg.type)
            if msg.type == "audio":
                out["audio_bytes"] += len(base64.b64decode(msg.data.audio))
            elif msg.type == "event":
                out["events"][-1] = f"event:{msg.data.event_type}"
                if msg.data.event_type == "final":
                    break
            elif msg.type == "error":
                out["errors"].append({"type": "error", "status": None, "message": msg.data.message})
                break
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
