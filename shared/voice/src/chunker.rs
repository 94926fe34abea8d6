//! Splits streamed LLM text into pieces worth sending to the TTS: whole sentences, or clauses
//! once enough text is waiting, so the first audio comes early and prosody stays natural.

/// Emit at a comma once this much text is waiting.
const CLAUSE_MIN: usize = 40;
/// Emit at any space once this much text is waiting.
const FORCE_AT: usize = 120;

#[derive(Debug, Default)]
pub struct Chunker {
    buf: String,
}

impl Chunker {
    /// Add text; returns a chunk ready for the TTS, if any.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.buf.push_str(text);
        let cut = self.cut()?;
        let rest = self.buf.split_off(cut);
        Some(std::mem::replace(&mut self.buf, rest))
    }

    /// Whatever is left at the end of the reply.
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.buf);
        (!s.trim().is_empty()).then_some(s)
    }

    /// Byte index just after the last usable boundary (the whitespace is kept in the chunk).
    fn cut(&self) -> Option<usize> {
        let b = self.buf.as_bytes();
        let mut best = None;
        for i in 1..b.len() {
            if !b[i].is_ascii_whitespace() {
                continue;
            }
            let prev = b[i - 1];
            let sentence = matches!(prev, b'.' | b'!' | b'?' | b';' | b':') || b[i] == b'\n';
            let clause = prev == b',' && i >= CLAUSE_MIN;
            let forced = i >= FORCE_AT;
            if sentence || clause || forced {
                best = Some(i + 1);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::Chunker;

    #[test]
    fn sentences_come_out_whole() {
        let mut c = Chunker::default();
        assert_eq!(c.push("Hello"), None);
        assert_eq!(c.push(" there."), None);
        assert_eq!(c.push(" How"), Some("Hello there. ".to_owned()));
        assert_eq!(c.push(" are you?"), None);
        assert_eq!(c.finish(), Some("How are you?".to_owned()));
    }

    #[test]
    fn unicode_is_safe() {
        let mut c = Chunker::default();
        assert_eq!(c.push("Grüße, schön. "), Some("Grüße, schön. ".to_owned()));
    }
}
