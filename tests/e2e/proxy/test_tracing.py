"""Tracing end to end: a collector (a real HTTP server in this process) receives the proxy's
OTLP/HTTP JSON (or Zipkin v2) batches; their trace ids are the ones the requests carried
(traceparent or B3) and the upstream saw; the sampling ratio and the parent's sampled flag are
honoured; with the collector down, requests still pass and the dropped spans are counted."""

import http.server
import json
import re
import threading
import time
import unittest

from misbehaving import ProxyCase, get, start_proxy, start_upstream

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collector:
    """Records the JSON bodies POSTed to it; answers 200 (or `status`)."""

    def __init__(self, status=200):
        self.bodies = []
        self.paths = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with collector.lock:
                    collector.paths.append(self.path)
                    collector.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def otlp_spans(self):
        with self.lock:
            bodies = list(self.bodies)
        return [span for body in bodies for resource in body["resourceSpans"]
                for scope in resource["scopeSpans"] for span in scope["spans"]]

    def wait_spans(self, count, timeout=5.0, spans=None):
        spans = spans or self.otlp_spans
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = spans()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return spans()


def attributes(span):
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


class Tracing(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.collector = Collector()
        self.addCleanup(self.collector.close)

    def proxy(self, sampling, fmt="otlp", endpoint=None, extra=""):
        endpoint = endpoint or "http://127.0.0.1:%d/v1/traces" % self.collector.port
        return start_proxy(self, self.upstream, extra_top=(
            "node: { id: pod-1, service: checkout }\n"
            "tracing:\n"
            "  sampling: %s\n%s"
            "  export: { endpoint: %s, format: %s, flush_interval: 100ms }\n"
            % (sampling, extra, endpoint, fmt)))

    def test_spans_carry_the_callers_trace_and_reach_the_collector(self):
        proxy = self.proxy(0)
        # The caller sampled the trace: the ratio (0) does not matter, the parent's flag does.
        resp = get(proxy.port, "/echo-head?q=1",
                   extra="traceparent: 00-%s-%s-01\r\n" % (TRACE, PARENT))
        self.assertEqual(resp.status, 200)
        forwarded = re.search(r"traceparent: 00-([0-9a-f]{32})-([0-9a-f]{16})-01",
                              resp.body.decode())
        self.assertIsNotNone(forwarded, resp.body)
        self.assertEqual(forwarded.group(1), TRACE)
        spans = self.collector.wait_spans(1)
        self.assertEqual(len(spans), 1)
        span = spans[0]
        self.assertEqual(span["traceId"], TRACE)
        self.assertEqual(span["parentSpanId"], PARENT)
        # The span the upstream was told about is this hop's span.
        self.assertEqual(span["spanId"], forwarded.group(2))
        self.assertEqual(span["kind"], 3)  # client: the app called out through its sidecar
        attrs = attributes(span)
        self.assertEqual(attrs["http.request.method"], "GET")
        self.assertEqual(attrs["url.path"], "/echo-head")
        self.assertEqual(str(attrs["http.response.status_code"]), "200")
        self.assertEqual(attrs["pillion.request_id"], resp.header("x-request-id"))
        self.assertEqual(attrs["pillion.cluster"], "app")
        body = self.collector.bodies[0]
        service = {a["key"]: a["value"]["stringValue"]
                   for a in body["resourceSpans"][0]["resource"]["attributes"]}
        self.assertEqual(service["service.name"], "checkout")
        self.assertEqual(self.collector.paths[0], "/v1/traces")

    def test_unsampled_parent_and_zero_ratio_send_nothing(self):
        proxy = self.proxy(0)
        get(proxy.port, "/ok", extra="traceparent: 00-%s-%s-00\r\n" % (TRACE, PARENT))
        get(proxy.port, "/ok")  # new trace, ratio 0
        # A sampled request afterwards proves the pipeline works: only it arrives.
        get(proxy.port, "/ok", extra="traceparent: 00-%s-%s-01\r\n" % ("1" * 32, PARENT))
        spans = self.collector.wait_spans(1)
        time.sleep(0.4)
        spans = self.collector.otlp_spans()
        self.assertEqual([s["traceId"] for s in spans], ["1" * 32])

    def test_ratio_one_samples_every_new_trace(self):
        proxy = self.proxy(1)
        ids = {get(proxy.port, "/ok").header("x-request-id") for _ in range(20)}
        spans = self.collector.wait_spans(20)
        self.assertEqual(len(spans), 20)
        self.assertEqual({attributes(s)["pillion.request_id"] for s in spans}, ids)
        self.assertEqual(len({s["traceId"] for s in spans}), 20)
        self.assertTrue(all("parentSpanId" not in s or not s["parentSpanId"] for s in spans))

    def test_b3_in_and_b3_out(self):
        proxy = self.proxy(0, extra="  emit: [w3c, b3multi]\n")
        resp = get(proxy.port, "/echo-head",
                   extra="X-B3-TraceId: %s\r\nX-B3-SpanId: %s\r\nX-B3-Sampled: 1\r\n"
                         % (TRACE, PARENT))
        head = resp.body.decode().lower()
        self.assertIn("x-b3-traceid: %s" % TRACE, head)
        self.assertIn("x-b3-parentspanid: %s" % PARENT, head)
        self.assertIn("traceparent: 00-%s-" % TRACE, head)
        span = self.collector.wait_spans(1)[0]
        self.assertEqual((span["traceId"], span["parentSpanId"]), (TRACE, PARENT))

    def test_b3_single_header_in_and_out(self):
        proxy = self.proxy(0, extra="  emit: [b3]\n")
        resp = get(proxy.port, "/echo-head", extra="b3: %s-%s-1\r\n" % (TRACE, PARENT))
        head = resp.body.decode().lower()
        forwarded = re.search(r"b3: ([0-9a-f]{32})-([0-9a-f]{16})-1-([0-9a-f]{16})", head)
        self.assertIsNotNone(forwarded, head)
        self.assertEqual((forwarded.group(1), forwarded.group(3)), (TRACE, PARENT))
        self.assertNotIn("traceparent:", head)  # only the formats asked for are emitted
        span = self.collector.wait_spans(1)[0]
        self.assertEqual(span["spanId"], forwarded.group(2))

    def test_zipkin_format(self):
        proxy = self.proxy(1, fmt="zipkin",
                           endpoint="http://127.0.0.1:%d" % self.collector.port)
        rid = get(proxy.port, "/ok").header("x-request-id")

        def zipkin_spans():
            with self.collector.lock:
                return [span for body in self.collector.bodies for span in body]

        spans = self.collector.wait_spans(1, spans=zipkin_spans)
        self.assertEqual(len(spans), 1)
        self.assertEqual(spans[0]["tags"]["pillion.request_id"], rid)
        self.assertEqual(spans[0]["kind"], "CLIENT")
        self.assertEqual(self.collector.paths[0], "/api/v2/spans")

    def test_collector_down_costs_requests_nothing_and_spans_are_counted(self):
        self.collector.close()
        proxy = self.proxy(1, endpoint="http://127.0.0.1:%d/v1/traces" % self.collector.port)
        for _ in range(30):
            self.assertEqual(get(proxy.port, "/ok").status, 200)
        deadline = time.monotonic() + 5
        dropped = 0
        while time.monotonic() < deadline:
            dropped = proxy.stats().get("tracing_spans_dropped", 0)
            if dropped >= 30:
                break
            time.sleep(0.1)
        self.assertEqual(dropped, 30)
        self.assertEqual(proxy.stats().get("tracing_spans_exported"), 0)


if __name__ == "__main__":
    unittest.main()
