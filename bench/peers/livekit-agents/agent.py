"""LiveKit Agents peer of callfleet's outbound agent (issue 14 section 5; seed 001's scenario).

A LiveKit Agents worker registered with an `agent_name` (explicit dispatch). Each job reads the
dispatch metadata (seed 001's shape: destination, account_code, caller_id, caller_name, ...),
starts an AgentSession (Silero VAD, deepgram.STT, openai.LLM, cartesia.TTS, all pointed at the
local provider stand-ins), dials the callee with CreateSIPParticipant through the outbound trunk
(X-Account-Code on the INVITE, as seed 001 does), converses, and ends the call when the LLM calls
`end_call` (or when the callee hangs up).

Everything comes from the environment, so the bench can start it like any worker:

  LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET   the server (read by the framework)
  SIP_TRUNK_ID                                       the outbound trunk to the SIPp callee
  SIP_FROM_NUMBER                                    caller number when the job gives none
  OPENAI_BASE_URL, DEEPGRAM_BASE_URL, CARTESIA_BASE_URL
                                                     the stand-ins: the OpenAI API root
                                                     (http://h:p/v1), Deepgram's listen URL
                                                     (ws://h:p/v1/listen), Cartesia's API root
                                                     (http://h:p; ws://h:p/tts/websocket is
                                                     accepted too and cut to its root)
  OPENAI_API_KEY, DEEPGRAM_API_KEY, CARTESIA_API_KEY placeholders (the stand-ins accept any)
  LK_PEER_AGENT_NAME      agent name to register (default callfleet-peer)
  LK_PEER_EXECUTOR        process (the framework's default) or thread
  LK_PEER_IDLE            num_idle_processes (default 4): size it to N
  LK_PEER_LOAD_THRESHOLD  the worker's load gate (default inf: never reports itself full)
  LK_PEER_INIT_TIMEOUT    initialize_process_timeout in s (default 60; the framework's 10)
  LK_PEER_METRICS         JSONL file: one line per metric / session event, per job
  LK_PEER_PREEMPTIVE      1: the framework's preemptive generation (its default); 0 (the
                          default here): off, as the density bench requires, so each reply's
                          LLM request starts at the end of turn, as callfleet's does there
  LK_PEER_GREETING        1: the agent speaks first (generate_reply) instead of waiting for
                          the callee's hello (callfleet waits for it; so does the default here)

Run: `.tools/lk-agents-venv/bin/python bench/peers/livekit-agents/agent.py start`.
The worker logs `registered worker` (JSON) once the server accepted it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from typing import Any

from google.protobuf import duration_pb2
from livekit import api
from livekit.agents import (
    Agent,
    AgentSession,
    JobContext,
    JobExecutorType,
    JobProcess,
    RunContext,
    WorkerOptions,
    cli,
    function_tool,
    get_job_context,
    room_io,
)
from livekit.plugins import cartesia, deepgram, openai, silero

AGENT_NAME = os.environ.get("LK_PEER_AGENT_NAME", "callfleet-peer")
INSTRUCTIONS = (
    "You are a phone agent placing an outbound call. Answer briefly; "
    "call end_call when the conversation is over."
)

_metrics_lock = threading.Lock()


def _write(record: dict[str, Any]) -> None:
    """One JSON line in LK_PEER_METRICS (jobs of the thread executor share the file)."""
    path = os.environ.get("LK_PEER_METRICS")
    if not path:
        return
    line = json.dumps(record, default=str) + "\n"
    with _metrics_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line)


def _api_root(url: str, suffix: str) -> str:
    return url[: -len(suffix)] if url.endswith(suffix) else url


def prewarm(proc: JobProcess) -> None:
    # Silero's ONNX model ships inside the plugin's wheel (resources/silero_vad.onnx).
    proc.userdata["vad"] = silero.VAD.load()


class OutboundAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)

    @function_tool
    async def end_call(self, ctx: RunContext, reason: str = "") -> None:
        """Hang up the call once the conversation is over."""
        await ctx.wait_for_playout()
        job = get_job_context()
        _write({"job": job.job.id, "t": time.time(), "event": "end_call", "reason": reason})
        # Deleting the room hangs up the SIP leg (livekit-sip sends BYE) and ends the job.
        await job.api.room.delete_room(api.DeleteRoomRequest(room=job.room.name))


async def entrypoint(ctx: JobContext) -> None:
    job_id = ctx.job.id
    meta = json.loads(ctx.job.metadata or "{}")
    destination = meta["destination"]
    identity = f"sip-{destination}"
    # The pid names the job's process (process executor) for the bench's per-job PSS.
    _write(
        {
            "job": job_id,
            "t": time.time(),
            "event": "job_start",
            "room": ctx.room.name,
            "pid": os.getpid(),
        }
    )

    await ctx.connect()

    preemptive = os.environ.get("LK_PEER_PREEMPTIVE", "0") == "1"
    session = AgentSession(
        turn_handling={"preemptive_generation": {"enabled": preemptive}},
        vad=ctx.proc.userdata["vad"],
        stt=deepgram.STT(
            model="nova-3",
            base_url=os.environ["DEEPGRAM_BASE_URL"],
            api_key=os.environ.get("DEEPGRAM_API_KEY", "dg-test"),
        ),
        llm=openai.LLM(
            model="gpt-4o-mini",
            base_url=os.environ["OPENAI_BASE_URL"],
            api_key=os.environ.get("OPENAI_API_KEY", "sk-test"),
        ),
        tts=cartesia.TTS(
            model="sonic-3",
            voice=os.environ.get("CARTESIA_VOICE_ID", "voice-123"),
            base_url=_api_root(os.environ["CARTESIA_BASE_URL"], "/tts/websocket").replace(
                "ws", "http", 1
            ),
            api_key=os.environ.get("CARTESIA_API_KEY", "sk_car_test"),
        ),
    )

    @session.on("metrics_collected")
    def _on_metrics(ev: Any) -> None:
        _write({"job": job_id, "t": time.time(), "event": "metrics", **ev.metrics.model_dump()})

    @session.on("user_input_transcribed")
    def _on_transcript(ev: Any) -> None:
        _write(
            {
                "job": job_id,
                "t": time.time(),
                "event": "transcript",
                "final": ev.is_final,
                "text": ev.transcript,
            }
        )

    @session.on("agent_state_changed")
    def _on_agent_state(ev: Any) -> None:
        _write({"job": job_id, "t": time.time(), "event": "agent_state", "state": ev.new_state})

    @session.on("user_state_changed")
    def _on_user_state(ev: Any) -> None:
        _write({"job": job_id, "t": time.time(), "event": "user_state", "state": ev.new_state})

    @session.on("close")
    def _on_close(ev: Any) -> None:
        _write({"job": job_id, "t": time.time(), "event": "close", "reason": str(ev.reason)})

    # As LiveKit's outbound examples (and seed 001) do: the session starts while the phone
    # rings, so it hears the callee from the answer.
    started = asyncio.create_task(
        session.start(
            agent=OutboundAgent(),
            room=ctx.room,
            room_options=room_io.RoomOptions(participant_identity=identity),
            record=False,
        )
    )

    caller = meta.get("caller_number") or os.environ.get("SIP_FROM_NUMBER", "")
    headers = {"X-Account-Code": meta["account_code"]} if meta.get("account_code") else {}
    try:
        await ctx.api.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                room_name=ctx.room.name,
                sip_trunk_id=meta.get("sip_trunk_id") or os.environ["SIP_TRUNK_ID"],
                sip_call_to=destination,
                sip_number=caller,
                participant_identity=identity,
                participant_name=meta.get("caller_name", ""),
                headers=headers,
                wait_until_answered=True,
                ringing_timeout=duration_pb2.Duration(seconds=30),
            )
        )
    except api.TwirpError as e:
        _write(
            {
                "job": job_id,
                "t": time.time(),
                "event": "dial_failed",
                "code": e.code,
                "message": e.message,
                "sip_status": e.metadata.get("sip_status_code"),
            }
        )
        started.cancel()
        ctx.shutdown()
        return
    _write({"job": job_id, "t": time.time(), "event": "answered"})
    await started
    await ctx.wait_for_participant(identity=identity)
    if os.environ.get("LK_PEER_GREETING") == "1":
        session.generate_reply(instructions="Greet the callee.")


def options() -> WorkerOptions:
    executor = os.environ.get("LK_PEER_EXECUTOR", "process")
    idle = int(os.environ.get("LK_PEER_IDLE", "4"))
    threshold = float(os.environ.get("LK_PEER_LOAD_THRESHOLD", "inf"))
    return WorkerOptions(
        entrypoint_fnc=entrypoint,
        prewarm_fnc=prewarm,
        agent_name=AGENT_NAME,
        job_executor_type=(
            JobExecutorType.THREAD if executor == "thread" else JobExecutorType.PROCESS
        ),
        num_idle_processes=idle,
        # A warm process imports the plugins and loads Silero: on a loaded 2-core machine that
        # can outlast the default 10 s, and the pool then kills and respawns it forever.
        initialize_process_timeout=float(os.environ.get("LK_PEER_INIT_TIMEOUT", "60")),
        load_threshold=threshold if not math.isnan(threshold) else math.inf,
        # The health-check HTTP server: an ephemeral port (8081 by default would clash).
        port=int(os.environ.get("LK_PEER_HTTP_PORT", "0")),
        host="127.0.0.1",
    )


if __name__ == "__main__":
    cli.run_app(options())
