#!/usr/bin/env python3
"""The VAD bench's corpus (tests/benches/vad_bench.rs), made here, nothing downloaded.

Every clip is what the engine hears from a phone callee: built at 8 kHz, band-limited to the
telephone band (300-3400 Hz), sent through a G.711 mu-law round trip, and resampled to 16 kHz
s16le. Each clip has a ground truth per 20 ms frame (320 samples at 16 kHz):

- `noise`, `music`, `tones`: no speech at all.
- `chatter`: far-field background talkers (several espeak-ng voices mixed, reverberated,
  attenuated). Acoustically this is speech, but it is not the callee: the right answer for
  barge-in is *no speech*, so every frame is labelled 0 and any StartOfSpeech counts as
  spurious.
- `quiet`: the callee's own speech at -35...-45 dBFS active level (and one clip at -26 dBFS as a
  reference), with and without line noise. A frame is speech when the clean speech's 20 ms
  energy is within 30 dB of its loudest frame (gaps under 60 ms inside a word are filled);
  each spoken sentence is one utterance.

Deterministic: sox runs with -R (fixed seeds) and without dither (-D), espeak-ng is
deterministic, and the one random choice here (clicks) uses a seeded `random.Random`.

Usage: vad_corpus.py OUT_DIR   (writes OUT_DIR/<clip>.s16 and OUT_DIR/manifest.json)
Needs espeak-ng and sox: `apt-get install espeak-ng sox` (make setup installs both).
"""

import array
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

LINE_RATE = 8000
OUT_RATE = 16000
FRAME_LINE = LINE_RATE // 50  # 20 ms at 8 kHz
FRAME_OUT = OUT_RATE // 50  # 20 ms at 16 kHz, the bench's frame

