"""Streaming recognition with pocketsphinx: 16 kHz s16le in, segments, interim and final
hypotheses out, every event stamped with the audio time at which it was decided.

One `Recognizer` is one stream (one Deepgram connection, or one file of the `transcribe` CLI):
the server's worker process and the CLI run exactly this code, so a benchmark of the CLI
measures what the server sends.

Segmentation: pocketsphinx's WebRTC VAD (`Vad`, 30 ms frames) opens a segment when 3 of the
last 5 frames are speech, with 300 ms of audio before it (the decoder needs the onset and some
silence), and closes it after `endpointing` ms of non-speech (at least `MIN_ENDPOINT_MS`: the
VAD decides per 30 ms, and pocketsphinx decodes each segment as its own utterance, so
Deepgram's 10 ms default would cut phrases into words it cannot recognise alone).

Why priming: pocketsphinx normalises features by a running cepstral mean (live CMN). A fresh
decoder's mean is the model's generic guess, far from an 8 kHz phone line, and its first live
pass over a phrase is mostly wrong ("please who to shoot and alone" for "please leave a message
after the tone"). So a stream's first segment is held until `PRIME_S` of it has arrived (or it
ends), the mean is computed over that audio without searching (`no_search`, `full_utt`: cheap),
and only then is the segment decoded live from its start; the mean then carries over to every
later segment. A second full pass at each final was as accurate but cost one more decode of
the whole segment after the pause (2.7 s of latency for a 3 s phrase on a loaded machine).
"""

from __future__ import annotations

import re
from array import array
from collections import deque
from dataclasses import dataclass

RATE = 16000
VAD_FRAME_SAMPLES = 480  # 30 ms at 16 kHz
VAD_FRAME_BYTES = VAD_FRAME_SAMPLES * 2
START_WINDOW = 5  # frames looked at to open a segment
START_SPEECH = 3  # of which this many must be speech
PREROLL_FRAMES = 10  # 300 ms of audio before the segment's first speech frame
MIN_ENDPOINT_MS = 150
# Frames quieter than this (RMS of s16 samples, about -50 dBFS) are never speech: the VAD's
# loosest mode calls near-digital silence speech, and a segment of silence would spend the
# second pass (below) on a cepstral mean of nothing.
SILENCE_RMS = 100
NO_ENDPOINT_MS = 300  # with endpointing=false a segment still ends, but never `speech_final`
INTERIM_EVERY_S = 0.25
MAX_SEGMENT_S = 12.0
PRIME_S = 1.0

_SKIP = {"<s>", "</s>", "<sil>"}
_ALT = re.compile(r"\(\d+\)$")


@dataclass
class Options:
    """What the client asked for (Deepgram's query parameters that change the results)."""

    interim_results: bool = False
    # Silence (ms) that ends a segment with `speech_final: true`; None: endpointing=false.
    endpointing_ms: int | None = 10
    utterance_end_ms: int | None = None
    vad_events: bool = False

    def segment_end_ms(self) -> int:
        if self.endpointing_ms is None:
            return NO_ENDPOINT_MS
        return max(self.endpointing_ms, MIN_ENDPOINT_MS)


def word_of(raw: str) -> str | None:
    """A dictionary word as a transcript word: no `(2)` pronunciation marks, no silences or
    fillers (`<sil>`, `[NOISE]`, `++UH++`)."""
    if raw in _SKIP or raw.startswith("[") or raw.startswith("++"):
        return None
    return _ALT.sub("", raw)


def rms(frame: bytes) -> float:
    a = array("h", frame)
    return (sum(x * x for x in a) / max(1, len(a))) ** 0.5


class Pcm:
    """Arbitrary byte chunks to whole 16 kHz samples: a stray odd byte waits for the next
    chunk, and 8 kHz input is upsampled by linear interpolation (continuous across chunks)."""

    def __init__(self, sample_rate: int):
        self.rate = sample_rate
        self.odd = b""
        self.prev = 0

    def feed(self, data: bytes) -> bytes:
        data = self.odd + data
        cut = len(data) - len(data) % 2
        self.odd = data[cut:]
        if self.rate == RATE or cut == 0:
            return data[:cut]
        src = array("h", data[:cut])
        out = array("h", bytes(4 * len(src)))
        prev = self.prev
        for i, s in enumerate(src):
            out[2 * i] = (prev + s) // 2
            out[2 * i + 1] = s
            prev = s
        self.prev = prev
        return out.tobytes()


