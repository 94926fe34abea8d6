//! One agent reply: an LLM completion streamed into a TTS utterance, in its own task. The
//! engine reads its events; dropping the [`Reply`] cancels both requests.

use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    chunker::Chunker,
    providers::{
        llm::{ChatMessage, LlmClient, LlmEvent, ToolCall, ToolSpec},
        tts::{TtsClient, TtsEvent, TtsStream, WordTiming},
    },
};

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    LlmFirstToken(Instant),
    /// Text as the LLM produced it.
    Text(String),
    /// Characters sent to the TTS.
    TtsChars(usize),
    /// First audio back from the TTS, and when its first text was sent.
    TtsFirstAudio {
        sent_at: Instant,
        at: Instant,
    },
    Audio(Vec<i16>),
    Words(Vec<WordTiming>),
    ToolCall(ToolCall),
    Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// LLM and TTS both finished.
    Done,
    Failed(String),
}

#[derive(Debug)]
pub struct Reply {
    pub started: Instant,
    events: mpsc::UnboundedReceiver<ReplyEvent>,
    _guard: DropGuard,
}

impl Reply {
    pub fn spawn(
        llm: &LlmClient,
        tts: &TtsClient,
        messages: Vec<ChatMessage>,
        tools: &[ToolSpec],
    ) -> Self {
        let started = Instant::now();
        let (tx, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let llm_stream = llm.stream(&messages, tools);
        let names = (llm.config().provider.name(), tts.config().provider.name());
        let tts = tts.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = run(llm_stream, tts, names, &tx) => {}
            }
        });
        Self {
            started,
            events,
            _guard: cancel.drop_guard(),
        }
    }

    /// Speak `text` as it is, with no LLM (a voicemail message).
    pub fn say(tts: &TtsClient, text: &str) -> Self {
        let started = Instant::now();
        let (tx, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let name = tts.config().provider.name();
        let tts = tts.clone();
        let text = text.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = say(&text, tts, name, &tx) => {}
            }
        });
        Self {
            started,
            events,
            _guard: cancel.drop_guard(),
        }
    }

    pub async fn next(&mut self) -> Option<ReplyEvent> {
        self.events.recv().await
    }
}

/// `names`: the LLM and TTS provider names, for failure messages.
async fn run(
    mut llm: crate::providers::llm::LlmStream,
    tts_client: TtsClient,
    (llm_name, tts_name): (&str, &str),
    tx: &mpsc::UnboundedSender<ReplyEvent>,
) {
    let mut tts: Option<TtsStream> = None;
    let mut first_text_at: Option<Instant> = None;
    let mut got_audio = false;
    let mut chunker = Chunker::default();
    let mut llm_done = false;
    let mut tts_done = false;
    let mut first_token = true;
    let send = |ev| {
        let _ = tx.send(ev);
    };
    loop {
        if llm_done && (tts_done || tts.is_none()) {
            send(ReplyEvent::Done);
            return;
        }
        tokio::select! {
            ev = llm.next(), if !llm_done => match ev {
                Some(Ok(LlmEvent::Text(t))) => {
                    if first_token {
                        first_token = false;
                        send(ReplyEvent::LlmFirstToken(Instant::now()));
                    }
                    if let Some(chunk) = chunker.push(&t) {
                        speak(&chunk, &mut tts, &tts_client, &mut first_text_at, tx);
                    }
                    send(ReplyEvent::Text(t));
                }
                Some(Ok(LlmEvent::ToolCall(c))) => {
                    if first_token {
                        first_token = false;
                        send(ReplyEvent::LlmFirstToken(Instant::now()));
                    }
                    send(ReplyEvent::ToolCall(c));
                }
                Some(Ok(LlmEvent::Usage { prompt_tokens, completion_tokens })) => {
                    send(ReplyEvent::Usage { prompt_tokens, completion_tokens });
                }
                Some(Ok(LlmEvent::Done)) | None => {
                    llm_done = true;
                    if let Some(rest) = chunker.finish() {
                        speak(&rest, &mut tts, &tts_client, &mut first_text_at, tx);
                    }
                    if let Some(t) = tts.as_mut() {
                        t.end_input();
                    }
                }
                Some(Err(e)) => {
                    send(ReplyEvent::Failed(format!("llm ({llm_name}): {}", crate::error_chain(&e))));
                    return;
                }
            },
            ev = next_tts(&mut tts), if !tts_done => match ev {
                Some(TtsEvent::Audio(pcm)) => {
                    if !got_audio {
                        got_audio = true;
                        let sent_at = first_text_at.unwrap_or_else(Instant::now);
                        send(ReplyEvent::TtsFirstAudio { sent_at, at: Instant::now() });
                    }
                    send(ReplyEvent::Audio(pcm));
                }
                Some(TtsEvent::Words(w)) => send(ReplyEvent::Words(w)),
                Some(TtsEvent::Done) => tts_done = true,
                Some(TtsEvent::Error(e)) => {
                    send(ReplyEvent::Failed(format!("tts ({tts_name}): {e}")));
                    return;
                }
                None => {
                    send(ReplyEvent::Failed(format!("tts ({tts_name}): stream ended without done")));
                    return;
                }
            },
        }
    }
}

/// A fixed text through the TTS: the same events as an LLM reply, without its tokens.
async fn say(
    text: &str,
    tts_client: TtsClient,
    tts_name: &str,
    tx: &mpsc::UnboundedSender<ReplyEvent>,
) {
    let mut tts = None;
    let mut first_text_at = None;
    let _ = tx.send(ReplyEvent::Text(text.to_owned()));
    speak(text, &mut tts, &tts_client, &mut first_text_at, tx);
    let Some(mut stream) = tts else { return };
    stream.end_input();
    let mut got_audio = false;
    loop {
        let ev = match stream.next().await {
            Some(TtsEvent::Audio(pcm)) => {
                if !got_audio {
                    got_audio = true;
                    let sent_at = first_text_at.unwrap_or_else(Instant::now);
                    let _ = tx.send(ReplyEvent::TtsFirstAudio {
                        sent_at,
                        at: Instant::now(),
                    });
                }
                ReplyEvent::Audio(pcm)
            }
            Some(TtsEvent::Words(w)) => ReplyEvent::Words(w),
            Some(TtsEvent::Done) => ReplyEvent::Done,
            Some(TtsEvent::Error(e)) => ReplyEvent::Failed(format!("tts ({tts_name}): {e}")),
            None => ReplyEvent::Failed(format!("tts ({tts_name}): stream ended without done")),
        };
        let last = matches!(ev, ReplyEvent::Done | ReplyEvent::Failed(_));
        let _ = tx.send(ev);
        if last {
            return;
        }
    }
}

fn speak(
    text: &str,
    tts: &mut Option<TtsStream>,
    client: &TtsClient,
    first_text_at: &mut Option<Instant>,
    tx: &mpsc::UnboundedSender<ReplyEvent>,
) {
    let stream = tts.get_or_insert_with(|| client.start());
    first_text_at.get_or_insert_with(Instant::now);
    stream.push_text(text);
    let _ = tx.send(ReplyEvent::TtsChars(text.chars().count()));
}

async fn next_tts(tts: &mut Option<TtsStream>) -> Option<TtsEvent> {
    match tts {
        Some(t) => t.next().await,
        None => std::future::pending().await,
    }
}
