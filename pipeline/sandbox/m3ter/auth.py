"""Who may call the m3ter sandbox: one service user of one org, and the bearer tokens it is issued.

Tokens are JWTs signed with a key kept in the state dir, carrying the claims m3ter's sample token
shows (`sub`, `orgId`, `permissions`, `iss`, `iat`, `exp`). Signed tokens need no server-side
session table, so a token stays valid across a restart of the sandbox, as an m3ter token does
across m3ter deployments; only the early-expiry fault keeps a (small) revocation set.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import jwt

from pipeline.sandbox.files import write_private

ISSUER = "https://m3ter.com/oauth2"


@dataclass(frozen=True)
class Credentials:
    """The org id and the service user's access key; persisted so a saved `.env` keeps working."""

    org_id: str
    access_key_id: str
    api_secret: str
    signing_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            org_id=str(uuid.uuid4()),
            access_key_id=str(uuid.uuid4()),
            api_secret=secrets.token_urlsafe(32),
            signing_key=secrets.token_hex(32),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls.generate()
        write_private(path, json.dumps(asdict(creds), indent=2))
        return creds

    def basic_matches(self, header: str | None) -> bool:
        """An `Authorization: Basic base64(accessKeyId:apiSecret)` header with these credentials."""
        if not header:
            return False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, sep, secret = decoded.partition(":")
        return (
            bool(sep)
            and secrets.compare_digest(key, self.access_key_id)
            and secrets.compare_digest(secret, self.api_secret)
        )


class TokenState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class TokenIssuer:
    """Issues and checks the bearer tokens of one org's service user."""

    def __init__(
        self, creds: Credentials, ttl_seconds: float, permissions: list[str] | None = None
    ) -> None:
        self.creds = creds
        self.ttl_seconds = ttl_seconds
        self.permissions = permissions or ["ADMINISTRATOR"]
        self._revoked: set[str] = set()
        self._valid_until: dict[str, tuple[float, str]] = {}  # verified token -> (exp, orgId)
        self._lock = threading.Lock()

    def issue(self) -> tuple[str, int]:
        """A new token and its `expires_in` in whole seconds (at least 1)."""
        now = time.time()
        claims = {
            "sub": self.creds.access_key_id,
            "orgId": self.creds.org_id,
            "permissions": self.permissions,
            "iss": ISSUER,
            "iat": int(now),
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.creds.signing_key, algorithm="HS256")
        return token, max(1, round(self.ttl_seconds))

    def check(self, token: str) -> tuple[TokenState, str | None]:
        """Whether `token` is valid now, and the org it was issued for."""
        with self._lock:
            if token in self._revoked:
                return TokenState.EXPIRED, None
            cached = self._valid_until.get(token)
        if cached is None:
            try:
                claims = jwt.decode(
                    token,
                    self.creds.signing_key,
                    algorithms=["HS256"],
                    issuer=ISSUER,
                    options={"verify_exp": False, "require": ["exp", "orgId"]},
                )
            except jwt.PyJWTError:
                return TokenState.INVALID, None
            cached = (float(claims["exp"]), str(claims["orgId"]))
            with self._lock:
                if len(self._valid_until) > 10_000:
                    self._valid_until.clear()
                self._valid_until[token] = cached
        expires, org_id = cached
        if time.time() >= expires:
            return TokenState.EXPIRED, org_id
        return TokenState.VALID, org_id

    def expire(self, token: str) -> None:
        """End a token early (the `expire` fault)."""
        with self._lock:
            self._revoked.add(token)
            self._valid_until.pop(token, None)
