"""Records the OTLP/protobuf bodies real Python GenAI instrumentations send, for the replay test.

Runs a small agent loop (tool calls, one 429, one 5xx) with the `openai` client against a mock
OpenAI server in this process, exports through the real OTLP/HTTP protobuf exporter to a capture
server here, and writes each request body to test/fixtures/python/<setup>/NN.pb.

    python test/conformance/python/record.py            # every setup
    python test/conformance/python/record.py openai-v2  # one

Needs: openai, opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http,
opentelemetry-instrumentation-openai-v2 (pip install --pre), opentelemetry-instrumentation-httpx,
openinference-instrumentation-openai, and OpenLLMetry's opentelemetry-instrumentation-openai. Each setup runs in its own process (instrumentors patch
the openai module for good).
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "test" / "fixtures" / "python"
SETUPS = ("openai-v2", "openinference", "openllmetry")
MODEL = "gpt-4o-mini"
DATED_MODEL = "gpt-4o-mini-2024-07-18"
RATE_HEADERS = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-remaining-tokens": "180000",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-reset-tokens": "6s",
}

# What the mock answers, call by call: (status, reply). The agent loop below makes exactly these calls.
SCRIPT = [
    (200, {"tool": "get_weather", "args": {"city": "Lisbon"}}),
    (200, {"text": "It is sunny in Lisbon."}),
    (200, {"tool": "search", "args": {"q": "Lisbon museums"}}),
    (429, {"error": {"message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500, Used 500.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}),
    (500, {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}}),
    (200, {"text": "The Gulbenkian is worth a visit."}),
]


def completion(n, reply):
    message = {"role": "assistant", "content": reply.get("text")}
    finish = "stop"
    if "tool" in reply:
        message["tool_calls"] = [{"id": f"call_{n}", "type": "function", "function": {"name": reply["tool"], "arguments": json.dumps(reply["args"])}}]
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1764000000 + n,
        "model": DATED_MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100 + 10 * n, "completion_tokens": 20 + n, "total_tokens": 120 + 11 * n},
    }


class MockOpenAI(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        n = MockOpenAI.calls
        MockOpenAI.calls += 1
        status, reply = SCRIPT[n]
        body = json.dumps(completion(n, reply) if status == 200 else reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in RATE_HEADERS.items():
            self.send_header(name, "0" if status == 429 and name == "x-ratelimit-remaining-requests" else value)
        if status == 429:
            self.send_header("retry-after", "1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


class Capture(BaseHTTPRequestHandler):
    out: Path
    count = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Capture.count += 1
        (Capture.out / f"{Capture.count:02d}.pb").write_bytes(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


TOOLS = [
    {"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object", "properties": {key: {"type": "string"}}}}}
    for name, key in (("get_weather", "city"), ("search", "q"))
]


def agent_loop(client, conversation):
    """Six model calls: a tool call answered, another tool call, a 429, a 5xx, then the answer."""
    import openai

    messages = [{"role": "user", "content": "Weather in Lisbon, then a museum?"}]
    for _ in range(len(SCRIPT)):
        with conversation():
            try:
                response = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
            except (openai.RateLimitError, openai.InternalServerError):
                continue
        choice = response.choices[0].message
        messages.append(choice.model_dump(exclude_none=True))
        for call in choice.tool_calls or []:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "done"})


def record(setup):
    from contextlib import nullcontext

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    out = FIXTURES / setup
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pb"):
        old.unlink()
    Capture.out = out
    capture = serve(Capture)
    mock = serve(MockOpenAI)

    # The tenant only through the environment, as a new user would set it.
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"tenant.id=py-{setup},service.name=py-agent-{setup}"
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{capture.server_port}/v1/traces")))
    trace.set_tracer_provider(provider)

    conversation = nullcontext
    if setup == "openai-v2":
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        # The quota headers only an HTTP client instrumentation records, on its own child span.
        os.environ["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE"] = ",".join(RATE_HEADERS)
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif setup == "openllmetry":
        # Traceloop's instrumentation alone, without traceloop-sdk (which alone sets association properties).
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        from openinference.instrumentation import using_session

        # Small fixtures: the tool definitions and parameters repeat on every call; the messages stay.
        os.environ.setdefault("OPENINFERENCE_HIDE_LLM_TOOLS", "true")
        os.environ.setdefault("OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS", "true")
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        conversation = lambda: using_session("conv-py-1")  # noqa: E731

    import openai

    client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{mock.server_port}/v1", max_retries=0)
    agent_loop(client, conversation)
    provider.shutdown()
    capture.shutdown()
    mock.shutdown()
    print(f"{setup}: {MockOpenAI.calls} model calls, {Capture.count} OTLP request(s) in {out.relative_to(ROOT)}")


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SETUPS)
    if len(chosen) == 1:
        record(chosen[0])
    else:
        for setup in chosen:
            subprocess.run([sys.executable, __file__, setup], check=True)
