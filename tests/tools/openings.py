#!/usr/bin/env python3
"""A labelled corpus of call openings for the answering-machine detection bench (amd_bench).

Each opening is what the callee's side of an outbound call sounds like from the answer on:
people ("Hello?" and then listening), voicemail greetings of 2-8 s followed by a beep, boxes
that only beep, call screeners, IVR menus, fax machines (CNG and CED), and silence (line noise,
or a line test tone). Speech is espeak-ng (several voices, 130-190 wpm, en/es/fr/de), put
through what a phone line does to it: 8 kHz, line noise mixed at -60 to -30 dBFS (sox
whitenoise/pinknoise), and a G.711 mu-law round trip (sox).

Written to OUT: `<id>.raw` (8 kHz mono s16le; with --wav also `<id>.wav`), `labels.json` (a list of
{id, class, kind, language, text, seconds, events}), and with --transcripts an oracle transcript
per opening in `transcripts/<id>.jsonl` (the words spoken, with ~10 % of them dropped or
misheard, timed like a streaming recogniser: interim results during the speech, a final one
0.3 s after it), the format of tests/standins/sphinx's `transcribe`.

Deterministic: the same --seed gives the same corpus (sox runs with -R). The bench tunes on one
seed and reports on another.

    python3 tests/tools/openings.py --out /tmp/amd --seed 1 [--count 92] [--transcripts]
"""

import argparse
import array
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave

RATE = 8000
INSTALL = "apt-get install espeak-ng sox"

NAMES = ["Sam", "Maria", "David", "Priya", "John", "Alex", "Fatima", "Chris", "Linda", "Tom"]

# (language, espeak voices)
VOICES = {
    "en": ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3", "en-gb-x-rp+f2", "en-029"],
    "es": ["es", "es+f3"],
    "fr": ["fr-fr", "fr-fr+f2"],
    "de": ["de", "de+f4"],
}

PEOPLE = {
    "en": [
        "Hello?", "Hi, this is {name}.", "Yeah?", "Hello, who's calling?", "Hello.", "Yes?",
        "Hi.", "{name} speaking.", "Good morning, this is {name}.", "Hello, {name} here.",
        "Hey.", "Hello, yes?",
    ],
    "es": ["¿Diga?", "¿Sí?", "Hola, ¿quién es?", "Bueno."],
    "fr": ["Allô ?", "Oui, allô ?", "Allô, c'est {name}."],
    "de": ["Hallo?", "Ja, bitte?", "{name}, hallo?"],
}

# What a person says again after waiting in silence.
AGAIN = {"en": ["Hello?", "Hello? Anyone there?"], "es": ["¿Diga?"], "fr": ["Allô ?"], "de": ["Hallo?"]}

GREETINGS = {
    "en": [
        "Hey, it's {name}. Leave a message.",
        "Hi, you've reached {name}. Please leave a message after the tone.",
        "The person you are calling is not available. Please leave a message after the beep.",
        "Hi, this is {name}. I can't take your call right now, but if you leave your name and "
        "number, I'll get back to you as soon as I can.",
        "You have reached the voicemail box of {digits}. Please record your message after the "
        "tone. When you are finished, hang up or press pound for more options.",
        "Hello, you've reached {name} at Acme Plumbing. I'm either on the other line or away "
        "from my desk. Leave a message and I will return your call.",
        "{name} is not available. At the tone, please record your message.",
        "Thanks for calling. Sorry I missed you. Leave a message.",
        "Hi! You have reached {name} and family. We are not home right now, so please leave us "
        "a short message and we will call you back.",
    ],
    "es": [
        "Hola, soy {name}. Deja tu mensaje después del tono.",
        "El número que usted marcó no está disponible. Por favor, deje su mensaje después del "
        "tono.",
    ],
    "fr": [
        "Bonjour, vous êtes bien sur la messagerie de {name}. Laissez un message après le bip.",
        "Votre correspondant n'est pas disponible. Laissez un message après le signal sonore.",
    ],
    "de": [
        "Hallo, hier ist die Mailbox von {name}. Bitte hinterlassen Sie eine Nachricht nach "
        "dem Signalton.",
        "Der Teilnehmer ist zurzeit nicht erreichbar. Bitte sprechen Sie nach dem Ton.",
    ],
}

