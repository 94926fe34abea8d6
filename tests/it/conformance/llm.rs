//! LLM: OpenAI chat completions (`openai`).
