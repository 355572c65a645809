"""Run-failure notices, posted to a real webhook server on a loopback socket (HTTP and HTTPS)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from pipeline.alerts import AlertError, FailureSummary, one_line, post_failure, safe_url

SUMMARY = FailureSummary(
    run_id="5f2c9a1e",
    job="nightly_sync",
    reason="m3ter unavailable: still failing after 5 attempts",
    partitions=("2024-03-01",),
)
# Where a webhook URL keeps its secret: Slack's in the path, others in the query or userinfo.
PATH_SECRET = "B07SECRETPATH/xoxb4f1d2e3c"
QUERY_SECRET = "tok3n-in-the-query"
USER, PASSWORD = "hookuser", "hookpassw0rd"
SECRETS = ("B07SECRETPATH", "xoxb4f1d2e3c", QUERY_SECRET, USER, PASSWORD)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Webhook:
    """A webhook server: what it received, and how it answers (settable per test)."""

    base: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    answer: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    stall: threading.Event | None = None  # answer only once set

    def url(self, path: str = "/hooks/T000/" + PATH_SECRET, query: str = "") -> str:
        return self.base + path + (f"?{query}" if query else "")

    def secret_url(self) -> str:
        """The webhook's URL with a secret in each of userinfo, path and query."""
        scheme, rest = self.base.split("://")
        return f"{scheme}://{USER}:{PASSWORD}@{rest}/hooks/T000/{PATH_SECRET}?token={QUERY_SECRET}"