SCREENERS = {
    "en": [
        "Hi, the person you're calling is using a screening service from Google, and will get "
        "a copy of this conversation. Go ahead and say your name and why you're calling.",
        "Please say your name after the tone, and I'll see if this person is available.",
        "Please state your name and the reason for your call. The person you are calling will "
        "decide whether to pick up.",
        "This call is being screened. Say your name and what you're calling about.",
    ],
    "es": ["Por favor, diga su nombre y el motivo de su llamada."],
    "fr": ["Veuillez dire votre nom et le motif de votre appel."],
}

MENUS = {
    "en": [
        "Thank you for calling Acme Insurance. For sales, press 1. For billing, press 2. To "
        "repeat these options, press 9.",
        "Welcome to City Bank. Please listen carefully, as our menu options have changed. For "
        "account balances, press one. For a representative, press zero.",
        "You have reached Northside Clinic. If this is an emergency, hang up and dial 911. For "
        "appointments, press 1.",
        "Thank you for calling. For English, press 1. Para español, oprima el dos.",
    ],
    "es": ["Gracias por llamar. Para ventas, pulse uno. Para soporte, pulse dos."],
    "de": ["Willkommen bei der Stadtbank. Für Kontoauskünfte drücken Sie bitte die Eins."],
}

CLASSES = [
    # class, count, kind
    ("human", 28),
    ("machine", 28),
    ("beep", 4),
    ("call_screening", 8),
    ("ivr", 8),
    ("fax", 8),
    ("silence", 8),
]

MISHEARD = ["the", "a", "uh", "and", "to", "in", "of", "is", "it", "on"]


def need(tool):
    if shutil.which(tool) is None:
        sys.exit(f"openings.py: {tool} is not installed; install it with: {INSTALL}")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"openings.py: {' '.join(cmd)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


def raw_to_samples(data):
    a = array.array("h")
    a.frombytes(data)
    if sys.byteorder != "little":
        a.byteswap()
    return list(a)


def speak(tmp, text, lang, voice, wpm, pitch):
    """espeak-ng at its own rate, then sox down to 8 kHz s16 (sox's resampler band-limits it)."""
    wav = os.path.join(tmp, "tts.wav")
    run(["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", wav, text])
    data = run(["sox", "-R", wav, "-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed",
                "-b", "16", "-L", "-"])
    samples = raw_to_samples(data)
    # espeak-ng pads its output with silence; the opening's own timeline places the speech.
    voiced = [i for i, v in enumerate(samples) if abs(v) > 150]
    return samples[voiced[0]:voiced[-1] + 1] if voiced else samples


def noise(tmp, seconds, colour, dbfs):
    """Line noise from sox, scaled to an rms level (dBFS)."""
    data = run(["sox", "-R", "-n", "-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed",
                "-b", "16", "-L", "-", "synth", f"{seconds:.3f}", colour, "vol", "0.5"])
    n = raw_to_samples(data)
    rms = math.sqrt(sum(s * s for s in n) / max(1, len(n))) or 1.0
    g = 32767 * 10 ** (dbfs / 20) / rms
    return [s * g for s in n]


def mulaw_round_trip(tmp, samples):
    src = os.path.join(tmp, "in.raw")
    with open(src, "wb") as f:
        f.write(to_bytes(samples))
    fmt = ["-t", "raw", "-r", str(RATE), "-c", "1"]
    ulaw = run(["sox", "-R", *fmt, "-e", "signed", "-b", "16", "-L", src, *fmt, "-e",
                "u-law", "-"])
    ul = os.path.join(tmp, "in.ul")
    with open(ul, "wb") as f:
        f.write(ulaw)
    back = run(["sox", "-R", *fmt, "-e", "u-law", ul, *fmt, "-e", "signed", "-b", "16", "-L",
                "-"])
    return raw_to_samples(back)