class Recognizer:
    """One stream. `feed` takes 16 kHz s16le bytes (any length); `finalize` flushes the open
    segment (Deepgram's `Finalize` and `CloseStream`). Both return events as dicts:

    - `{"kind": "speech_started", "at", "timestamp"}` (only with `vad_events`)
    - `{"kind": "result", "at", "start", "duration", "text", "words", "is_final",
       "speech_final", "from_finalize"}`, words as `{"word", "start", "end", "confidence"}`
    - `{"kind": "utterance_end", "at", "last_word_end"}` (only with `utterance_end_ms`)

    `at` is the audio time (s) at which the event was decided.
    """

    def __init__(self, decoder, vad, options: Options):
        self.d = decoder
        self.vad = vad
        self.o = options
        self.pending = b""
        self.samples = 0  # audio consumed, at 16 kHz
        self.preroll: deque[bytes] = deque(maxlen=PREROLL_FRAMES)
        self.recent: deque[bool] = deque(maxlen=START_WINDOW)
        self.in_seg = False
        self.seg_start = 0  # sample
        self.seg_audio = bytearray()
        self.silent_frames = 0
        self.next_interim = 0.0
        self.last_interim = ""
        self.last_word_end: float | None = None
        self.utterance_open = False
        self.settled = False  # the cepstral mean was primed on a whole PRIME_S of speech
        self.priming = False
        self.primed_s = 0.0

    def now(self) -> float:
        return self.samples / RATE

    def feed(self, pcm: bytes) -> list[dict]:
        out: list[dict] = []
        data = self.pending + pcm
        whole = len(data) - len(data) % VAD_FRAME_BYTES
        self.pending = data[whole:]
        for i in range(0, whole, VAD_FRAME_BYTES):
            self._frame(data[i : i + VAD_FRAME_BYTES], out)
        return out

    def finalize(self, from_finalize: bool) -> list[dict]:
        out: list[dict] = []
        tail, self.pending = self.pending, b""
        if self.in_seg:
            if tail:
                self.samples += len(tail) // 2
                self.seg_audio += tail
                if not self.priming:
                    self.d.process_raw(tail)
            self._finish(out, speech_final=False, from_finalize=from_finalize)
        else:
            self.samples += len(tail) // 2
        return out

    def _frame(self, frame: bytes, out: list[dict]) -> None:
        self.samples += VAD_FRAME_SAMPLES
        speech = rms(frame) >= SILENCE_RMS and self.vad.is_speech(frame)
        if not self.in_seg:
            self.preroll.append(frame)
            self.recent.append(speech)
            if sum(self.recent) >= START_SPEECH:
                self._open(out)
            else:
                self._maybe_utterance_end(out)
            return
        self.seg_audio += frame
        if not self.priming:
            self.d.process_raw(frame)
        elif len(self.seg_audio) >= PRIME_S * RATE * 2:
            self._prime()
        self.silent_frames = 0 if speech else self.silent_frames + 1
        if self.silent_frames * VAD_FRAME_SAMPLES * 1000 >= self.o.segment_end_ms() * RATE:
            self._finish(out, speech_final=self.o.endpointing_ms is not None, from_finalize=False)
        elif self.now() - self.seg_start / RATE >= MAX_SEGMENT_S:
            # A segment that never pauses is finalised anyway (as Deepgram does), not spoken
            # to its end: `is_final` without `speech_final`, and the next one opens at once.
            self._finish(out, speech_final=False, from_finalize=False)
            self._open(out, announce=False)
        elif self.o.interim_results and not self.priming and self.now() >= self.next_interim:
            self.next_interim = self.now() + INTERIM_EVERY_S
            self._interim(out)

    def _open(self, out: list[dict], announce: bool = True) -> None:
        first_speech = len(self.recent) - list(self.recent).index(True)
        if announce and self.o.vad_events:
            at = self.now()
            out.append(
                {"kind": "speech_started", "at": at,
                 "timestamp": round(at - first_speech * VAD_FRAME_SAMPLES / RATE, 3)}
            )
        audio = b"".join(self.preroll)
        self.seg_start = self.samples - len(audio) // 2
        self.seg_audio = bytearray(audio)
        self.in_seg = True
        self.silent_frames = 0
        self.utterance_open = False
        self.last_interim = ""
        self.next_interim = self.now() + INTERIM_EVERY_S
        self.preroll.clear()
        self.recent.clear()
        self.priming = not self.settled
        if not self.priming:
            self.d.start_utt()
            if audio:
                self.d.process_raw(audio)

    def _prime(self) -> None:
        """The cepstral mean of the segment so far, then the segment decoded live from its start."""
        audio = bytes(self.seg_audio)
        self.d.start_utt()
        self.d.process_raw(audio, no_search=True, full_utt=True)
        self.d.end_utt()
        self.d.start_utt()
        self.d.process_raw(audio)
        self.priming = False
        self.primed_s = len(audio) / 2 / RATE

    def _words(self) -> list[dict]:
        base = self.seg_start / RATE
        words = []
        for s in self.d.seg() or []:
            w = word_of(s.word)
            if w is None:
                continue
            conf = min(1.0, max(0.0, self.d.logmath.exp(s.prob)))
            words.append(
                {"word": w, "start": round(base + s.start_frame / 100, 3),
                 "end": round(base + (s.end_frame + 1) / 100, 3), "confidence": round(conf, 3)}
            )
        return words

    def _result(self, words: list[dict], is_final: bool, speech_final: bool, fin: bool) -> dict:
        start = self.seg_start / RATE
        return {
            "kind": "result", "at": self.now(), "start": round(start, 3),
            "duration": round(self.now() - start, 3),
            "text": " ".join(w["word"] for w in words), "words": words,
            "is_final": is_final, "speech_final": speech_final, "from_finalize": fin,
        }

    def _interim(self, out: list[dict]) -> None:
        hyp = self.d.hyp()
        if hyp is None:
            return
        words = self._words()
        text = " ".join(w["word"] for w in words)
        if text and text != self.last_interim:
            self.last_interim = text
            out.append(self._result(words, False, False, False))

    def _finish(self, out: list[dict], speech_final: bool, from_finalize: bool) -> None:
        if self.priming:
            self._prime()
        self.d.end_utt()
        words = self._words()
        self.in_seg = False
        if words:
            self.settled = self.settled or self.primed_s >= PRIME_S
            self.last_word_end = words[-1]["end"]
            self.utterance_open = self.o.utterance_end_ms is not None
        self.seg_audio = bytearray()
        # An empty final (noise, a cough) never ends the caller's turn.
        out.append(self._result(words, True, speech_final and bool(words), from_finalize))

    def _maybe_utterance_end(self, out: list[dict]) -> None:
        if not self.utterance_open or self.last_word_end is None:
            return
        if (self.now() - self.last_word_end) * 1000 >= (self.o.utterance_end_ms or 0):
            self.utterance_open = False
            out.append(
                {"kind": "utterance_end", "at": self.now(), "last_word_end": self.last_word_end}
            )
