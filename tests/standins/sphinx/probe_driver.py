"""Bad input against the sphinx server, with the `websockets` client: refusals before the
upgrade (no key 401, another path 404, mu-law 400), then one stream that opens with a text
frame that is not JSON, an unknown control message and a single byte, and sends the speech in
641-byte messages (odd sizes: samples straddle messages). The server must still recognise it.

Args: {"ws": "ws://127.0.0.1:<port>", "key": "...", "pcm": "<path to raw 16 kHz s16le>"}.
Prints one JSON line: {"refusals": {case: status}, "finals": [...], "types": [...], "close": code}.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conformance"))

from common import args, chunks, emit, error_text  # noqa: E402

from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

a = args()
query = "encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300"
auth = {"Authorization": f"Token {a['key']}"}
out = {"refusals": {}, "finals": [], "types": [], "close": None, "errors": []}
for case, path, headers in [
    ("no_key", f"/v1/listen?{query}", {}),
    ("wrong_path", f"/v1/speak?{query}", auth),
    ("mulaw", "/v1/listen?encoding=mulaw&sample_rate=8000", auth),
]:
    try:
        with connect(a["ws"] + path, additional_headers=headers, open_timeout=10):
            out["refusals"][case] = 101
    except InvalidStatus as e:
        out["refusals"][case] = e.response.status_code
    except Exception as e:
        out["refusals"][case] = error_text(e)
try:
    with open(a["pcm"], "rb") as f:
        pcm = f.read()
    with connect(a["ws"] + f"/v1/listen?{query}", additional_headers=auth, open_timeout=10) as ws:
        ws.send("{not json")
        ws.send(json.dumps({"type": "NoSuchControl"}))
        ws.send(pcm[:1])
        for c in chunks(pcm[1:], 641):
            ws.send(c)
        ws.send(json.dumps({"type": "CloseStream"}))
        for m in ws:
            v = json.loads(m)
            out["types"].append(v["type"])
            if v["type"] == "Results" and v["is_final"]:
                out["finals"].append(v["channel"]["alternatives"][0]["transcript"])
        out["close"] = ws.close_code
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
