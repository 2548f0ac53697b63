"""Connection limits and timeouts of a real server process, with real sockets on 127.0.0.1: slow and idle
clients are answered and closed within the limits, never held open, and never lock others out for long."""

import json
import select
import socket
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow  # a real server process

HEALTH = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(connection: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it (seconds from now)."""
    started, data = time.monotonic(), b""
    connection.settimeout(within)
    try:
        while chunk := connection.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open over {within} s; it sent {data[:200]!r}")
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response else 0


def health_answers(server) -> bool:
    with urllib.request.urlopen(f"{server.url}/v2/health/live", timeout=5) as response:
        return json.loads(response.read()) == {"live": True}


def test_half_sent_request_heads_get_408_and_are_closed(limited_server):
    clients = [connect(limited_server) for _ in range(20)]
    for client in clients:
        client.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
    for client in clients:
        response, waited = read_until_closed(client, within=5)
        assert status_of(response) == 408 and b"headers did not arrive within 1 s" in response
        client.close()
    assert health_answers(limited_server)


def test_a_trickled_request_head_is_timed_from_its_first_byte(limited_server):
    client = connect(limited_server)
    started = time.monotonic()
    for byte in b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes":  # a byte each 0.1 s: over 4 s
        if select.select([client], [], [], 0.1)[0]:  # the server answered
            break
        client.sendall(bytes([byte]))
    answered_after = time.monotonic() - started
    response, _ = read_until_closed(client, within=5)
    assert status_of(response) == 408 and answered_after < 3
    client.close()


def test_half_sent_bodies_get_408_and_are_closed(limited_server):
    clients = [connect(limited_server) for _ in range(10)]
    for client in clients:
        client.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n{\"texts\": [")
    for client in clients:
        response, _ = read_until_closed(client, within=6)
        assert status_of(response) == 408 and b"body did not arrive within 1.5 s" in response
        assert b"connection: close" in response.lower()
        client.close()


def test_request_heads_over_the_limit_get_431(limited_server):
    client = connect(limited_server)
    client.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 20_000 + b"\r\n\r\n")
    response, _ = read_until_closed(client, within=5)
    assert status_of(response) == 431 and b"8,192-byte limit" in response
    client.close()
    client = connect(limited_server)  # and a head that never ends is cut off once over the limit
    client.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    time.sleep(0.1)
    client.sendall(b"X-Padding: " + b"a" * 20_000)
    response, waited = read_until_closed(client, within=5)
    assert status_of(response) == 431 and waited < 1
    client.close()


def test_idle_connections_are_capped_then_closed_and_health_answers_again(limited_server):
    time.sleep(1.5)  # connections of earlier tests are closed by now
    idle = [connect(limited_server) for _ in range(40)]
    time.sleep(0.3)
    extra = connect(limited_server)  # over the 40-connection limit: 503 with Retry-After, closed at once
    response, waited = read_until_closed(extra, within=3)
    assert status_of(response) == 503 and b"retry-after: 1" in response.lower() and waited < 3
    extra.close()
    for connection in idle:  # each idle connection is closed after the 1 s keep-alive timeout
        data, _ = read_until_closed(connection, within=5)
        assert data == b""
        connection.close()
    assert health_answers(limited_server)


def test_keep_alive_connections_are_closed_when_idle(limited_server):
    client = connect(limited_server)
    client.sendall(HEALTH)
    time.sleep(0.2)
    first = client.recv(65536)
    assert status_of(first) == 200
    rest, waited = read_until_closed(client, within=5)
    assert rest == b"" and waited < 4
    client.close()


def test_a_long_explanation_does_not_hold_up_predictions(limited_server):
    import concurrent.futures
    import http.client

    long_text = " ".join(f"word{i % 5000} great awful" for i in range(40_000))  # about 840 KB, 120,000 words
    assert len(long_text.encode()) < 1024 * 1024

    def post(path: str, body: dict) -> tuple[int, dict, float]:
        connection = http.client.HTTPConnection("127.0.0.1", limited_server.port, timeout=120)
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, json.loads(payload), time.monotonic(), len(payload)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        explanation = pool.submit(post, "/v1/explain", {"text": long_text, "method": "integrated_gradients"})
        time.sleep(0.2)
        asked_at = time.monotonic()
        prediction = pool.submit(post, "/v1/predict", {"texts": ["A fine film."]})
        status, body, predicted_at, _ = prediction.result(timeout=120)
        assert status == 200 and body["predictions"][0]["tokens"] == 4
        status, body, explained_at, size = explanation.result(timeout=120)
    assert status == 200, body
    assert predicted_at < explained_at or predicted_at - asked_at < 1.0  # the prediction did not wait for the explanation
    assert body["words_cut"] == 120_000 - 200 and body["prediction"]["truncated"] is True
    assert len(body["words"]) <= 400 and size < 100_000  # bounded by maxlen, not by the text
    assert all(long_text[word["start"]:word["end"]] == word["text"] for word in body["words"])
