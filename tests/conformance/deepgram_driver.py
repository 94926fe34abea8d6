"""Deepgram's official Python SDK (`deepgram-sdk`) against the stand-in's `/v1/listen`: the
engine's query parameters, 2 s of 16 kHz s16le audio in 20 ms messages, `CloseStream`, then
every message until the server closes. Prints the results as the SDK parsed them.

Args: {"ws": "ws://127.0.0.1:<port>", "key": "...", "language": optional}.
"""

from common import args, chunks, deepgram_client, emit, error_text, pcm16, strict

a = args()
client, models = deepgram_client(a)
out = {"messages": [], "errors": [], "schema_errors": []}
try:
    params = dict(
        model="nova-3", encoding="linear16", sample_rate="16000", channels="1",
        interim_results="true", punctuate="true", smart_format="true", endpointing="300",
        utterance_end_ms="1000", vad_events="true",
    )
    if a.get("language"):
        params["language"] = a["language"]
    with client.listen.v1.connect(**params) as sock:
        for c in chunks(pcm16(2000), 640):
            sock.send_media(c)
        sock.send_close_stream()
        for msg in sock:
            kind = getattr(msg, "type", type(msg).__name__)
            data = msg.dict(by_alias=True) if hasattr(msg, "dict") else {}
            if kind in models:
                out["schema_errors"] += strict(models[kind], data)
            item = {"type": kind}
            if kind == "Results":
                item.update(
                    transcript=msg.channel.alternatives[0].transcript,
                    is_final=msg.is_final,
                    speech_final=msg.speech_final,
                )
            out["messages"].append(item)
except Exception as e:  # what the SDK raises is part of what it understood
    out["errors"].append(error_text(e))
emit(out)
