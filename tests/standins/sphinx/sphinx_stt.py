"""A local speech recogniser that speaks Deepgram's live streaming protocol, for tests that must
measure real recognition (answering-machine detection) instead of scripted transcripts.

    python sphinx_stt.py [--port 0] [--key KEY] [--max-streams 8] [--idle-timeout 10]
    python sphinx_stt.py transcribe FILE.wav [--endpointing 300] [--no-interim]

Server: `GET /v1/listen` upgraded to a WebSocket on 127.0.0.1. Refused before the upgrade, as
Deepgram does: no `Authorization` header (or not the `--key`) 401, another path 404, parameters
it cannot serve 400 (`encoding` other than linear16, `sample_rate` other than 8000/16000,
`channels` other than 1), more than `--max-streams` connections 429. Then binary frames are
audio (any length), text frames are `KeepAlive`, `Finalize`, `CloseStream`; anything else is
logged and ignored. Out: `SpeechStarted` (vad_events), `Results` (interim while a segment runs
with interim_results, final at its end: `is_final` and, when endpointing found the pause,
`speech_final`), `UtteranceEnd` (utterance_end_ms after the last word), and at `CloseStream`
the last results, `Metadata`, and a 1000 close. No audio and no message for `--idle-timeout`
seconds closes with 1011 (Deepgram's NET-0001). The first stdout line is
`listening on 127.0.0.1:<port>`, printed once a recogniser has loaded its model.

Each connection gets its own recogniser process (`sphinx_stt.py worker`, one kept warm for the
next connection): pocketsphinx holds the GIL while it decodes (two streams in two threads ran
slower than one after the other), so processes are what lets concurrent calls use the cores.
The worker reads framed messages on stdin (`P` options JSON, `A` audio, `F` finalize, `C`
close; a 1-byte kind and a 4-byte big-endian length) and writes one JSON event per line.

`transcribe` runs the same `Recognizer` over a WAV file (8 or 16 kHz mono s16le) in 20 ms
chunks and prints JSON lines `{"t", "text", "is_final", "speech_final"}`, `t` being the audio
time at which the server would have sent the result.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import http
import json
import os
import struct
import sys
import uuid
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from recognizer import RATE, Options, Pcm, Recognizer  # noqa: E402

SETUP_HINT = "run `make setup` (it installs the pinned pocketsphinx into .tools/venv)"
MODEL_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "callfleet/pocketsphinx/en-us"))


def log(*parts) -> None:
    print("sphinx_stt:", *parts, file=sys.stderr, flush=True)


def load():
    """pocketsphinx's decoder (bundled en-us model) and VAD; exits naming `make setup` when the
    package is missing."""
    try:
        import pocketsphinx
    except ImportError as e:
        sys.exit(f"pocketsphinx is not installed ({e}): {SETUP_HINT}")
    decoder = pocketsphinx.Decoder(loglevel="FATAL")
    vad = pocketsphinx.Vad(pocketsphinx.Vad.LOOSE, RATE, 0.03)
    return decoder, vad


def model_info() -> dict:
    try:
        from importlib.metadata import version

        v = version("pocketsphinx")
    except Exception:  # metadata missing: still a valid, if vaguer, answer
        v = "unknown"
    return {"name": "pocketsphinx-en-us", "version": v, "arch": "pocketsphinx"}


# --- query parameters -----------------------------------------------------------------------


def truthy(v: str | None) -> bool:
    return (v or "").strip().lower() == "true"


def parse_query(q: dict[str, str]) -> tuple[Options, int]:
    """Options and input sample rate from Deepgram's query parameters; ValueError says what
    this server cannot serve (answered 400)."""
    encoding = q.get("encoding", "linear16").lower()
    if encoding != "linear16":
        raise ValueError(f"encoding {encoding!r} is not served (only linear16)")
    try:
        rate = int(q.get("sample_rate", "16000"))
        channels = int(q.get("channels", "1"))
    except ValueError:
        raise ValueError("sample_rate and channels must be integers") from None
    if rate not in (8000, 16000):
        raise ValueError(f"sample_rate {rate} is not served (8000 or 16000)")
    if channels != 1:
        raise ValueError(f"channels {channels} is not served (mono only)")
    endpointing: int | None = 10
    raw = q.get("endpointing")
    if raw is not None:
        if raw.lower() == "false":
            endpointing = None
        elif raw.lower() != "true":
            try:
                endpointing = max(0, int(raw))
            except ValueError:
                raise ValueError(f"endpointing {raw!r} is neither false nor milliseconds") from None
    utterance_end = None
    if q.get("utterance_end_ms"):
        try:
            utterance_end = max(1000, int(q["utterance_end_ms"]))
        except ValueError:
            raise ValueError("utterance_end_ms must be an integer") from None
    interim = truthy(q.get("interim_results"))
    return (
        Options(
            interim_results=interim,
            endpointing_ms=endpointing,
            # Deepgram computes UtteranceEnd from interim results and needs them on.
            utterance_end_ms=utterance_end if interim else None,
            vad_events=truthy(q.get("vad_events")),
        ),
        rate,
    )


# --- the worker: one recogniser per connection ----------------------------------------------


def worker() -> None:
    decoder, vad = load()
    out = sys.stdout
    out.write('{"kind": "ready"}\n')
    out.flush()
    src = sys.stdin.buffer
    rec: Recognizer | None = None
    pcm = Pcm(RATE)
    while True:
        head = src.read(5)
        if len(head) < 5:
            return
        kind, n = head[:1], struct.unpack(">I", head[1:])[0]
        body = src.read(n)
        events: list[dict] = []
        if kind == b"P":
            spec = json.loads(body)
            rec = Recognizer(decoder, vad, Options(**spec["options"]))
            pcm = Pcm(spec["sample_rate"])
        elif rec is None:
            continue
        elif kind == b"A":
            events = rec.feed(pcm.feed(body))
        elif kind == b"F":
            events = rec.finalize(from_finalize=True)
        elif kind == b"C":
            events = rec.finalize(from_finalize=False)
            events.append({"kind": "closed", "at": rec.now()})
        for e in events:
            out.write(json.dumps(e) + "\n")
        out.flush()
        if kind == b"C":
            return


class Worker:
    """A running `worker` process, once its model is loaded."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    @classmethod
    async def spawn(cls) -> "Worker":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        line = await proc.stdout.readline()
        if b"ready" not in line:
            await proc.wait()
            raise RuntimeError(f"the recogniser did not start (exit {proc.returncode}): {SETUP_HINT}")
        return cls(proc)

    def send(self, kind: bytes, body: bytes = b"") -> None:
        self.proc.stdin.write(kind + struct.pack(">I", len(body)) + body)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


