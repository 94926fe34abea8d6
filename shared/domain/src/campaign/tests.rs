use super::*;
use serde_json::json;

fn spec(extra: Value) -> Result<CampaignSpec, Vec<FieldError>> {
    let mut body = json!({"name": "Renewals", "account_code": "acct-1"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    CampaignSpec::validate(body.as_object().expect("object"))
}

#[test]
fn spec_defaults_and_field_errors() {
    let s = spec(json!({})).expect("valid");
    assert_eq!((s.max_concurrent_calls, s.calls_per_second), (5, 1.0));
    assert_eq!(s.timezone, "UTC");
    assert!(s.id.starts_with("cmp"));
    let errors = spec(json!({
        "name": "", "timezone": "Mars/Olympus", "max_concurrent_calls": 0,
        "calls_per_second": -1, "window": {"days": ["funday"], "start": "25:00", "end": "09:00"},
        "id": "has space", "start_at": "tomorrow"
    }))
    .expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "name",
        "timezone",
        "max_concurrent_calls",
        "calls_per_second",
        "window.start",
        "window.days",
        "id",
        "start_at",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let errors = CampaignSpec::validate(json!({"name": "x"}).as_object().expect("o"))
        .expect_err("no account");
    assert_eq!(errors[0].field, "account_code");
}

#[test]
fn window_opens_in_the_contacts_zone() {
    let w = CallingWindow {
        days: vec!["mon".into(), "tue".into()],
        start: "09:00".into(),
        end: "17:00".into(),
    };
    let tz = TimeZone::get("Australia/Brisbane").expect("tz");
    // Monday 2026-11-23 10:00 in Brisbane (UTC+10) = 00:00 UTC: open.
    let monday_10 = "2026-11-23T00:00:00Z".parse::<Timestamp>().expect("ts");
    assert_eq!(w.next_open(&tz, monday_10), None);
    // Monday 18:00 Brisbane: closed until Tuesday 09:00 Brisbane = Monday 23:00 UTC.
    let monday_18 = "2026-11-23T08:00:00Z".parse::<Timestamp>().expect("ts");
    assert_eq!(
        w.next_open(&tz, monday_18),
        Some("2026-11-23T23:00:00Z".parse().expect("ts"))
    );
    // Tuesday 18:00: closed until the next Monday 09:00.
    let tuesday_18 = "2026-11-24T08:00:00Z".parse::<Timestamp>().expect("ts");
    assert_eq!(
        w.next_open(&tz, tuesday_18),
        Some("2026-11-29T23:00:00Z".parse().expect("ts"))
    );
}

#[test]
fn contact_merges_over_defaults_and_fills_variables() {
    let s = spec(json!({
        "caller_number": "+61299990000",
        "session_options": {"prompt": "Call {{first_name}} about {{plan}}.", "llm": "openai/gpt-4o-mini"},
        "metadata": {"source": "crm"},
        "retry": {"max_attempts": 2}
    }))
    .expect("valid");
    let contact = json!({"destination": "61402012298", "timezone": "Europe/Paris",
        "variables": {"first_name": "Ada", "plan": "gold"}, "metadata": {"row": 7}});
    let c = contact_request(&s, contact.as_object().expect("o"), 3, None).expect("valid contact");
    assert_eq!(c.request.call_id, format!("{}-3", s.id));
    assert_eq!(c.request.campaign, s.id);
    assert_eq!(c.request.destination.to_string(), "+61402012298");
    assert_eq!(
        c.request.session_options.prompt.as_deref(),
        Some("Call Ada about gold.")
    );
    assert_eq!(c.request.metadata["source"], "crm");
    assert_eq!(c.request.metadata["first_name"], "Ada");
    assert_eq!(c.request.metadata["row"], 7);
    assert_eq!(c.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        c.request.retry.as_ref().and_then(|r| r.max_attempts),
        Some(2)
    );

    let bad = json!({"destination": "12", "timezone": "Nowhere/Else"});
    let err = contact_request(&s, bad.as_object().expect("o"), 4, None).expect_err("bad tz");
    assert!(err.contains("timezone"), "{err}");
    let bad = json!({"destination": "not a number"});
    let err = contact_request(&s, bad.as_object().expect("o"), 5, None).expect_err("bad number");
    assert!(err.contains("destination"), "{err}");
}

#[test]
fn csv_rows_are_judged_one_by_one() {
    let csv = "destination,first_name,timezone\n\
               +61402012298,Ada,Australia/Sydney\n\
               +61402012299,Bob\n\
               +61402012300,\"Unclosed,UTC\n";
    let parsed = parse_csv(csv.as_bytes()).expect("header ok");
    assert_eq!(parsed.contacts.len(), 1, "{:?}", parsed);
    assert_eq!(parsed.contacts[0].0, 2);
    assert_eq!(parsed.contacts[0].1["variables"]["first_name"], "Ada");
    assert_eq!(parsed.rejected[0].line, 3, "{:?}", parsed.rejected);
    assert!(
        parsed.rejected[0].reason.contains("2 fields"),
        "{:?}",
        parsed.rejected
    );
    assert!(
        parse_csv(b"phone\n+61402012298\n")
            .expect_err("no destination")
            .contains("destination")
    );
}

#[test]
fn calls_per_second_is_bounded_both_ways() {
    for bad in [
        json!(0),
        json!(-1),
        json!(1e-20),
        json!(0.0009),
        json!(100.5),
        json!("2"),
    ] {
        let mut body = serde_json::Map::new();
        body.insert("name".into(), json!("n"));
        body.insert("account_code".into(), json!("a"));
        body.insert("calls_per_second".into(), bad.clone());
        let errors = CampaignSpec::validate(&body).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.field == "calls_per_second"),
            "{bad} must be refused: {errors:?}"
        );
    }
    let mut body = serde_json::Map::new();
    body.insert("name".into(), json!("n"));
    body.insert("account_code".into(), json!("a"));
    body.insert("calls_per_second".into(), json!(0.001));
    assert!(CampaignSpec::validate(&body).is_ok());
}
