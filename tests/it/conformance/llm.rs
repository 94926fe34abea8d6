//! LLM: OpenAI chat completions (`openai`) against the SSE stand-in.

use callfleet_standins::llm::{FakeLlm, LlmFail, LlmScript};
use callfleet_tests::scaled;
use callfleet_voice::providers::llm::{ChatMessage, LlmClient, LlmError, LlmEvent, Role, ToolSpec};
use serde_json::{Value, json};

use super::{clean, driver, resolve};

/// Our client: the same request as the driver, every event until the stream ends.
async fn ours(base_url: &str) -> Vec<Result<LlmEvent, LlmError>> {
    let mut env = callfleet_standins::env(
        base_url,
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
    );
    env.insert("OPENAI_BASE_URL".into(), base_url.into());
    let cfg = resolve(&json!({"llm": "gpt-4o-mini"}), &env);
    let client = LlmClient::new(cfg.llm).expect("client");
    let messages = [
        ChatMessage::new(Role::System, "Be brief."),
        ChatMessage::new(Role::User, "What are your hours?"),
    ];
    let tools = [ToolSpec {
        name: "end_call".into(),
        description: "Hang up.".into(),
        parameters: json!({"type": "object", "properties": {"reason": {"type": "string"}}}),
    }];
    let mut stream = client.stream(&messages, &tools);
    let mut events = Vec::new();
    let limit = scaled(std::time::Duration::from_secs(15));
    tokio::time::timeout(limit, async {
        while let Some(e) = stream.next().await {
            events.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("our LLM stream did not end within {limit:?}: {events:?}"));
    events
}

fn args(llm: &FakeLlm, key: &str) -> Value {
    json!({"base_url": llm.base_url, "key": key, "model": "gpt-4o-mini"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_openai_sdk_and_our_client_agree() {
    let script = LlmScript::text(0, &["We are open ", "nine to five."])
        .with_tool("end_call", r#"{"reason":"done"}"#);
    let (a, b) = (
        FakeLlm::start(vec![script.clone()]).await,
        FakeLlm::start(vec![script]).await,
    );
    let sdk = driver("openai", &args(&a, "sk-test-openai")).await;
    clean("openai", &sdk);
    assert_eq!(sdk["text"], json!(["We are open ", "nine to five."]));
    assert_eq!(
        sdk["tool_calls"],
        json!({"0": {"id": "call_0", "name": "end_call", "arguments": r#"{"reason":"done"}"#}})
    );
    assert_eq!(
        sdk["finish"],
        json!(["tool_calls"]),
        "the last choice says why it stopped"
    );
    assert_eq!(
        sdk["usage"],
        json!({"prompt_tokens": 42, "completion_tokens": 7})
    );
    let events: Vec<LlmEvent> = ours(&b.base_url)
        .await
        .into_iter()
        .map(|e| e.expect("our event"))
        .collect();
    assert_eq!(
        events,
        [
            LlmEvent::Text("We are open ".into()),
            LlmEvent::Text("nine to five.".into()),
            LlmEvent::Usage {
                prompt_tokens: 42,
                completion_tokens: 7
            },
            LlmEvent::ToolCall(callfleet_voice::providers::llm::ToolCall {
                id: "call_0".into(),
                name: "end_call".into(),
                arguments: r#"{"reason":"done"}"#.into(),
            }),
            LlmEvent::Done,
        ]
    );
    let (rs, ro) = (&a.requests()[0], &b.requests()[0]);
    assert_eq!(rs.auth.as_deref(), Some("Bearer sk-test-openai"));
    assert_eq!(ro.auth, rs.auth);
    for k in [
        "model",
        "messages",
        "tools",
        "stream",
        "stream_options",
        "parallel_tool_calls",
    ] {
        assert_eq!(
            ro.body[k], rs.body[k],
            "request field `{k}`: SDK {}, ours {}",
            rs.body, ro.body
        );
    }
    let keys = |b: &Value| -> std::collections::BTreeSet<String> {
        b.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&ro.body), keys(&rs.body), "the same request fields");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_openai_401_is_an_error_to_both_clients() {
    let llm = FakeLlm::start(vec![LlmScript::failing(LlmFail::Status(401))]).await;
    let sdk = driver("openai", &args(&llm, "sk-bad")).await;
    assert_eq!(
        sdk["errors"][0]["type"],
        json!("AuthenticationError"),
        "{sdk}"
    );
    assert_eq!(sdk["errors"][0]["status"], json!(401));
    match ours(&llm.base_url).await.as_slice() {
        [
            Err(LlmError::Status {
                status: 401, body, ..
            }),
        ] => assert!(body.contains("invalid_api_key"), "{body}"),
        other => panic!("our client saw {other:?}"),
    }
}
