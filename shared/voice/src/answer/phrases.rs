//! What a transcript says about the answer: key phrases per language for a voicemail greeting,
//! a call screener and a menu.
//!
//! Recognisers mishear, so the sets are made of short key phrases matched loosely rather than
//! of whole sentences: text is lowercased, accents and punctuation dropped (`después` and
//! `despues`, `drücken` and `drucken` are one word), a key word of four letters or more matches
//! any word it starts (`messag` finds "message", "messages", "messagerie"), `#` matches a digit
//! (`1`, "one", "uno", "eins", "pound"...) and `*` any one word. Each key carries a weight;
//! a class needs a total of [`DECISIVE`] from distinct keys, so "message" alone (weight 1) is not
//! enough but "leave a message" (2) or "message" with "tone" (1 + 1) is. English is always
//! searched besides the call's language: carriers' boxes often answer in English.

use callfleet_domain::answering::AnswerClass;

/// The score a class needs.
pub(crate) const DECISIVE: u32 = 2;

type Keys = &'static [(&'static str, u32)];

const EN: [(AnswerClass, Keys); 3] = [
    (
        AnswerClass::CallScreening,
        &[
            ("say your name", 2),
            ("state your name", 2),
            ("share your name", 2),
            ("person you re calling", 1),
            // Google's Call Screen: "the person you're calling is using a screening service".
            ("person you re calling is using", 2),
            ("record your name", 2),
            ("your name and", 1),
            ("why you re calling", 2),
            ("why you are calling", 2),
            ("reason for * call", 2),
            ("reason for calling", 2),
            ("what you re calling about", 2),
            ("screening", 2),
            ("screened", 2),
            ("see if * person is available", 2),
            ("decide whether to pick", 2),
            ("get a copy of this conversation", 2),
        ],
    ),
    (
        AnswerClass::Ivr,
        &[
            ("press #", 2),
            ("dial #", 1),
            ("press", 1),
            ("menu options", 2),
            ("options have changed", 2),
            ("listen carefully", 1),
            ("for sales", 1),
            ("for billing", 1),
            ("representative", 1),
            ("extension", 1),
            ("thank you for calling", 1),
            ("welcome to", 1),
        ],
    ),
    (
        AnswerClass::Machine,
        &[
            ("leave a messag", 2),
            ("leave your messag", 2),
            ("leave me a messag", 2),
            ("leave us a", 2),
            ("leave your name", 2),
            ("record your messag", 2),
            ("voicemail", 2),
            ("voice mail", 2),
            ("mailbox", 2),
            ("after the tone", 2),
            ("after the beep", 2),
            ("at the tone", 2),
            ("not available", 2),
            ("unavailable", 2),
            ("can t take your call", 2),
            ("cannot take your call", 2),
            ("can t come to the phone", 2),
            ("get back to you", 2),
            ("return your call", 2),
            ("call you back", 2),
            ("missed you", 1),
            ("not home", 1),
            ("messag", 1),
            ("tone", 1),
            ("beep", 1),
            ("you ve reached", 1),
            ("you have reached", 1),
        ],
    ),
];

const ES: [(AnswerClass, Keys); 3] = [
    (
        AnswerClass::CallScreening,
        &[
            ("diga su nombre", 2),
            ("su nombre y", 1),
            ("motivo de su llamada", 2),
        ],
    ),
    (
        AnswerClass::Ivr,
        &[
            ("oprima", 1),
            ("pulse", 1),
            ("marque", 1),
            ("presione", 1),
            ("oprima #", 2),
            ("pulse #", 2),
            ("marque #", 2),
            ("presione #", 2),
            ("el #", 1),
            ("para", 1),
            ("gracias por llamar", 1),
        ],
    ),
    (
        AnswerClass::Machine,
        &[
            ("deje su mensaje", 2),
            ("deja tu mensaje", 2),
            ("dejar un mensaje", 2),
            ("deje un mensaje", 2),
            ("mensaje", 1),
            ("buzon", 2),
            ("despues del tono", 2),
            ("despues de la senal", 2),
            ("tono", 1),
            ("no esta disponible", 2),
            ("disponible", 1),
            ("contestador", 2),
        ],
    ),
];

const FR: [(AnswerClass, Keys); 3] = [
    (
        AnswerClass::CallScreening,
        &[
            ("dites votre nom", 2),
            ("dire votre nom", 2),
            ("indiquez votre nom", 2),
            ("motif de votre appel", 2),
        ],
    ),
    (
        AnswerClass::Ivr,
        &[
            ("tapez", 1),
            ("appuyez", 1),
            ("tapez #", 2),
            ("appuyez sur #", 2),
            ("touche", 1),
            ("merci de votre appel", 1),
        ],
    ),
    (
        AnswerClass::Machine,
        &[
            ("laissez un messag", 2),
            ("laissez votre messag", 2),
            ("messagerie", 2),
            ("messag", 1),
            ("apres le bip", 2),
            ("apres le signal", 2),
            ("bip", 1),
            ("pas disponible", 2),
            ("indisponible", 2),
            ("repondeur", 2),
        ],
    ),
];

const DE: [(AnswerClass, Keys); 3] = [
    (
        AnswerClass::CallScreening,
        &[
            ("nennen sie ihren namen", 2),
            ("sagen sie ihren namen", 2),
            ("grund ihres anrufs", 2),
        ],
    ),
    (
        AnswerClass::Ivr,
        &[
            ("drucken sie", 2),
            ("druecken sie", 2),
            ("drucken", 1),
            ("taste", 1),
            ("wahlen sie die", 1),
            ("willkommen bei", 1),
        ],
    ),
    (
        AnswerClass::Machine,
        &[
            ("nachricht", 2),
            ("mailbox", 2),
            ("anrufbeantworter", 2),
            ("nach dem signalton", 2),
            ("nach dem ton", 2),
            ("signalton", 1),
            ("piepton", 2),
            ("nicht erreichbar", 2),
            ("nicht verfugbar", 2),
            ("sprechen sie nach", 2),
        ],
    ),
];