def to_bytes(samples):
    a = array.array("h", (max(-32768, min(32767, int(round(s)))) for s in samples))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def tone(freq, seconds, dbfs):
    n = int(seconds * RATE)
    amp = 32767 * 10 ** (dbfs / 20) * math.sqrt(2)
    ramp = int(0.005 * RATE)
    out = []
    for i in range(n):
        g = min(1.0, i / ramp, (n - 1 - i) / ramp) if ramp else 1.0
        out.append(amp * g * math.sin(2 * math.pi * freq * i / RATE))
    return out


def silence(seconds):
    return [0.0] * int(seconds * RATE)


class Opening:
    """A timeline being built: parts appended at the current time, events noted as they go."""

    def __init__(self):
        self.samples = []
        self.events = []
        self.speech = []  # (start_s, end_s, text)

    @property
    def now(self):
        return len(self.samples) / RATE

    def add(self, part, event=None, text=None):
        start = self.now
        self.samples.extend(part)
        if event:
            self.events.append({"what": event, "start": round(start, 3), "end": round(self.now, 3)})
        if text is not None:
            self.speech.append((start, self.now, text))


def scale(samples, dbfs):
    """Scale speech to an rms level (dBFS) over its voiced part."""
    loud = [s for s in samples if abs(s) > 200] or samples or [1]
    rms = math.sqrt(sum(s * s for s in loud) / len(loud)) or 1.0
    g = 32767 * 10 ** (dbfs / 20) / rms
    return [s * g for s in samples]


def build(rng, tmp, cls, index):
    lang = "en"
    o = Opening()
    kind = cls
    text = ""
    pick_lang = lambda table: rng.choice([l for l in table if l == "en"] * 3 + list(table))
    voice_for = lambda l: rng.choice(VOICES[l])
    wpm = rng.randint(130, 190)
    pitch = rng.randint(35, 65)
    level = rng.uniform(-24, -14)
    name = rng.choice(NAMES)
    say = lambda t, l, v: scale(speak(tmp, t, l, v, wpm, pitch), level)

    if cls == "human":
        lang = pick_lang(PEOPLE)
        v = voice_for(lang)
        text = rng.choice(PEOPLE[lang]).format(name=name)
        o.add(silence(rng.uniform(0.2, 1.2)))
        o.add(say(text, lang, v), "speech", text)
        if rng.random() < 0.3:
            kind = "human_again"
            o.add(silence(rng.uniform(2.5, 3.5)))
            again = rng.choice(AGAIN[lang])
            o.add(say(again, lang, v), "speech", again)
            text += " ... " + again
    elif cls == "machine":
        lang = pick_lang(GREETINGS)
        v = voice_for(lang)
        # Greetings of 2-8 s: a template too long at this speed gives way to another (bounded).
        for _ in range(6):
            text = rng.choice(GREETINGS[lang]).format(name=name, digits="5 5 5 0 1 2 3")
            greeting = say(text, lang, v)
            if len(greeting) <= 8 * RATE:
                break
        o.add(silence(rng.uniform(0.2, 1.0)))
        o.add(greeting[: 8 * RATE], "greeting", text)
        o.add(silence(rng.uniform(0.2, 0.8)))
        o.add(tone(rng.uniform(440, 1400), rng.uniform(0.2, 0.6), rng.uniform(-20, -8)), "beep")
    elif cls == "beep":
        kind = "beep_only"
        o.add(silence(rng.uniform(0.3, 1.5)))
        o.add(tone(rng.uniform(440, 1400), rng.uniform(0.2, 0.6), rng.uniform(-20, -8)), "beep")
    elif cls == "call_screening":
        lang = pick_lang(SCREENERS)
        v = voice_for(lang)
        text = rng.choice(SCREENERS[lang])
        o.add(silence(rng.uniform(0.2, 1.0)))
        o.add(say(text, lang, v), "speech", text)
        if rng.random() < 0.5:
            o.add(silence(rng.uniform(0.3, 0.6)))
            o.add(tone(rng.uniform(600, 1000), 0.25, -14), "beep")
    elif cls == "ivr":
        lang = pick_lang(MENUS)
        v = voice_for(lang)
        text = rng.choice(MENUS[lang])
        o.add(silence(rng.uniform(0.1, 0.8)))
        o.add(say(text, lang, v), "speech", text)
    elif cls == "fax":
        level_tone = rng.uniform(-16, -9)
        if index % 2 == 0:
            kind = "fax_cng"
            o.add(silence(rng.uniform(0.2, 1.5)))
            while o.now < 9.0:
                o.add(tone(1100, 0.5, level_tone), "cng")
                o.add(silence(3.0))
        else:
            kind = "fax_ced"
            o.add(silence(rng.uniform(0.2, 1.0)))
            o.add(tone(2100, rng.uniform(2.6, 4.0), level_tone), "ced")
            o.add(silence(0.075))
            # The V.21 preamble: 1650/1850 Hz flags, approximated by alternating 1650 and 1850.
            for _ in range(10):
                o.add(tone(1650, 0.1, level_tone))
                o.add(tone(1850, 0.1, level_tone))
    elif cls == "silence":
        if index % 4 == 3:
            kind = "line_tone"
            o.add(silence(rng.uniform(0.1, 0.5)))
            o.add(tone(1004, 9.0, rng.uniform(-20, -13)), "tone")
    end = max(10.0, o.now + 3.0)
    o.add(silence(end - o.now))

    # The line: noise under everything, then G.711 mu-law.
    colour = rng.choice(["whitenoise", "pinknoise"])
    noise_dbfs = rng.uniform(-60, -30)
    n = noise(tmp, o.now, colour, noise_dbfs)
    mixed = [s + (n[i] if i < len(n) else 0) for i, s in enumerate(o.samples)]
    samples = mulaw_round_trip(tmp, mixed)
    return o, samples, {
        "class": cls, "kind": kind, "language": lang, "text": text,
        "seconds": round(o.now, 3), "events": o.events,
        "voice_wpm": wpm, "noise": f"{colour} {noise_dbfs:.0f} dBFS",
    }


