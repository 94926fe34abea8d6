"""OpenAI's official Python SDK (`openai`) against the stand-in's `/v1/chat/completions`:
`base_url` set to the stand-in, a streamed chat completion with one tool, usage requested.
Prints the text deltas, the tool calls as the SDK's chunks assembled them, the usage, and
what the SDK raised; every chunk is validated strictly against `ChatCompletionChunk`.

Args: {"base_url": "http://127.0.0.1:<port>/v1", "key": "...", "model": "..."}.
"""

from common import args, emit, error_text, strict

import openai
from openai.types.chat import ChatCompletionChunk

a = args()
out = {"text": [], "tool_calls": {}, "usage": None, "finish": [], "errors": [], "schema_errors": []}
client = openai.OpenAI(api_key=a["key"], base_url=a["base_url"], max_retries=0, timeout=10)
tool = {"type": "function", "function": {
    "name": "end_call", "description": "Hang up.",
    "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}
try:
    stream = client.chat.completions.create(
        model=a["model"],
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What are your hours?"}],
        tools=[tool],
        parallel_tool_calls=False,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        out["schema_errors"] += strict(ChatCompletionChunk, chunk.model_dump(exclude_unset=True))
        if chunk.usage:
            out["usage"] = {"prompt_tokens": chunk.usage.prompt_tokens,
                            "completion_tokens": chunk.usage.completion_tokens}
        for choice in chunk.choices:
            if choice.delta.content:
                out["text"].append(choice.delta.content)
            for tc in choice.delta.tool_calls or []:
                call = out["tool_calls"].setdefault(str(tc.index), {"id": None, "name": "", "arguments": ""})
                call["id"] = tc.id or call["id"]
                if tc.function:
                    call["name"] += tc.function.name or ""
                    call["arguments"] += tc.function.arguments or ""
            if choice.finish_reason:
                out["finish"].append(choice.finish_reason)
except openai.APIStatusError as e:
    out["errors"].append({"type": type(e).__name__, "status": e.status_code, "message": e.message[:300]})
except Exception as e:
    out["errors"].append(error_text(e))
emit(out)
