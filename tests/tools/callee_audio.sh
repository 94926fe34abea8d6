#!/bin/sh
# The SIPp callee's spoken words (tests/sipp/callee.xml, behaviours 207-210): each text spoken
# by flite with a fixed voice (flite, not espeak-ng: the answering tests' recogniser,
# pocketsphinx with its bundled model, gets about 0.7 of flite's rms voice's words right and
# almost none of espeak-ng's), and resampled by sox to raw G.711 mu-law, 8 kHz,
# mono, without dither (-D), so the bytes are the same on every run. Tones, beeps and silence
# are not here: callfleet_rig::callee::write_audio makes those, and copies these files next to
# the scenario. Usage: tests/tools/callee_audio.sh [DIR] (default .tools/audio). Writes only the
# files that are missing; delete one to speak it again. Keep the names and texts in step with
# shared/rig/src/callee/speech.rs.
set -eu
dir=${1:-.tools/audio}
mkdir -p "$dir"
for tool in flite sox; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$tool is missing: apt-get install flite sox (make setup does)" >&2
        exit 1
    }
done

# speak FILE VOICE TEXT
speak() {
    out="$dir/$1"
    [ -s "$out" ] && return 0
    flite -voice "$2" -t "$3" -o "$out.wav"
    sox -D "$out.wav" -r 8000 -c 1 -e mu-law -t raw "$out.tmp"
    rm -f "$out.wav"
    mv "$out.tmp" "$out"
    echo "spoke $out"
}

speak person-8k.ulaw slt "Hello?"
speak voicemail-8k.ulaw rms "Hi, you've reached Alex Morgan. I can't take your call right now. Please leave a message after the tone."
speak screener-8k.ulaw rms "Hi, the person you're calling is using a screening service. Please say your name and why you're calling."
speak ivr-menu-8k.ulaw rms "Thank you for calling. For sales, press 1. For support, press 2."
speak ivr-sales-8k.ulaw rms "You pressed one. Connecting you to sales."
speak ivr-support-8k.ulaw rms "You pressed two. Connecting you to support."
