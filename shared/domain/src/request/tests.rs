use serde_json::json;

use super::*;

fn opts() -> ValidateOptions {
    ValidateOptions {
        default_country_code: None,
        fallback_call_id: Some("generated".into()),
    }
}

/// The payload of seed 000, verbatim.
fn seed() -> Value {
    json!({
      "destination": "61402012298",
      "account_code": "em-tech-01",
      "transfer_target": "61731071901",
      "caller_id": "LiveKitNehosHosted",
      "caller_number": "+61123456789",
      "caller_name": "LiveKit Nehos Hosted",
      "session_options": {
        "preemptive_generation": false,
        "llm": "openai/gpt-4o-mini",
        "stt": "assemblyai/universal-streaming:en",
        "tts": "cartesia",
        "cartesia_voice": "043cfc81-d69f-4bee-ae1e-7862cb358650"
      },
      "metadata": { "ticket_id": "INC-1234" }
    })
}

#[test]
fn accepts_the_seed_payload_verbatim() {
    let req = validate(&seed(), &opts()).expect("seed payload is valid");
    assert_eq!(req.destination.as_str(), "+61402012298");
    assert_eq!(req.transfer_target.as_deref(), Some("tel:+61731071901"));
    assert_eq!(
        req.session_options.tts,
        Some(TtsOption::Descriptor("cartesia".into()))
    );
    assert_eq!(req.session_options.preemptive_generation, Some(false));
    assert_eq!(req.metadata["ticket_id"], "INC-1234");
    assert_eq!(req.metadata["account_code"], "em-tech-01");
    assert_eq!(req.call_id, "generated");
    assert_eq!(req.room, "call-generated");
    assert_eq!(req.campaign, "default");
}

#[test]
fn normalised_form_validates_to_itself() {
    let req = validate(&seed(), &opts()).expect("valid");
    let again = validate(
        &serde_json::to_value(&req).expect("serialises"),
        &ValidateOptions::default(),
    )
    .expect("normalised form is valid");
    assert_eq!(req, again);
}

#[test]
fn session_keys_at_the_top_level_and_tts_objects() {
    let body = json!({
        "destination": "+61402012298", "account_code": "a",
        "llm": "groq/llama-3.3-70b", "preemptive_generation": "yes", "record_call": 1,
        "tts": {"provider": "cartesia", "model": "sonic-3", "voice": "v1"},
        "crm_id": 42
    });
    let req = validate(&body, &opts()).expect("valid");
    assert_eq!(
        req.session_options.llm.as_deref(),
        Some("groq/llama-3.3-70b")
    );
    assert_eq!(req.session_options.preemptive_generation, Some(true));
    assert!(req.session_options.record_call);
    assert_eq!(
        req.session_options.tts,
        Some(TtsOption::Spec {
            provider: Some("cartesia".into()),
            model: Some("sonic-3".into()),
            voice: Some("v1".into())
        })
    );
    assert_eq!(
        req.metadata["crm_id"], 42,
        "unknown keys are kept in metadata"
    );
}

#[test]
fn reports_every_bad_field_at_once() {
    let body = json!({
        "destination": "abc", "account_code": "",
        "caller_number": 12, "callback_url": "ftp://x", "not_before": "tomorrow",
        "session_options": {"tts": 5, "preemptive_generation": "maybe"},
        "metadata": [1], "campaign": "a.b", "retry": {"max_attempts": 50}
    });
    let errors = validate(&body, &opts()).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "destination",
        "account_code",
        "caller_number",
        "callback_url",
        "not_before",
        "session_options.tts",
        "session_options.preemptive_generation",
        "metadata",
        "campaign",
        "retry.max_attempts",
    ] {
        assert!(fields.contains(&f), "missing error for {f}: {errors:?}");
    }
}

#[test]
fn header_injection_is_refused() {
    let body = json!({"destination": "+61402012298", "account_code": "a\r\nX-Evil: 1"});
    let errors = validate(&body, &opts()).expect_err("invalid");
    assert_eq!(errors[0].field, "account_code");
}

#[test]
fn sip_transfer_targets_are_kept() {
    assert_eq!(
        normalise_transfer_target("sip:desk@pbx.example.com", None),
        Ok("sip:desk@pbx.example.com".into())
    );
    assert!(normalise_transfer_target("sip:", None).is_err());
}
