#![allow(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error, which is large; test-only"
)]

use figment::{
    Figment, Jail,
    providers::{Format, Toml},
};

use super::*;

#[test]
fn defaults_are_valid_and_safe() {
    let config = Config::from_toml("").expect("defaults validate");
    assert!(
        config.ingress.bind.starts_with("127.0.0.1:"),
        "ingress binds to loopback by default"
    );
    assert!(config.sip.ringing_timeout_secs <= 75);
}

#[test]
fn every_url_of_a_cluster_is_checked() {
    let ok = Config::from_toml(
        "[nats]\nurl = \"nats://n1:4222, nats://n2:4222,nats://n3:4222\"\nreplicas = 3",
    )
    .expect("a 3-node cluster's URLs");
    assert_eq!(ok.nats.replicas, 3);
    assert_eq!(
        ok.nats.ping_interval_secs, 1,
        "a dead link is noticed in seconds"
    );
    let err = Config::from_toml("[nats]\nurl = \"nats://n1:4222,http://n2:4222\"")
        .expect_err("the second URL is not NATS");
    assert!(err.to_string().contains("nats.url"), "{err}");
    let err = Config::from_toml("[nats]\nping_interval_secs = 0").expect_err("0 never pings");
    assert!(err.to_string().contains("nats.ping_interval_secs"), "{err}");
}

#[test]
fn the_voice_session_is_on_by_default_and_false_opts_out() {
    let config = Config::from_toml("").expect("defaults validate");
    assert!(
        config.agent.voice_session,
        "answered calls converse by default"
    );
    let config = Config::from_toml("[agent]\nvoice_session = false").expect("valid");
    assert!(!config.agent.voice_session, "false is an explicit opt-out");
}

#[test]
fn seed_env_names_work_as_is() {
    Jail::expect_with(|jail| {
        jail.set_env("LIVEKIT_URL", "ws://127.0.0.1:7880");
        jail.set_env("LIVEKIT_API_KEY", "devkey");
        jail.set_env("LIVEKIT_API_SECRET", "secret");
        jail.set_env("SIP_FROM_NUMBER", "+61123456789");
        jail.set_env("SIP_DISPLAY_NAME", "LiveKit Nehos Hosted");
        jail.set_env("N8N_WEBHOOK_URL", "http://127.0.0.1:5678/webhook/x");
        jail.set_env("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", "7");
        jail.set_env("CALLFLEET_API_KEYS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb");
        let config = Config::from_figment(
            Figment::from(Toml::string(DEFAULT_TOML))
                .merge(env_provider())
                .merge(seed_env_provider()),
        )
        .expect("valid");
        assert_eq!(config.livekit.url.as_deref(), Some("ws://127.0.0.1:7880"));
        assert_eq!(config.sip.from_number.as_deref(), Some("+61123456789"));
        assert_eq!(
            config.sip.display_name.as_deref(),
            Some("LiveKit Nehos Hosted")
        );
        assert_eq!(config.agent.max_concurrent_calls, 7);
        assert_eq!(config.ingress.api_keys.len(), 2);
        Ok(())
    });
}

#[test]
fn errors_name_the_key() {
    let err = Config::from_toml("[sip]\ntransfer_timeout_secs = 0").expect_err("invalid");
    assert!(
        err.to_string().contains("sip.transfer_timeout_secs"),
        "{err}"
    );
    let err = Config::from_toml("[sip]\nringing_timeout_secs = 90").expect_err("invalid");
    assert!(
        err.to_string().contains("sip.ringing_timeout_secs"),
        "{err}"
    );
    let err = Config::from_toml("[agent]\nmax_concurrent_callz = 3").expect_err("unknown key");
    assert!(err.to_string().contains("max_concurrent_callz"), "{err}");
    let err =
        Config::from_toml("[agent]\nmax_concurrent_calls = \"many\"").expect_err("wrong type");
    assert!(err.to_string().contains("max_concurrent_calls"), "{err}");
    let err = Config::from_toml("[livekit]\nurl = \"ws://x:1\"").expect_err("half the credentials");
    assert!(err.to_string().contains("livekit"), "{err}");
}

#[test]
fn recording_defaults_to_nats_and_is_validated_by_key() {
    let config = Config::from_toml("").expect("defaults validate");
    assert_eq!(config.recording.backend, RecordingBackend::Nats);
    let egress = Config::from_toml("[recording]\nbackend = \"egress\"").expect("egress is valid");
    assert_eq!(egress.recording.backend, RecordingBackend::Egress);
    let err = Config::from_toml("[recording]\nbackend = \"s3\"").expect_err("unknown backend");
    assert!(err.to_string().contains("backend"), "{err}");
    let err = Config::from_toml("[recording]\nsegment_secs = 0").expect_err("zero segment");
    assert!(err.to_string().contains("recording.segment_secs"), "{err}");
}

#[test]
fn the_roles_probe_listeners_default_to_loopback_and_must_be_host_port() {
    let config = Config::from_toml("").expect("defaults validate");
    for listen in [
        &config.agent.metrics_listen,
        &config.notifier.metrics_listen,
        &config.campaigner.metrics_listen,
    ] {
        assert!(listen.starts_with("127.0.0.1:"), "{listen}");
    }
    let config = Config::from_toml("[agent]\nmetrics_listen = \"0.0.0.0:8081\"").expect("valid");
    assert_eq!(config.agent.metrics_listen, "0.0.0.0:8081");
    for (toml, key) in [
        ("[agent]\nmetrics_listen = \"8081\"", "agent.metrics_listen"),
        (
            "[notifier]\nmetrics_listen = \"localhost\"",
            "notifier.metrics_listen",
        ),
        (
            "[campaigner]\nmetrics_listen = \"\"",
            "campaigner.metrics_listen",
        ),
    ] {
        let err = Config::from_toml(toml).expect_err(toml).to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn livekit_agent_name_defaults_and_reads_its_env() {
    let config = Config::from_toml("").expect("defaults validate");
    assert_eq!(config.livekit.agent_name, "callfleet");
    figment::Jail::expect_with(|jail| {
        jail.set_env("LIVEKIT_AGENT_NAME", "inbound-agent");
        let config = Config::from_figment(
            Figment::from(Toml::string(DEFAULT_TOML)).merge(seed_env_provider()),
        )
        .expect("valid");
        assert_eq!(config.livekit.agent_name, "inbound-agent");
        Ok(())
    });
    let err = Config::from_toml("[livekit]\nagent_name = \" \"").expect_err("blank");
    assert!(err.to_string().contains("livekit.agent_name"), "{err}");
}
