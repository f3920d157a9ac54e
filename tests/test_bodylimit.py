"""Oversized request bodies are refused with 413 before anything buffers them."""

from siyu.bodylimit import MAX_BODY_BYTES


def test_declared_oversized_body_gets_413_naming_the_body(client, auth):
    response = client.post(
        "/api/v1/links", headers={**auth, "content-type": "application/json"}, content=b"x" * (MAX_BODY_BYTES + 1)
    )
    assert response.status_code == 413
    assert response.json()["error"]["fields"] == [{"field": "body", "reason": "too large"}]


def test_streamed_oversized_body_is_cut_off(client, auth):
    def chunks():
        for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 2):
            yield b"x" * (1024 * 1024)

    response = client.post("/api/v1/links", headers={**auth, "content-type": "application/json"}, content=chunks())
    assert response.status_code == 413


def test_bodies_under_the_limit_pass_through(client, auth):
    response = client.post("/api/v1/links", headers=auth, json={"destination_url": "https://example.com/ok"})
    assert response.status_code == 201