def handler_for(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            hook.received.append(Received(self.path, dict(self.headers.items()), body))
            if hook.stall is not None:
                hook.stall.wait(timeout=30)
            self.send_response(hook.status)
            for name, value in hook.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(hook.answer)))
            self.end_headers()
            self.wfile.write(hook.answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A throwaway CA and a server context for 127.0.0.1, as the sandbox makes them."""
    ca = trustme.CA(organization_name="m3sync alerts test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def serve(context: ssl.SSLContext | None) -> Iterator[Webhook]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    hook = Webhook(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = handler_for(hook)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        if hook.stall is not None:
            hook.stall.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    yield from serve(None)


@pytest.fixture
def https_webhook(tls: tuple[ssl.SSLContext, Path]) -> Iterator[Webhook]:
    yield from serve(tls[0])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused_error(call: Callable[[], None]) -> str:
    with pytest.raises(AlertError) as caught:
        call()
    return str(caught.value)


# ---- the notice ---------------------------------------------------------------------------------


def test_the_webhook_receives_one_json_post_with_a_slack_text(webhook):
    post_failure(webhook.url(), SUMMARY)
    (request,) = webhook.received
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body)["text"] == (
        "m3sync run 5f2c9a1e (nightly_sync, partition 2024-03-01) failed: "
        "m3ter unavailable: still failing after 5 attempts"
    )


def test_the_body_carries_run_job_partitions_and_reason_as_fields(webhook):
    post_failure(webhook.url(), SUMMARY)
    body = json.loads(webhook.received[0].body)
    assert {k: body[k] for k in ("run_id", "job", "partitions", "reason")} == {
        "run_id": "5f2c9a1e",
        "job": "nightly_sync",
        "partitions": ["2024-03-01"],
        "reason": "m3ter unavailable: still failing after 5 attempts",
    }


def test_the_webhook_path_and_query_are_used_as_given(webhook):
    post_failure(webhook.url("/hooks/a", "channel=ops"), SUMMARY)
    assert webhook.received[0].path == "/hooks/a?channel=ops"


def test_several_partitions_are_shown_as_a_count_and_a_range():
    summary = FailureSummary("r1", "backfill", "boom", ["2024-03-03", "2024-03-01", "2024-03-02"])
    assert (
        summary.text()
        == "m3sync run r1 (backfill, 3 partitions 2024-03-01..2024-03-03) failed: boom"
    )


def test_a_run_without_partitions_names_only_its_job():
    assert (
        FailureSummary("r1", "load_all", "boom").text() == "m3sync run r1 (load_all) failed: boom"
    )


def test_a_multi_line_reason_is_sent_as_one_line(webhook):
    summary = FailureSummary("r1", "nightly_sync", "staging failed:\n  pricings\tcheck failed\n")
    post_failure(webhook.url(), summary)
    body = json.loads(webhook.received[0].body)
    assert body["reason"] == "staging failed: pricings check failed"
    assert body["text"].endswith("failed: staging failed: pricings check failed")


# ---- one_line -----------------------------------------------------------------------------------


def test_one_line_collapses_newlines_and_runs_of_whitespace():
    assert one_line("  views not created:\n\n raw.order_item:   IO Error  ") == (
        "views not created: raw.order_item: IO Error"
    )


def test_one_line_keeps_a_traceback_s_last_line_the_exception():
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "pipeline/load/run.py", line 98, in load\n'
        "    outcomes = apply(client, actions, current, concurrency)\n"
        "pipeline.m3ter.errors.M3terUnavailable: GET /plans: 503: still failing\n"
    )
    assert one_line(traceback) == (
        "pipeline.m3ter.errors.M3terUnavailable: GET /plans: 503: still failing"
    )


def test_one_line_cuts_a_long_reason_to_the_limit_with_an_ellipsis():
    shortened = one_line("word " * 200)
    assert len(shortened) <= 300
    assert shortened.endswith("…")
    assert shortened.startswith("word word")


def test_one_line_leaves_a_short_reason_as_it_is():
    assert one_line("x" * 300) == "x" * 300


def test_one_line_of_an_empty_reason_says_so():
    assert one_line(" \n ") == "no reason given"


# ---- failures -----------------------------------------------------------------------------------


def test_a_500_answer_raises_an_alert_error_with_the_status_and_the_answer(webhook):
    webhook.status, webhook.answer = 500, b"internal error: no_service"
    message = refused_error(lambda: post_failure(webhook.url(), SUMMARY))
    assert "HTTP 500" in message
    assert "internal error: no_service" in message
    assert message.startswith(f"failure alert to {webhook.base}/… not delivered")


def test_a_404_answer_is_an_alert_error_too(webhook):
    webhook.status, webhook.answer = 404, b"no_team"
    assert "HTTP 404: no_team" in refused_error(lambda: post_failure(webhook.url(), SUMMARY))


def test_only_the_start_of_a_large_error_page_is_quoted(webhook):
    webhook.status, webhook.answer = 502, b"<html>" + b"x" * 100_000
    message = refused_error(lambda: post_failure(webhook.url(), SUMMARY))
    assert len(message) < 400


def test_a_redirect_is_not_followed(webhook):
    webhook.status, webhook.headers = 302, {"Location": webhook.url("/elsewhere")}
    assert "HTTP 302" in refused_error(lambda: post_failure(webhook.url(), SUMMARY))
    assert [r.path for r in webhook.received] == ["/hooks/T000/" + PATH_SECRET]


def test_no_secret_part_of_the_url_appears_in_an_http_error(webhook):
    webhook.status = 500
    webhook.answer = f"bad token {QUERY_SECRET} for {PATH_SECRET}".encode()
    message = refused_error(lambda: post_failure(webhook.secret_url(), SUMMARY))
    assert "HTTP 500" in message
    assert [secret for secret in SECRETS if secret in message] == []


def test_no_secret_part_of_the_url_appears_when_the_connection_is_refused():
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{closed_port()}/x/{PATH_SECRET}?t={QUERY_SECRET}"
    with pytest.raises(AlertError) as caught:
        post_failure(url, SUMMARY, timeout=5)
    message = str(caught.value)
    assert "ConnectionError" in message
    assert [secret for secret in SECRETS if secret in message] == []


def test_the_error_does_not_chain_requests_exception_which_quotes_the_url():
    url = f"http://127.0.0.1:{closed_port()}/x/{PATH_SECRET}?t={QUERY_SECRET}"
    with pytest.raises(AlertError) as caught:
        post_failure(url, SUMMARY, timeout=5)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_webhook_that_does_not_answer_fails_within_the_timeout(webhook):
    webhook.stall = threading.Event()
    started = time.monotonic()
    message = refused_error(lambda: post_failure(webhook.secret_url(), SUMMARY, timeout=0.5))
    assert time.monotonic() - started < 5
    assert "Timeout" in message
    assert [secret for secret in SECRETS if secret in message] == []


def test_a_url_that_is_not_http_is_refused_without_being_echoed():
    message = refused_error(lambda: post_failure(f"ftp://{USER}:{PASSWORD}@host/x", SUMMARY))
    assert "http(s) URL" in message
    assert USER not in message and PASSWORD not in message


def test_safe_url_keeps_scheme_host_and_port_only():
    url = f"https://{USER}:{PASSWORD}@hooks.example.com:8443/services/{PATH_SECRET}?t=1#f"
    assert safe_url(url) == "https://hooks.example.com:8443/…"


# ---- TLS ----------------------------------------------------------------------------------------


def test_an_https_webhook_is_verified_against_the_given_ca_file(https_webhook, tls):
    post_failure(https_webhook.url(), SUMMARY, ca_file=str(tls[1]))
    assert json.loads(https_webhook.received[0].body)["run_id"] == "5f2c9a1e"


def test_an_https_webhook_not_signed_by_a_trusted_ca_is_refused(https_webhook):
    message = refused_error(lambda: post_failure(https_webhook.secret_url(), SUMMARY))
    assert "SSLError" in message
    assert https_webhook.received == []
    assert [secret for secret in SECRETS if secret in message] == []


def test_requests_ca_bundle_from_the_environment_is_not_trusted(https_webhook, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[1]))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls[1]))
    assert "SSLError" in refused_error(lambda: post_failure(https_webhook.url(), SUMMARY))


def test_proxy_variables_from_the_environment_are_ignored(webhook, monkeypatch):
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    post_failure(webhook.url(), SUMMARY)
    assert len(webhook.received) == 1