# What a callee says: short answers matter most for barge-in ("yes", "hello?").
SENTENCES = [
    "Hello?",
    "Yes, speaking.",
    "Who is this?",
    "I'm not interested, thank you.",
    "Can you call back later?",
    "Sorry, I didn't catch that.",
    "Yes.",
    "No, that's not right.",
    "What is this about?",
    "Okay, go ahead.",
    "Wait, hold on a second.",
    "My appointment is on Tuesday at nine.",
]
# Background talkers: longer, continuous text.
CHATTER = [
    "So I told him the meeting was moved to Thursday and he just looked at me.",
    "Did you see the game last night? They were down by ten at the half.",
    "We need more paper for the printer upstairs, can somebody order it?",
    "The kids are coming over on Sunday, I still have to buy groceries.",
    "I think the train was late again this morning, it always is on Mondays.",
    "Put it on the table by the window, I will look at it after lunch.",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m3", "en-gb-scotland+f2", "en-029"]


def die(msg):
    print(f"vad_corpus.py: {msg}", file=sys.stderr)
    sys.exit(1)


def run(args):
    r = subprocess.run(args, capture_output=True)
    if r.returncode != 0:
        die(f"{' '.join(args)} failed: {r.stderr.decode(errors='replace').strip()}")


class Work:
    """A scratch directory and the sox/espeak-ng calls that use it."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.n = 0

    def path(self, ext):
        self.n += 1
        return os.path.join(self.tmp, f"t{self.n}.{ext}")

    def read(self, path):
        a = array.array("h")
        with open(path, "rb") as f:
            a.frombytes(f.read())
        if sys.byteorder != "little":
            a.byteswap()
        return [float(s) for s in a]

    def synth(self, seconds, *spec):
        """sox -n synth: one mono 8 kHz track (several tones are mixed with remix -)."""
        out = self.path("raw")
        run(["sox", "-R", "-D", "-n", "-r", str(LINE_RATE), "-b", "16", "-e", "signed",
             "-c", "1", "-t", "raw", out, "synth", str(seconds), *spec])
        return self.read(out)

    def synth_mix(self, seconds, tones, fade=0.01):
        spec = []
        for kind, hz in tones:
            spec += [kind, f"{hz:.2f}"]
        out = self.path("raw")
        run(["sox", "-R", "-D", "-n", "-r", str(LINE_RATE), "-b", "16", "-e", "signed",
             "-t", "raw", out, "synth", str(seconds), *spec, "remix", "-",
             "fade", "q", str(fade), str(seconds), str(fade)])
        return self.read(out)

    def speak(self, text, voice, speed=160, pitch=50):
        wav = self.path("wav")
        out = self.path("raw")
        run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text])
        run(["sox", "-R", "-D", wav, "-r", str(LINE_RATE), "-b", "16", "-e", "signed",
             "-c", "1", "-t", "raw", out])
        return trim(self.read(out))

    def effect(self, samples, *fx):
        """Run sox effects over a track (reverb, filters)."""
        src = self.path("raw")
        out = self.path("raw")
        write_s16(src, samples, LINE_RATE)
        run(["sox", "-R", "-D", "-t", "raw", "-r", str(LINE_RATE), "-b", "16", "-e", "signed",
             "-c", "1", src, "-t", "raw", out, *fx])
        return self.read(out)

    def band(self, samples):
        """The telephone band (300-3400 Hz), applied before a level is set, so that a level
        names what the callee's line carries."""
        return self.effect(samples, "sinc", "300-3400")[: len(samples)]

    def phone_line(self, samples, out_path):
        """Telephone band, G.711 mu-law round trip at 8 kHz, then 16 kHz as the engine sees it."""
        src = self.path("raw")
        ulaw = self.path("ul")
        write_s16(src, samples, LINE_RATE)
        run(["sox", "-R", "-D", "-t", "raw", "-r", str(LINE_RATE), "-b", "16", "-e", "signed",
             "-c", "1", src, "-t", "raw", "-e", "mu-law", "-b", "8", ulaw, "sinc", "300-3400"])
        run(["sox", "-R", "-D", "-t", "raw", "-r", str(LINE_RATE), "-e", "mu-law", "-b", "8",
             "-c", "1", ulaw, "-t", "raw", "-r", str(OUT_RATE), "-b", "16", "-e", "signed",
             out_path])


def write_s16(path, samples, _rate):
    a = array.array("h", (max(-32768, min(32767, int(round(s)))) for s in samples))
    if sys.byteorder != "little":
        a.byteswap()
    with open(path, "wb") as f:
        f.write(a.tobytes())


def trim(x, floor=64.0):
    """Drop espeak-ng's leading and trailing silence, so placement is exact."""
    idx = [i for i, s in enumerate(x) if abs(s) > floor]
    return x[idx[0]: idx[-1] + 1] if idx else []


def silence(seconds):
    return [0.0] * int(seconds * LINE_RATE)


def rms_db(x):
    if not x:
        return -100.0
    p = sum(s * s for s in x) / len(x)
    return 10 * math.log10(p / (32768.0 ** 2)) if p > 0 else -100.0


def scale_to(x, target_db, measured_db=None):
    cur = rms_db(x) if measured_db is None else measured_db
    g = 10 ** ((target_db - cur) / 20)
    return [s * g for s in x]


def mix(*tracks):
    n = max(len(t) for t in tracks)
    out = [0.0] * n
    for t in tracks:
        for i, s in enumerate(t):
            out[i] += s
    return out


def fit(x, n):
    """Loop or cut a track to n samples."""
    if not x:
        return [0.0] * n
    return [x[i % len(x)] for i in range(n)]


def frame_db(x):
    return [rms_db(x[i: i + FRAME_LINE]) for i in range(0, len(x) - FRAME_LINE + 1, FRAME_LINE)]


def speech_labels(clean, frames):
    """Per 20 ms frame: 1 where the clean speech is within 30 dB of its loudest frame."""
    db = frame_db(clean)
    peak = max(db) if db else -100.0
    lab = [1 if d > -90 and d >= peak - 30 else 0 for d in db]
    lab = (lab + [0] * frames)[:frames]
    # Fill gaps up to 3 frames (60 ms) between speech frames: stops and closures inside words.
    i = 0
    while i < frames:
        if lab[i] == 0:
            j = i
            while j < frames and lab[j] == 0:
                j += 1
            if 0 < i and j < frames and j - i <= 3:
                for k in range(i, j):
                    lab[k] = 1
            i = j
        else:
            i += 1
    return lab


def active_level(clean, labels):
    """The speech's active level: RMS over its labelled frames (dBFS)."""
    sel = []
    for f, l in enumerate(labels):
        if l:
            sel.extend(clean[f * FRAME_LINE: (f + 1) * FRAME_LINE])
    return rms_db(sel)


class Corpus:
    def __init__(self, out_dir, work):
        self.out = out_dir
        self.w = work
        self.clips = []

    def add(self, name, category, samples, labels=None, utterances=(), note=""):
        frames = len(samples) // FRAME_LINE
        samples = samples[: frames * FRAME_LINE]
        labels = labels if labels is not None else [0] * frames
        path = os.path.join(self.out, f"{name}.s16")
        self.w.phone_line(samples, path)
        heard = self.w.read(path)
        self.clips.append({
            "name": name,
            "category": category,
            "file": f"{name}.s16",
            "sample_rate": OUT_RATE,
            "frame_samples": FRAME_OUT,
            # What the engine hears, after the line (the whole clip, silences included).
            "level_dbfs": round(rms_db(heard), 1),
            "note": note,
            "labels": "".join(str(l) for l in labels[:frames]),
            "utterances": [list(u) for u in utterances],
        })

    def write_manifest(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as f:
            json.dump({"version": 1, "clips": self.clips}, f, indent=1)


def hz(midi):
    return 440.0 * 2 ** ((midi - 69) / 12)


def noise_clips(c, w):
    for color in ["whitenoise", "pinknoise", "brownnoise"]:
        base = w.band(w.synth(10, color))
        for level in [-50, -40, -30]:
            c.add(f"noise-{color[:-5]}-{-level}", "noise", scale_to(base, level),
                  note=f"{color[:-5]} noise at {level} dBFS")
    for mains in [50, 60]:
        # Mains hum: the fundamental and its odd harmonics, as a ground loop makes them.
        tone = w.band(w.synth_mix(10, [("sine", mains), ("sine", mains * 3), ("sine", mains * 5),
                                ("sine", mains * 7)]))
        for level in [-40, -30]:
            c.add(f"hum-{mains}hz-{-level}", "noise", scale_to(tone, level),
                  note=f"{mains} Hz hum with odd harmonics at {level} dBFS")
    # A line whose noise steps up and down (a crackly or fading line) with clicks on it.
    pink = w.band(w.synth(12, "pinknoise"))
    steps = []
    for i, level in enumerate([-55, -38, -50, -35, -55, -42]):
        steps += scale_to(pink[i * 2 * LINE_RATE: (i + 1) * 2 * LINE_RATE], level)
    rng = random.Random(13)
    for _ in range(40):
        at = rng.randrange(0, len(steps) - 40)
        amp = rng.uniform(3000, 12000) * rng.choice([-1, 1])
        for k in range(40):  # 5 ms decaying click
            steps[at + k] += amp * math.exp(-k / 8)
    c.add("noise-steps-clicks", "noise", steps, note="pink noise stepping -55..-35 dBFS every 2 s, 40 clicks")


def music_clips(c, w):
    # Three hold-music loops: a pad chord per bar, an arpeggio in eighths, a melody in quarters.
    progressions = {
        "pop": [(48, [0, 4, 7]), (45, [0, 3, 7]), (41, [0, 4, 7]), (43, [0, 4, 7])],
        "minor": [(45, [0, 3, 7]), (41, [0, 4, 7]), (48, [0, 4, 7]), (43, [0, 4, 7])],
        "jazz": [(50, [0, 3, 7, 10]), (43, [0, 4, 7, 10]), (48, [0, 4, 7, 11]), (45, [0, 3, 7, 10])],
    }
    melodies = {
        "pop": [76, 74, 72, 74, 76, 76, 76, 79],
        "minor": [69, 72, 76, 74, 72, 71, 69, 64],
        "jazz": [74, 77, 81, 79, 76, 74, 72, 71],
    }
    for style, prog in progressions.items():
        track = []
        mel = melodies[style]
        for bar in range(8):  # 8 bars of 2 s
            root, chord = prog[bar % len(prog)]
            pad = w.synth_mix(2, [("triangle", hz(root + i)) for i in chord], fade=0.05)
            arp = []
            for k in range(8):
                note = root + 12 + chord[k % len(chord)] + (12 if k >= 4 else 0)
                arp += w.synth_mix(0.25, [("pluck", hz(note))], fade=0.005)
            melody = []
            for k in range(4):
                melody += w.synth_mix(0.5, [("sine", hz(mel[(bar * 4 + k) % len(mel)]))], fade=0.02)
            track += mix(scale_to(pad, -30), scale_to(arp, -28), scale_to(melody, -24))
        for level in [-20, -30]:
            c.add(f"music-{style}-{-level}", "music", scale_to(w.band(track), level),
                  note=f"synthesised hold music ({style}) at {level} dBFS")


def tone_clips(c, w):
    dtmf_low = {"1": 697, "2": 697, "3": 697, "4": 770, "5": 770, "6": 770, "7": 852, "8": 852,
                "9": 852, "0": 941, "*": 941, "#": 941}
    dtmf_high = {"1": 1209, "2": 1336, "3": 1477, "4": 1209, "5": 1336, "6": 1477, "7": 1209,
                 "8": 1336, "9": 1477, "0": 1336, "*": 1209, "#": 1477}
    dtmf = silence(0.5)
    for d in "5551234#0*98":
        dtmf += w.synth_mix(0.1, [("sine", dtmf_low[d]), ("sine", dtmf_high[d])], fade=0.003)
        dtmf += silence(0.1)
    dtmf += silence(1.0)
    c.add("tones-dtmf", "tones", scale_to(dtmf, -16), note="DTMF digits, 100 ms on/off")

    def cadence(tones, on, off, total):
        t = []
        while len(t) < total * LINE_RATE:
            t += w.synth_mix(on, [("sine", f) for f in tones], fade=0.005) + silence(off)
        return t[: int(total * LINE_RATE)]

    c.add("tones-dial", "tones", scale_to(cadence([350, 440], 8, 0, 8), -20), note="dial tone 350+440 Hz")
    c.add("tones-busy", "tones", scale_to(cadence([480, 620], 0.5, 0.5, 8), -20), note="busy 480+620 Hz, 0.5 s on/off")
    c.add("tones-ringback", "tones", scale_to(cadence([440, 480], 2, 4, 12), -20), note="ringback 440+480 Hz, 2 s on, 4 s off")
    sit = []
    for _ in range(3):
        for f, d in [(913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380)]:
            sit += w.synth_mix(d, [("sine", f)], fade=0.005)
        sit += silence(1.5)
    c.add("tones-sit", "tones", scale_to(sit, -20), note="special information tones, three times")
    c.add("tones-fax-cng", "tones", scale_to(cadence([1100], 0.5, 3, 10), -18), note="fax CNG 1100 Hz, 0.5 s on, 3 s off")
    c.add("tones-modem-2100", "tones", scale_to(cadence([2100], 3.3, 1, 8), -18), note="answer tone 2100 Hz")


def talker(w, voice_i, text_i, seconds):
    """One background talker: sentences in one voice with short pauses, looped to length."""
    voice = VOICES[voice_i % len(VOICES)]
    t = []
    k = text_i
    while len(t) < seconds * LINE_RATE:
        t += w.speak(CHATTER[k % len(CHATTER)], voice, speed=170 + 10 * (voice_i % 3),
                     pitch=35 + 10 * voice_i) + silence(0.3 + 0.1 * (k % 3))
        k += 1
    return t[: int(seconds * LINE_RATE)]


def chatter_clips(c, w):
    seconds = 15
    talkers = [scale_to(talker(w, i, i, seconds), -30) for i in range(4)]
    for n, level in [(4, -45), (4, -40), (3, -35), (1, -40)]:
        room = mix(*talkers[:n])
        # Far field: a reverberant room, then the phone's own band-limit does the rest.
        wet = w.effect(room, "reverb", "60", "50", "100", "100", "20")
        name = f"chatter-{n}talker{'s' if n > 1 else ''}-{-level}"
        c.add(name, "chatter", scale_to(w.band(wet[: len(room)]), level),
              note=f"{n} far-field talker{'s' if n > 1 else ''}, reverberated, at {level} dBFS; labelled non-speech (not the callee)")


def quiet_clips(c, w):
    # One script of utterances, each a sentence in a voice, 1.2..2 s apart.
    clean = silence(1.0)
    spans = []
    for i, text in enumerate(SENTENCES):
        s = w.speak(text, VOICES[i % len(VOICES)], speed=150 + 5 * (i % 4), pitch=40 + 5 * (i % 5))
        spans.append((len(clean), len(clean) + len(s)))
        clean += s + silence(1.2 + 0.2 * (i % 5))
    clean = w.band(clean)
    frames = len(clean) // FRAME_LINE
    labels = speech_labels(clean, frames)
    level = active_level(clean, labels)
    utterances = []
    for a, b in spans:
        fa, fb = a // FRAME_LINE, (b + FRAME_LINE - 1) // FRAME_LINE
        on = [f for f in range(fa, min(fb, frames)) if labels[f]]
        if on:
            utterances.append((on[0], on[-1] + 1))
    pink = w.band(w.synth(len(clean) / LINE_RATE + 1, "pinknoise"))
    brown = w.band(w.synth(len(clean) / LINE_RATE + 1, "brownnoise"))
    hum = w.band(w.synth_mix(len(clean) / LINE_RATE + 1, [("sine", 60), ("sine", 180), ("sine", 300), ("sine", 420)]))
    variants = [("clean", None, None), ("pink55", pink, -55), ("brown50", brown, -50), ("hum60-50", hum, -50)]
    for target in [-26, -35, -40, -45]:
        for vname, noise, nlevel in variants:
            if target == -26 and vname != "clean":
                continue
            speech = scale_to(clean, target, measured_db=level)
            parts = [speech]
            if noise is not None:
                parts.append(scale_to(fit(noise, len(clean)), nlevel))
            note = f"speech at {target} dBFS active level" + (f", {vname[:-2]} noise at {nlevel} dBFS" if noise else "")
            c.add(f"speech-{-target}-{vname}", "quiet" if target <= -35 else "reference",
                  mix(*parts), labels=labels, utterances=utterances, note=note)


def main():
    if len(sys.argv) != 2:
        die("usage: vad_corpus.py OUT_DIR")
    for tool in ["sox", "espeak-ng"]:
        if shutil.which(tool) is None:
            die(f"{tool} is missing: run `apt-get install espeak-ng sox` (make setup does)")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        w = Work(tmp)
        c = Corpus(out, w)
        noise_clips(c, w)
        music_clips(c, w)
        tone_clips(c, w)
        chatter_clips(c, w)
        quiet_clips(c, w)
        c.write_manifest()
    secs = sum(len(x["labels"]) for x in c.clips) / 50
    print(f"vad_corpus.py: {len(c.clips)} clips, {secs:.0f} s, in {out}")


if __name__ == "__main__":
    main()
