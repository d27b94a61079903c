"""A strict local fake of the GitHub REST API's Actions secrets and variables endpoints.

Why a fake: GitHub's API cannot be reached from here (and a test must not touch a real
repository). How it stays honest: it is as strict as GitHub on everything rename.py relies
on. It rejects requests without the expected bearer token (401), serves the repository's
public key with a key_id from a real libsodium key pair it holds, rejects a secret whose
key_id is wrong or whose value is not a base64 sealed box for that key (422), answers
variable creation with 201 and 409 when the variable exists, updates with PATCH (204),
and 404s on anything else. A second token plays the workflow's GITHUB_TOKEN: it may disable
and dispatch workflows (204, recorded; a dispatch needs a string ``ref``) but gets 403 on
secrets and variables, as GitHub answers it. It decrypts every secret it accepts, so a test
can prove the value round-trips.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox


@dataclass
class FakeGitHubState:
    """What the fake holds and has received."""

    token: str
    repository: str
    private_key: PrivateKey = field(default_factory=PrivateKey.generate)
    key_id: str = "568250167242549743"
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # decrypted values
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    workflow_token: str | None = None  # GITHUB_TOKEN: workflows only
    disabled: list[str] = field(default_factory=list)  # workflow files disabled
    dispatches: list[tuple[str, str]] = field(default_factory=list)  # (workflow file, ref)


class _Handler(BaseHTTPRequestHandler):
    state: FakeGitHubState  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test reads state.requests instead

    def _send(self, status: int, body: object | None = None) -> None:
        self.state.requests.append((self.command, self.path, status))
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def _route(self) -> None:
        auth = self.headers.get("Authorization", "")
        repo = self.state.repository
        base = f"/repos/{repo}"
        path = self.path.split("?")[0]
        workflow = self.state.workflow_token
        if workflow and auth in (f"token {workflow}", f"Bearer {workflow}"):
            self._workflow_call(base, path)
            return
        if auth not in (f"token {self.state.token}", f"Bearer {self.state.token}"):
            self._send(401, {"message": "Bad credentials", "status": "401"})
            return
        if self.command == "GET" and path == base:
            owner, name = repo.split("/")
            self._send(
                200,
                {
                    "full_name": repo,
                    "name": name,
                    "owner": {"login": owner},
                    "url": f"http://{self.headers['Host']}{base}",
                },
            )
            return
        if self.command == "GET" and path == f"{base}/actions/secrets/public-key":
            key = self.state.private_key.public_key.encode()
            self._send(200, {"key_id": self.state.key_id, "key": base64.b64encode(key).decode()})
            return
        m = re.fullmatch(rf"{re.escape(base)}/actions/secrets/([A-Za-z_][A-Za-z0-9_]*)", path)
        if m and self.command == "PUT":
            self._put_secret(m.group(1), self._body())
            return
        if self.command == "POST" and path == f"{base}/actions/variables":
            body = self._body()
            name, value = body.get("name"), body.get("value")
            if not isinstance(name, str) or not isinstance(value, str):
                self._send(422, {"message": "Invalid request"})
            elif name in self.state.variables:
                self._send(409, {"message": "Already exists - Variable already exists"})
            else:
                self.state.variables[name] = value
                self._send(201, {})
            return
        m = re.fullmatch(rf"{re.escape(base)}/actions/variables/([A-Za-z_][A-Za-z0-9_]*)", path)
        if m and m.group(1) in self.state.variables:
            name = m.group(1)
            if self.command == "GET":
                self._send(
                    200,
                    {
                        "name": name,
                        "value": self.state.variables[name],
                        "created_at": "2026-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                    },
                )
                return
            if self.command == "PATCH":
                value = self._body().get("value")
                if not isinstance(value, str):
                    self._send(422, {"message": "Invalid request"})
                    return
                self.state.variables[name] = value
                self._send(204)
                return
        self._send(404, {"message": "Not Found"})

    def _workflow_call(self, base: str, path: str) -> None:
        """What GITHUB_TOKEN (actions: write) may do: disable and dispatch, nothing else."""
        m = re.fullmatch(
            rf"{re.escape(base)}/actions/workflows/([\w.-]+)/(disable|dispatches)", path
        )
        if m is None:
            self._send(403, {"message": "Resource not accessible by integration"})
            return
        name, action = m.groups()
        body = self._body()
        if action == "disable" and self.command == "PUT":
            self.state.disabled.append(name)
            self._send(204)
        elif action == "dispatches" and self.command == "POST" and isinstance(body.get("ref"), str):
            self.state.dispatches.append((name, body["ref"]))
            self._send(204)
        else:
            self._send(422, {"message": "Invalid request"})

    def _put_secret(self, name: str, body: dict) -> None:
        if body.get("key_id") != self.state.key_id:
            self._send(422, {"message": "Bad key_id"})
            return
        try:
            sealed = base64.b64decode(body.get("encrypted_value", ""), validate=True)
            value = SealedBox(self.state.private_key).decrypt(sealed).decode("utf-8")
        except (binascii.Error, CryptoError, UnicodeDecodeError, TypeError, ValueError):
            self._send(422, {"message": "Bad encrypted_value: not a sealed box for this key"})
            return
        created = name not in self.state.secrets
        self.state.secrets[name] = value
        self._send(201 if created else 204, {} if created else None)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route


class FakeGitHub:
    """Serve the fake on 127.0.0.1 (free port) in a thread; use as a context manager."""

    def __init__(self, token: str, repository: str, workflow_token: str | None = None) -> None:
        self.state = FakeGitHubState(
            token=token, repository=repository, workflow_token=workflow_token
        )
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
