//! TTS: Cartesia (`cartesia`), ElevenLabs (`livekit-plugins-elevenlabs`), Sarvam (`sarvamai`).