# --- the server -----------------------------------------------------------------------------


class Server:
    def __init__(self, args):
        self.key = args.key
        self.max_streams = args.max_streams
        self.idle = args.idle_timeout
        self.live = 0
        self.spare: asyncio.Task | None = None
        self.info = model_info()

    def warm(self) -> None:
        self.spare = asyncio.ensure_future(Worker.spawn())

    async def take_worker(self) -> Worker:
        task, self.spare = self.spare, None
        self.warm()
        return await task

    def refuse(self, status: http.HTTPStatus, code: str, msg: str):
        body = json.dumps({"err_code": code, "err_msg": msg, "request_id": str(uuid.uuid4())})
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        headers = Headers([("Content-Type", "application/json"), ("dg-error", msg)])
        return Response(status.value, status.phrase, headers, body.encode())

    def check(self, connection, request):
        """Deepgram's refusals before the upgrade; on success the options ride on the
        connection."""
        from urllib.parse import parse_qsl, urlsplit

        url = urlsplit(request.path)
        if url.path.rstrip("/") != "/v1/listen":
            return self.refuse(http.HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route {url.path}")
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip() or (
            self.key is not None and token.strip() != self.key
        ):
            return self.refuse(http.HTTPStatus.UNAUTHORIZED, "INVALID_AUTH", "Invalid credentials.")
        try:
            connection.sphinx = parse_query(dict(parse_qsl(url.query)))
        except ValueError as e:
            return self.refuse(http.HTTPStatus.BAD_REQUEST, "Bad Request", str(e))
        if self.live >= self.max_streams:
            return self.refuse(
                http.HTTPStatus.TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS",
                f"more than {self.max_streams} concurrent streams",
            )
        connection.request_id = str(uuid.uuid4())
        return None

    def stamp(self, connection, request, response):
        rid = getattr(connection, "request_id", None)
        if rid:
            response.headers["dg-request-id"] = rid
        return response

    async def handle(self, ws) -> None:
        self.live += 1
        try:
            await self.stream(ws)
        finally:
            self.live -= 1

    async def stream(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        options, rate = ws.sphinx
        rid = ws.request_id
        try:
            w = await self.take_worker()
        except Exception as e:  # the model failed to load: tell the client, as Deepgram would
            log("worker failed:", e)
            await ws.close(1011, "recogniser unavailable")
            return
        w.send(b"P", json.dumps({"options": options.__dict__, "sample_rate": rate}).encode())
        sha = hashlib.sha256()
        received = 0
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        closed = asyncio.Event()

        async def results() -> None:
            while line := await w.proc.stdout.readline():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e["kind"] == "closed":
                    closed.set()
                    return
                msg = self.message(e, rid)
                if msg is not None:
                    await ws.send(json.dumps(msg))

        reader = asyncio.ensure_future(results())
        try:
            while True:
                try:
                    msg = await asyncio.wait_for(ws.recv(), self.idle)
                except asyncio.TimeoutError:
                    await ws.close(1011, f"NET-0001: no audio or message for {self.idle:g} s")
                    return
                if isinstance(msg, bytes):
                    received += len(msg)
                    sha.update(msg)
                    w.send(b"A", msg)
                    await w.proc.stdin.drain()
                    continue
                kind = control(msg)
                if kind == "Finalize":
                    w.send(b"F")
                elif kind == "CloseStream":
                    w.send(b"C")
                    await w.proc.stdin.drain()
                    await asyncio.wait_for(reader, 30)
                    if closed.is_set():
                        await ws.send(json.dumps({
                            "type": "Metadata", "transaction_key": "deprecated",
                            "request_id": rid, "sha256": sha.hexdigest(), "created": created,
                            "duration": round(received / 2 / rate, 3), "channels": 1,
                            "models": [MODEL_UUID], "model_info": {MODEL_UUID: self.info},
                        }))
                    await ws.close(1000)
                    return
                elif kind != "KeepAlive":
                    log("ignored text message:", repr(msg[:80]))
        except ConnectionClosed:
            return
        except (BrokenPipeError, ConnectionResetError, asyncio.TimeoutError) as e:
            log("recogniser lost:", repr(e))
            await ws.close(1011, "recogniser lost")
        finally:
            reader.cancel()
            w.kill()

    def message(self, e: dict, rid: str) -> dict | None:
        if e["kind"] == "speech_started":
            return {"type": "SpeechStarted", "channel": [0], "timestamp": e["timestamp"]}
        if e["kind"] == "utterance_end":
            return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": e["last_word_end"]}
        if e["kind"] != "result":
            return None
        words = [dict(w, punctuated_word=w["word"]) for w in e["words"]]
        conf = sum(w["confidence"] for w in words) / len(words) if words else 0.0
        return {
            "type": "Results", "channel_index": [0, 1], "duration": e["duration"],
            "start": e["start"], "is_final": e["is_final"], "speech_final": e["speech_final"],
            "from_finalize": e["from_finalize"],
            "channel": {"alternatives": [
                {"transcript": e["text"], "confidence": round(conf, 3), "words": words}
            ]},
            "metadata": {"request_id": rid, "model_uuid": MODEL_UUID, "model_info": self.info},
        }


def control(text: str) -> str | None:
    """The `type` of a control message, or None when it is not one (not JSON, not an object)."""
    try:
        v = json.loads(text)
    except ValueError:
        return None
    return v.get("type") if isinstance(v, dict) else None


async def serve(args) -> None:
    from websockets.asyncio.server import serve as ws_serve

    server = Server(args)
    server.warm()
    try:
        await asyncio.shield(server.spare)
    except Exception as e:
        sys.exit(str(e))
    async with ws_serve(
        server.handle, "127.0.0.1", args.port, process_request=server.check,
        process_response=server.stamp, max_size=1 << 22, ping_interval=None,
    ) as ws:
        port = ws.sockets[0].getsockname()[1] if hasattr(ws, "sockets") else args.port
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


# --- the CLI --------------------------------------------------------------------------------


def transcribe(args) -> None:
    try:
        w = wave.open(args.file, "rb")
    except (OSError, wave.Error) as e:
        sys.exit(f"cannot read {args.file}: {e}")
    with w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() not in (8000, 16000):
            sys.exit(
                f"{args.file}: need mono 16-bit 8 or 16 kHz, got {w.getnchannels()} ch "
                f"{8 * w.getsampwidth()}-bit {w.getframerate()} Hz"
            )
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    decoder, vad = load()
    options = Options(
        interim_results=not args.no_interim, endpointing_ms=args.endpointing,
        utterance_end_ms=None, vad_events=False,
    )
    rec, pcm = Recognizer(decoder, vad, options), Pcm(rate)
    step = rate // 50 * 2
    events: list[dict] = []
    for i in range(0, len(data), step):
        events += rec.feed(pcm.feed(data[i : i + step]))
    events += rec.finalize(from_finalize=False)
    for e in events:
        if e["kind"] == "result":
            print(json.dumps({"t": round(e["at"], 3), "text": e["text"],
                              "is_final": e["is_final"], "speech_final": e["speech_final"]}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "transcribe":
        p = argparse.ArgumentParser(prog="sphinx_stt.py transcribe")
        p.add_argument("file")
        p.add_argument("--endpointing", type=int, default=300)
        p.add_argument("--no-interim", action="store_true")
        transcribe(p.parse_args(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(prog="sphinx_stt.py")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", default=None, help="the only API key accepted (default: any)")
    p.add_argument("--max-streams", type=int, default=8)
    p.add_argument("--idle-timeout", type=float, default=10.0)
    try:
        asyncio.run(serve(p.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
