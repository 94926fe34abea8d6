//! The engine's timing knobs ([`EngineOptions`]): endpointing, interruptions, timeouts, playout.

use std::time::Duration;

use crate::{turn::Endpointing, vad::VadOptions};

/// Timing knobs. Defaults follow LiveKit Agents' where it has one.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub endpointing: Endpointing,
    /// Callee speech must last this long (while the agent speaks) to stop the agent.
    pub min_interruption: Duration,
    /// After an interruption with no words, resume the reply once the callee has been quiet
    /// this long.
    pub false_interruption_timeout: Duration,
    pub resume_false_interruption: bool,
    /// End the call when nobody has spoken for this long.
    pub silence_timeout: Duration,
    pub max_duration: Duration,
    /// Agent audio kept queued in the transport ahead of real time.
    pub playout_lead: Duration,
    /// Agent audio frame length.
    pub output_frame: Duration,
    pub vad: VadOptions,
    /// Follow-up LLM calls allowed after tool results, per turn.
    pub max_tool_rounds: u32,
    /// A reply whose text is complete fails if the TTS then sends nothing for this long
    /// (`tts (<provider>): no audio within …`) instead of waiting for `max_duration`.
    pub tts_idle_timeout: Duration,
    /// How long before the session started the callee answered (the worker joins the room
    /// after the answer); answering-machine detection counts its budget from the answer.
    pub answered_ago: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            endpointing: Endpointing::default(),
            min_interruption: Duration::from_millis(300),
            false_interruption_timeout: Duration::from_millis(1000),
            resume_false_interruption: true,
            silence_timeout: Duration::from_secs(30),
            max_duration: Duration::from_secs(3600),
            // livekit-sip's mixer holds 5 frames (100 ms) per input and drops the oldest
            // beyond that; it starts playing at 3. Sending more than ~100 ms ahead of real
            // time cut the start of every reply on a phone call.
            playout_lead: Duration::from_millis(60),
            output_frame: Duration::from_millis(20),
            vad: VadOptions::default(),
            max_tool_rounds: 3,
            tts_idle_timeout: crate::providers::tts::DEFAULT_IDLE_TIMEOUT,
            answered_ago: Duration::ZERO,
        }
    }
}