def transcript(rng, o):
    """Oracle transcripts: interim results every 0.8 s of speech, a final 0.3 s after it ends."""
    lines = []
    for start, end, text in o.speech:
        words = []
        for w in text.split():
            r = rng.random()
            if r < 0.05:
                continue
            words.append(rng.choice(MISHEARD) if r < 0.1 else w)
        t = start + 0.8
        while t < end:
            k = max(1, int(len(words) * (t - start) / (end - start)))
            lines.append({"t": round(t, 3), "text": " ".join(words[:k]), "is_final": False})
            t += 0.8
        lines.append({"t": round(end + 0.3, 3), "text": " ".join(words), "is_final": True})
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=sum(c for _, c in CLASSES),
                   help="openings in all (>= 72); spread over the classes in their proportions")
    p.add_argument("--transcripts", action="store_true", help="write oracle transcripts too")
    p.add_argument("--wav", action="store_true", help="write each opening as <id>.wav too "
                   "(for a recogniser: sphinx_stt.py transcribe FILE.wav)")
    args = p.parse_args()
    need("espeak-ng")
    need("sox")
    os.makedirs(args.out, exist_ok=True)
    total = sum(c for _, c in CLASSES)
    rng = random.Random(args.seed)
    labels = []
    with tempfile.TemporaryDirectory() as tmp:
        for cls, count in CLASSES:
            for i in range(max(1, round(count * args.count / total))):
                oid = f"{cls}-{i:02d}"
                o, samples, label = build(rng, tmp, cls, i)
                pcm = to_bytes(samples)
                with open(os.path.join(args.out, oid + ".raw"), "wb") as f:
                    f.write(pcm)
                if args.wav:
                    with wave.open(os.path.join(args.out, oid + ".wav"), "wb") as w:
                        w.setnchannels(1)
                        w.setsampwidth(2)
                        w.setframerate(RATE)
                        w.writeframes(pcm)
                if args.transcripts:
                    tdir = os.path.join(args.out, "transcripts")
                    os.makedirs(tdir, exist_ok=True)
                    with open(os.path.join(tdir, oid + ".jsonl"), "w") as f:
                        # Its own generator: the audio is the same with or without transcripts.
                        for line in transcript(random.Random(f"{args.seed}/{oid}"), o):
                            f.write(json.dumps(line, ensure_ascii=False) + "\n")
                labels.append({"id": oid, **label})
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1, ensure_ascii=False)
    print(f"openings.py: {len(labels)} openings (seed {args.seed}) in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
