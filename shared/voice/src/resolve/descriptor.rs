//! Reading provider descriptors: `provider/model[:variant]`, and Sarvam's versioned model names
//! and BCP-47 language codes. Pure string work, no env and no errors collected here.

/// Languages every Sarvam model takes (saarika:v2.5, bulbul:v2/v3): ten Indian languages and
/// Indian English, BCP-47 with the `-IN` region.
const SARVAM_LANGUAGES: &[&str] = &[
    "hi-IN", "bn-IN", "ta-IN", "te-IN", "mr-IN", "gu-IN", "kn-IN", "ml-IN", "pa-IN", "od-IN",
    "en-IN",
];
/// The further languages saaras:v3 transcribes.
pub(super) const SAARAS_V3_EXTRA_LANGUAGES: &[&str] = &[
    "as-IN", "ur-IN", "ne-IN", "kok-IN", "ks-IN", "sd-IN", "sa-IN", "sat-IN", "mni-IN", "brx-IN",
    "mai-IN", "doi-IN",
];

/// `provider/model[:variant]`, each part trimmed; model and variant may be empty.
pub(super) fn descriptor(s: &str) -> (String, String, Option<String>) {
    let (provider, rest) = s.split_once('/').unwrap_or((s, ""));
    let (model, variant) = match rest.split_once(':') {
        Some((m, v)) => (m, Some(v.trim().to_owned()).filter(|v| !v.is_empty())),
        None => (rest, None),
    };
    (
        provider.trim().to_ascii_lowercase(),
        model.trim().to_owned(),
        variant,
    )
}

/// What follows `provider/` in a descriptor (`sarvam/bulbul:v2` -> `bulbul:v2`), untrimmed.
pub(super) fn after_provider(s: &str) -> &str {
    s.split_once('/').map_or("", |(_, r)| r)
}

/// A Sarvam descriptor's rest (`saarika:v2.5:hi-IN`, `bulbul:v2:anushka`, `saaras`): Sarvam's
/// model names carry a `:vN` version, so the variant is whatever follows it. A bare family name
/// gets its current version.
pub(super) fn sarvam_model(rest: &str) -> (String, Option<String>) {
    let mut parts = rest.splitn(3, ':').map(str::trim);
    let family = parts.next().unwrap_or("").to_ascii_lowercase();
    let second = parts.next();
    let third = parts.next();
    let is_version = |p: &str| {
        let mut c = p.chars();
        c.next().is_some_and(|v| v.eq_ignore_ascii_case(&'v'))
            && c.next().is_some_and(|d| d.is_ascii_digit())
    };
    let (model, variant) = match second {
        Some(v) if is_version(v) => (
            format!("{family}:{}", v.to_ascii_lowercase()),
            third.map(str::to_owned),
        ),
        Some(v) => {
            let rest = match third {
                Some(t) => format!("{v}:{t}"),
                None => v.to_owned(),
            };
            (family, Some(rest))
        }
        None => (family, None),
    };
    let model = match model.as_str() {
        "saarika" => "saarika:v2.5".to_owned(),
        "saaras" => "saaras:v3".to_owned(),
        "bulbul" => "bulbul:v2".to_owned(),
        _ => model,
    };
    (model, variant.filter(|v| !v.is_empty()))
}

/// `hi`, `HI-in`, `hi-IN` -> `hi-IN`; `en`/`en-US` -> `en-IN` (Sarvam's only English);
/// `or` (ISO 639-1 Odia) -> `od-IN` (Sarvam's code). `Err` names the accepted codes.
pub(super) fn sarvam_language(lang: &str, extra: &[&str]) -> Result<String, String> {
    let primary = lang
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let primary = if primary == "or" {
        "od".to_owned()
    } else {
        primary
    };
    let code = format!("{primary}-IN");
    if SARVAM_LANGUAGES.contains(&code.as_str()) || extra.contains(&code.as_str()) {
        Ok(code)
    } else {
        let mut all: Vec<&str> = SARVAM_LANGUAGES.to_vec();
        all.extend_from_slice(extra);
        Err(format!(
            "language `{lang}` is not supported by sarvam (expected one of {})",
            all.join(", ")
        ))
    }
}