const DIGITS: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "zero", "one", "two", "three", "four",
    "five", "six", "seven", "eight", "nine", "pound", "star", "hash", "cero", "uno", "dos", "tres",
    "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "un", "deux", "trois", "quatre", "cinq",
    "sept", "huit", "neuf", "null", "eins", "zwei", "drei", "vier", "funf", "sechs", "sieben",
    "acht", "neun", "diese", "etoile", "raute", "stern",
];

/// A class the text points to, with the key phrases that made the score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PhraseMatch {
    pub class: AnswerClass,
    pub keys: Vec<&'static str>,
}

/// The phrase sets for a language tag (`"en"`, `"es-ES"`, `"de_DE"`); English for the rest.
fn sets(language: &str) -> Vec<&'static [(AnswerClass, Keys); 3]> {
    let primary = language
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match primary.as_str() {
        "es" => vec![&ES, &EN],
        "fr" => vec![&FR, &EN],
        "de" => vec![&DE, &EN],
        _ => vec![&EN],
    }
}

/// The class with the highest score of at least [`DECISIVE`]; a tie goes to the class listed
/// first (screener, then menu, then voicemail: a menu's "leave a message" option or a
/// screener's "after the tone" do not make a voicemail box).
pub(crate) fn classify(text: &str, language: &str) -> Option<PhraseMatch> {
    let words = normalise(text);
    let words: Vec<&str> = words.split(' ').filter(|w| !w.is_empty()).collect();
    let mut best: Option<(u32, PhraseMatch)> = None;
    for class in [
        AnswerClass::CallScreening,
        AnswerClass::Ivr,
        AnswerClass::Machine,
    ] {
        let mut score = 0;
        let mut keys = Vec::new();
        for set in sets(language) {
            for (c, set_keys) in set.iter() {
                if *c != class {
                    continue;
                }
                for (key, weight) in set_keys.iter() {
                    if found(&words, key) {
                        score += weight;
                        keys.push(*key);
                    }
                }
            }
        }
        if score >= DECISIVE && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, PhraseMatch { class, keys }));
        }
    }
    best.map(|(_, m)| m)
}

fn found(words: &[&str], key: &str) -> bool {
    let key: Vec<&str> = key.split(' ').collect();
    if key.is_empty() || words.len() < key.len() {
        return false;
    }
    words
        .windows(key.len())
        .any(|w| w.iter().zip(&key).all(|(word, k)| word_matches(word, k)))
}

fn word_matches(word: &str, key: &str) -> bool {
    match key {
        "*" => true,
        "#" => DIGITS.contains(&word),
        k if k.len() >= 4 => word.starts_with(k),
        k => word == k,
    }
}

/// Lowercase ASCII words: accents folded, everything else a space (`you're` -> `you re`).
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => "a",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => "o",
            'ú' | 'ù' | 'û' | 'ü' => "u",
            'ñ' => "n",
            'ç' => "c",
            'ß' => "ss",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => " ",
        };
        out.push_str(folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str, lang: &str) -> Option<AnswerClass> {
        classify(text, lang).map(|m| m.class)
    }

    #[test]
    fn voicemail_greetings_in_four_languages() {
        let m = Some(AnswerClass::Machine);
        assert_eq!(
            class(
                "Hi, you've reached Sam. Please leave a message after the tone.",
                "en"
            ),
            m
        );
        assert_eq!(
            class("the person you are calling is not available", "en-US"),
            m
        );
        assert_eq!(class("Deja tu mensaje después del tono", "es-ES"), m);
        assert_eq!(class("laissez un message apres le bip", "fr"), m);
        assert_eq!(class("Bitte hinterlassen Sie eine Nachricht", "de"), m);
    }

    #[test]
    fn misheard_words_still_match_on_their_keys() {
        // "leave a massage" is lost, but "messages" and "tone" remain.
        assert_eq!(
            class("leave a massage at the messages tone", "en"),
            Some(AnswerClass::Machine)
        );
        assert_eq!(
            class("dejé su mensaje despues del tono", "es"),
            Some(AnswerClass::Machine)
        );
    }

    #[test]
    fn menus_and_screeners() {
        assert_eq!(
            class("For sales, press 1. For billing press two", "en"),
            Some(AnswerClass::Ivr)
        );
        assert_eq!(class("para ventas pulse uno", "es"), Some(AnswerClass::Ivr));
        assert_eq!(
            class("Für Kontoauskünfte drücken Sie die Eins", "de"),
            Some(AnswerClass::Ivr)
        );
        assert_eq!(
            class("go ahead and say your name and why you're calling", "en"),
            Some(AnswerClass::CallScreening)
        );
        assert_eq!(
            class("veuillez dire votre nom", "fr"),
            Some(AnswerClass::CallScreening)
        );
        // A recogniser's take on Google's Call Screen greeting (pocketsphinx on a loaded
        // machine): "screening" and "say your name" were lost, the opening survived.
        assert_eq!(
            class(
                "like the person you're calling is using those cleaning service please may your name him why",
                "en"
            ),
            Some(AnswerClass::CallScreening)
        );
    }

    #[test]
    fn a_person_matches_nothing() {
        for text in [
            "Hello?",
            "Hi, this is Sam.",
            "Hello, who's calling?",
            "yeah",
            "¿Diga?",
            "Allô ?",
        ] {
            assert_eq!(class(text, "en"), None, "{text}");
        }
        // One weak key is not enough.
        assert_eq!(class("I got your message", "en"), None);
    }
}
