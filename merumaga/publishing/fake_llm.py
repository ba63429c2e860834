"""A stand-in OpenAI-compatible chat-completions server, for the tests and for trying the LLM
path on a machine with no model: it answers with the offline digest of the text it is sent, and
can be told to fail, be slow, refuse the key or make things up.

    .venv/bin/python -m merumaga.publishing.fake_llm --port 8089
    MERUMAGA_LLM_BASE_URL=http://127.0.0.1:8089/v1 MERUMAGA_LLM_MODEL=fake make run

The behaviour is chosen by the first part of the base URL's path (or --mode):

    /v1                 answers
    /hallucinate/v1     adds a sentence with a made-up company, number and date; asked again
                        with the failures named, answers truthfully
    /stubborn/v1        makes things up every time
    /fail/v1            HTTP 500
    /slow/v1            answers after --delay seconds (default 5)
    /refuse/v1          HTTP 401, its body quoting the key it was sent
    /redirect/v1        HTTP 307 to /v1 (a client must not follow it with the key)
    /broken/v1          an answer cut short: fewer bytes than its Content-Length says
    /trickle/v1         an answer sent a byte every 0.2 s
"""

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from merumaga.publishing import digest

MODES = (
    "answer",
    "hallucinate",
    "stubborn",
    "fail",
    "slow",
    "refuse",
    "redirect",
    "broken",
    "trickle",
)
MADE_UP = {
    "ja": "なお、ゼータ精機は2031年に売上高を前年比237%増の9876億円に伸ばした。",
    "en": "Zeta Instruments grew its sales by 237 percent to 9876 million in 2031.",
}


class FakeLlm(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, mode: str = "answer", delay: float = 5.0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.mode, self.delay = mode, delay
        self.requests: list[dict] = []  # each request's JSON body and Authorization header

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting
            super().handle_error(request, client_address)

    def base_url(self, mode: str = "") -> str:
        prefix = f"/{mode}" if mode and mode != "answer" else ""
        return f"http://127.0.0.1:{self.server_address[1]}{prefix}/v1"

    def start(self) -> "FakeLlm":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


def _article(content: str) -> str:
    """The text after the request's title line."""
    head, _sep, rest = content.partition("\n\n")
    _title, _sep, text = rest.partition("\n\n")
    return text or rest or head


def _answer(messages: list[dict], mode: str) -> str:
    asked = next(m["content"] for m in messages if m["role"] == "user")
    text = _article(asked)
    english = asked.startswith("Write ")
    truthful = digest.draft(text, 200).digest or text[:200]
    retried = len([m for m in messages if m["role"] == "user"]) > 1
    if mode == "stubborn" or (mode == "hallucinate" and not retried):
        return f"{truthful}{' ' if english else ''}{MADE_UP['en' if english else 'ja']}"
    return truthful


class _Handler(BaseHTTPRequestHandler):
    server: FakeLlm

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet in tests

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        mode = parts[0] if parts[0] in MODES else self.server.mode
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        authorization = self.headers.get("Authorization", "")
        self.server.requests.append({"body": body, "authorization": authorization, "mode": mode})
        if not self.path.endswith("/chat/completions"):
            return self._reply(404, {"error": {"message": "not found"}})
        if mode == "fail":
            return self._reply(500, {"error": {"message": "the model is overloaded"}})
        if mode == "refuse":
            message = f"Incorrect API key provided: {authorization.removeprefix('Bearer ')}"
            return self._reply(401, {"error": {"message": message}})
        if mode == "redirect":
            self.send_response(307)
            self.send_header("Location", self.server.base_url() + "/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if mode == "broken":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"choices": [')
            self.close_connection = True
            return None
        if mode == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "50")
            self.end_headers()
            for _byte in range(50):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
            return None
        if mode == "slow":
            time.sleep(self.server.delay)
        content = _answer(body.get("messages", []), mode)
        self._reply(
            200,
            {
                "id": "fake",
                "object": "chat.completion",
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--mode", choices=MODES, default="answer")
    parser.add_argument("--delay", type=float, default=5.0)
    options = parser.parse_args()
    server = FakeLlm(options.port, options.mode, options.delay)
    print(f"MERUMAGA_LLM_BASE_URL={server.base_url()} (mode: {options.mode}; Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
